//! The interactive `onboard`: a few questions on stderr, each saying what to type and
//! what Enter chooses. It only builds a [`Plan`]; nothing is written until the
//! operator confirms the summary. The terminal sits behind [`Ui`] so tests can script
//! the answers. Providers with an OAuth preset are offered as "sign in with a
//! subscription" (`super::sign_in`) instead of an API key.

use super::credentials::{Target, check_secret_text, prompt_hidden, prompt_line};
use super::sign_in::{SignIn, ask_how, offer};
use super::{Channel, KeyPlan, KeyStore, Plan, check_discord_id, check_env_name, suggested_model};
use crate::auth::env_keys::primary_env_var;
use crate::catalog::Catalog;
use crate::oauth::preset::{PRESETS, preset};
use crate::secret::Secret;
use anyhow::bail;

/// Where questions go and answers come from.
pub(super) trait Ui {
    fn say(&mut self, text: &str);
    /// One answer, trimmed.
    fn line(&mut self, prompt: &str) -> anyhow::Result<String>;
    /// One answer typed without echo, trimmed.
    fn secret(&mut self, prompt: &str) -> anyhow::Result<String>;
}

/// The real terminal: prompts on stderr, answers from stdin (secrets without echo).
pub(super) struct Terminal;

impl Ui for Terminal {
    fn say(&mut self, text: &str) {
        eprintln!("{text}");
    }
    fn line(&mut self, prompt: &str) -> anyhow::Result<String> {
        prompt_line(prompt)
    }
    fn secret(&mut self, prompt: &str) -> anyhow::Result<String> {
        prompt_hidden(prompt)
    }
}

/// The providers offered by number.
const CHOICES: [&str; 4] = ["anthropic", "openai", "openrouter", "google"];
/// Wrong answers allowed per question.
const ATTEMPTS: usize = 3;

/// Ask until `parse` accepts the answer (a few tries, then give up).
pub(super) fn ask<T>(
    ui: &mut dyn Ui,
    prompt: &str,
    secret: bool,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    for attempt in 1..=ATTEMPTS {
        let answer = if secret {
            ui.secret(prompt)?
        } else {
            ui.line(prompt)?
        };
        match parse(answer.trim()) {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS => ui.say(&format!("{e}. Try again.")),
            Err(e) => bail!("{e}. Nothing was changed."),
        }
    }
    bail!("no valid answer; nothing was changed")
}

fn ids(answer: &str) -> impl Iterator<Item = &str> {
    answer
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn yes_no(answer: &str, default: bool) -> Result<bool, String> {
    match answer.to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "y" | "yes" => Ok(true),
        "n" | "no" => Ok(false),
        _ => Err("type y or n".into()),
    }
}

fn ask_channel<T>(
    ui: &mut dyn Ui,
    name: &str,
    example_var: &str,
    parse_id: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<Channel<T>>> {
    let var = ask(
        ui,
        &format!(
            "{name}: name the environment variable that will hold the bot token (e.g. {example_var}), or press Enter to skip {name}: "
        ),
        false,
        |a| {
            if a.is_empty() {
                Ok(None)
            } else {
                check_env_name(a).map(|()| Some(a.to_string()))
            }
        },
    )?;
    let Some(var) = var else {
        return Ok(None);
    };
    let owners = ask(
        ui,
        &format!(
            "{name} user ids of the owners (they may chat and pin credentials), separated by spaces or commas; Enter for none: "
        ),
        false,
        |a| ids(a).map(&parse_id).collect::<Result<Vec<T>, String>>(),
    )?;
    Ok(Some(Channel {
        token_env: Some(var),
        owners,
    }))
}

fn summary(plan: &Plan, target: &Target) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &plan.sign_in {
        out.push(s.summary(target));
    }
    if let Some(k) = &plan.key {
        let place = match k.store {
            KeyStore::Profile => format!(
                "profile {}:default in {}",
                k.provider,
                target.profiles_path().display()
            ),
            KeyStore::Env => format!(
                "{} in {}",
                primary_env_var(&k.provider),
                target.paths.env_file().display()
            ),
        };
        out.push(format!(
            "{} API key (fingerprint {}) → {place}",
            k.provider,
            k.key.fingerprint()
        ));
    }
    if let Some(m) = &plan.model {
        out.push(format!("default model → {m}"));
    }
    let channel = |name: &str, var: &Option<String>, owners: Vec<String>| {
        let mut s = format!("{name}: enabled");
        if let Some(v) = var {
            s.push_str(&format!(", bot token from ${v}"));
        }
        if !owners.is_empty() {
            s.push_str(&format!(", owners {}", owners.join(", ")));
        }
        s
    };
    if let Some(c) = &plan.telegram {
        out.push(channel(
            "Telegram",
            &c.token_env,
            c.owners.iter().map(ToString::to_string).collect(),
        ));
    }
    if let Some(c) = &plan.discord {
        out.push(channel("Discord", &c.token_env, c.owners.clone()));
    }
    out
}

/// The API key of `provider` and where to keep it (`None`: skipped).
fn ask_key(ui: &mut dyn Ui, target: &Target, provider: &str) -> anyhow::Result<Option<KeyPlan>> {
    let var = primary_env_var(provider);
    let skip = if target.env.get_nonblank(&var).is_some() {
        format!("Enter to keep using {var}")
    } else {
        "Enter to skip".to_string()
    };
    let key = ask(
        ui,
        &format!("Paste your {provider} API key (input is hidden; {skip}): "),
        true,
        |a| {
            if a.is_empty() {
                return Ok(None);
            }
            check_secret_text(a, "API key").map_err(|e| e.to_string())?;
            Ok(Some(Secret::new(a)))
        },
    )?;
    let Some(key) = key else {
        return Ok(None);
    };
    let store = ask(
        ui,
        &format!(
            "Keep the key as 1 (profile {provider}:default in auth-profiles.json) or 2 (env: {var} in {}) — type profile or env [profile]: ",
            target.paths.env_file().display()
        ),
        false,
        |a| match a.to_ascii_lowercase().as_str() {
            "" | "1" | "p" | "profile" => Ok(KeyStore::Profile),
            "2" | "e" | "env" => Ok(KeyStore::Env),
            _ => Err("type profile or env".into()),
        },
    )?;
    Ok(Some(KeyPlan {
        provider: provider.to_string(),
        key,
        store,
    }))
}

/// Run the questions. `None` when the operator declines the summary.
pub(super) fn run(ui: &mut dyn Ui, target: &Target) -> anyhow::Result<Option<Plan>> {
    let mut plan = Plan::default();
    ui.say(
        "RemoteClaw setup: a provider key or sign-in, the default model, and optionally Telegram and Discord.",
    );
    ui.say("Press Enter to take the [default]. Nothing is written until you confirm at the end.");

    ui.say("Providers:");
    for (i, p) in CHOICES.iter().enumerate() {
        ui.say(&format!("  {} {p}: paste an API key", i + 1));
    }
    for (i, p) in PRESETS.iter().enumerate() {
        ui.say(&format!(
            "  {} {}: {}",
            CHOICES.len() + i + 1,
            p.provider,
            offer(p)
        ));
    }
    let count = CHOICES.len() + PRESETS.len();
    let provider = ask(
        ui,
        "Provider — type its number or another provider id [anthropic]: ",
        false,
        |a| match a.parse::<usize>() {
            _ if a.is_empty() => Ok(CHOICES[0].to_string()),
            Ok(n) => CHOICES
                .iter()
                .copied()
                .chain(PRESETS.iter().map(|p| p.provider))
                .nth(n.wrapping_sub(1))
                .map(str::to_string)
                .ok_or_else(|| format!("type a number from 1 to {count}")),
            Err(_) => target.provider(a).map_err(|e| e.to_string()),
        },
    )?;

    match preset(&provider) {
        Some(p) => {
            let how = ask_how(ui, target, p)?;
            plan.sign_in = Some(SignIn::new(p, how));
        }
        None => plan.key = ask_key(ui, target, &provider)?,
    }

    let current = Catalog::from_config(&target.config).default;
    let default_model = if current.provider == provider {
        current.to_string()
    } else {
        suggested_model(&provider).map_or_else(|| current.to_string(), str::to_string)
    };
    let model = ask(
        ui,
        &format!("Default model — type provider/model or an alias [{default_model}]: "),
        false,
        |a| {
            if a.is_empty() {
                Ok(default_model.clone())
            } else {
                super::check_model(target, a)
            }
        },
    )?;
    if model != current.to_string() {
        plan.model = Some(model);
    }

    plan.telegram = ask_channel(ui, "Telegram", "TELEGRAM_BOT_TOKEN", |s| {
        s.parse::<i64>()
            .map_err(|_| format!("\"{s}\" is not a Telegram user id (a number such as 123456789)"))
    })?;
    plan.discord = ask_channel(ui, "Discord", "DISCORD_BOT_TOKEN", check_discord_id)?;

    if plan.is_empty() {
        ui.say("Nothing to change.");
        return Ok(Some(plan));
    }
    ui.say("");
    ui.say("About to write:");
    for line in summary(&plan, target) {
        ui.say(&format!("  - {line}"));
    }
    let write = ask(ui, "Write these changes? Type y or n [y]: ", false, |a| {
        yes_no(a, true)
    })?;
    Ok(write.then_some(plan))
}

#[cfg(test)]
mod tests;
