//! `remoteclaw onboard`: store a provider API key (as a profile or in `<state>/.env`)
//! or, for providers with an OAuth preset, sign in with a subscription (`sign_in`, the
//! `models auth login` flow), point Telegram/Discord at bot tokens kept in environment
//! variables, name the owners, and pick the default model. Interactive on a terminal (a
//! short wizard on stderr), or driven by flags for scripts (`--non-interactive`, API
//! keys only). Everything is merged into the existing config with `toml_edit`: comments
//! and unrelated keys survive. Keys are never printed, only their fingerprints.

mod config_edit;
pub(crate) mod credentials;
mod env_file;
mod flags;
mod sign_in;
mod wizard;

use crate::auth::env_keys::primary_env_var;
use crate::auth::profile_writer;
use crate::auth::profiles::ProfileStore;
use crate::catalog::ModelRef;
use crate::config::edit;
use crate::secret::Secret;
use anyhow::bail;
use clap::{Args, ValueEnum};
use config_edit::{edit_doc, preflight};
use credentials::{Target, stdin_is_tty};
use serde_json::json;
use std::process::ExitCode;
use toml_edit::DocumentMut;

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// Never prompt: take every answer from flags (for scripts). Missing input is an error.
    #[arg(long)]
    pub non_interactive: bool,
    /// Provider whose API key to store (anthropic, openai, openrouter, google, …).
    /// Subscription sign-ins (openai-codex: ChatGPT subscription; qwen-portal: Qwen free
    /// tier) have no API key: use `remoteclaw models auth login --provider P`, or the
    /// interactive `remoteclaw onboard`.
    #[arg(long, value_name = "P")]
    pub provider: Option<String>,
    /// Read the API key from stdin (pipe it in; it is never printed).
    #[arg(long, requires = "provider")]
    pub api_key_stdin: bool,
    /// Where to keep the key: `profile` (<P>:default in auth-profiles.json) or `env` (<P>_API_KEY in <state>/.env).
    #[arg(long, value_enum, requires = "api_key_stdin")]
    pub store: Option<KeyStore>,
    /// Enable Telegram with the bot token read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub telegram_token_env: Option<String>,
    /// A Telegram user id that owns the bot (may pin credentials; also allowed to chat). Repeatable.
    #[arg(long = "telegram-owner", value_name = "ID")]
    pub telegram_owners: Vec<i64>,
    /// Enable Discord with the bot token read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub discord_token_env: Option<String>,
    /// A Discord user id that owns the bot (may pin credentials; also allowed to chat). Repeatable.
    #[arg(long = "discord-owner", value_name = "ID")]
    pub discord_owners: Vec<String>,
    /// Default model (agents.defaults.model.primary), as provider/model or an alias.
    #[arg(long, value_name = "PROVIDER/MODEL")]
    pub model: Option<String>,
    /// Agent whose credentials to store (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyStore {
    /// `<P>_API_KEY` in `<state>/.env`.
    Env,
    /// Profile `<P>:default` (type api_key) in the agent's auth-profiles.json.
    Profile,
}

/// Everything onboarding will change, decided before anything is written.
#[derive(Debug, Default)]
struct Plan {
    key: Option<KeyPlan>,
    /// A subscription sign-in, run before anything else is written.
    sign_in: Option<sign_in::SignIn>,
    model: Option<String>,
    telegram: Option<Channel<i64>>,
    discord: Option<Channel<String>>,
}

#[derive(Debug)]
struct KeyPlan {
    provider: String,
    key: Secret,
    store: KeyStore,
}

#[derive(Debug, PartialEq, Eq)]
struct Channel<T> {
    token_env: Option<String>,
    owners: Vec<T>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.sign_in.is_none()
            && self.model.is_none()
            && self.telegram.is_none()
            && self.discord.is_none()
    }
}

/// A model the operator may pick as default for a provider (a preset names its own).
fn suggested_model(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "anthropic" => "anthropic/claude-sonnet-4-5",
        "openai" => "openai/gpt-4o-mini",
        "openrouter" => "openrouter/openai/gpt-4o-mini",
        "google" => "google/gemini-2.5-flash",
        other => return crate::oauth::preset::preset(other).map(|p| p.default_model),
    })
}

fn check_env_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not an environment variable name: use letters, digits and _, e.g. TELEGRAM_BOT_TOKEN"
        ))
    }
}

fn check_discord_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    // The config's own test, so what onboard writes always loads.
    if let Some(n) = crate::config::types::snowflake(id) {
        Ok(n.to_string())
    } else {
        Err(format!(
            "\"{id}\" is not a Discord user id: use the digits of the id (Developer Mode → Copy User ID)"
        ))
    }
}

/// A default model: `provider/model` with a known provider, or a configured alias.
fn check_model(target: &Target, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let catalog = crate::catalog::Catalog::from_config(&target.config);
    if catalog.aliases.contains_key(&raw.to_lowercase()) {
        return Ok(raw.to_string());
    }
    if !raw.contains('/') {
        return Err(format!(
            "\"{raw}\" is neither provider/model (e.g. anthropic/claude-sonnet-4-5) nor a configured alias"
        ));
    }
    let m = ModelRef::parse(raw, "anthropic")?;
    if !catalog.providers.contains(&m.provider) {
        return Err(format!(
            "model \"{raw}\": unknown provider \"{}\". Known providers: {}",
            m.provider,
            catalog
                .providers
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(m.to_string())
}

/// Whether the config file itself names a default model (not just the built-in one).
fn config_names_primary(target: &Target) -> bool {
    let text = std::fs::read_to_string(&target.config_path).unwrap_or_default();
    text.parse::<DocumentMut>().ok().is_some_and(|doc| {
        doc.get("agents")
            .and_then(|i| i.get("defaults"))
            .and_then(|i| i.get("model"))
            .and_then(|i| i.get("primary"))
            .is_some()
    })
}

/// "Telegram: enabled, bot token from $VAR; owners 1, 2 (in …)", and a note when the
/// variable is not set yet.
fn channel_line(
    target: &Target,
    name: &str,
    token_env: &Option<String>,
    owners: Vec<String>,
    notes: &mut Vec<String>,
) -> String {
    let mut parts = Vec::new();
    if let Some(var) = token_env {
        parts.push(format!("enabled, bot token from ${var}"));
        if target.env.get_nonblank(var).is_none() {
            notes.push(format!(
                "{var} is not set: add {var}=<bot token> to {} or export it before `remoteclaw gateway`",
                target.paths.env_file().display()
            ));
        }
    }
    if !owners.is_empty() {
        parts.push(format!(
            "owners and allowFrom include {}",
            owners.join(", ")
        ));
    }
    format!(
        "{name}: {} (channels.{} in {}).",
        parts.join("; "),
        name.to_lowercase(),
        target.config_path.display()
    )
}

/// Write the plan: the key (profile or .env), then the config in one edit. Returns the
/// report lines and notes.
fn apply(target: &Target, plan: &Plan) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut done = Vec::new();
    let mut notes = Vec::new();
    preflight(target, plan)?;
    if let Some(k) = &plan.key {
        let fp = k.key.fingerprint();
        let p = &k.provider;
        match k.store {
            KeyStore::Profile => {
                let id = format!("{p}:default");
                let path = target.profiles_path();
                let before = ProfileStore::load(&path).ok();
                let profile = json!({ "type": "api_key", "provider": p, "key": k.key.expose() });
                profile_writer::put_profile(&path, &id, profile)?;
                done.push(format!(
                    "{} profile {id}: {p} API key, fingerprint {fp}, in {}.",
                    if before
                        .as_ref()
                        .is_some_and(|s| s.profiles.contains_key(&id))
                    {
                        "Replaced"
                    } else {
                        "Stored"
                    },
                    path.display()
                ));
                notes.extend(credentials::order_notes(target, before.as_ref(), p, &id));
            }
            KeyStore::Env => {
                let var = primary_env_var(p);
                let path = target.paths.env_file();
                env_file::set_var(&path, &var, k.key.expose())?;
                done.push(format!(
                    "Saved the {p} API key as {var} (fingerprint {fp}) in {}.",
                    path.display()
                ));
                if std::env::var_os(&var).is_some() {
                    notes.push(format!(
                        "{var} is also set in this shell's environment, and that value wins over {}; unset or update it",
                        path.display()
                    ));
                }
                if let Ok(store) = target.store() {
                    let ids: Vec<&str> = store.for_provider(p).map(|p| p.id.as_str()).collect();
                    if !ids.is_empty() {
                        notes.push(format!(
                            "stored {p} profiles are tried before {var}: {}",
                            ids.join(", ")
                        ));
                    }
                }
            }
        }
    }
    let mut edit_notes = Vec::new();
    edit::update_config(&target.config_path, |doc| {
        edit_doc(doc, plan, &mut edit_notes)
    })?;
    let cfg = target.config_path.display();
    if let Some(k) = plan.key.as_ref().filter(|k| k.store == KeyStore::Profile) {
        done.push(format!(
            "Declared auth.profiles.\"{}:default\" (mode api_key) in {cfg}.",
            k.provider
        ));
    }
    if let Some(m) = &plan.model {
        done.push(format!(
            "Default model: {m} (agents.defaults.model.primary in {cfg})."
        ));
    }
    if let Some(c) = &plan.telegram {
        let owners = c.owners.iter().map(ToString::to_string).collect();
        done.push(channel_line(
            target,
            "Telegram",
            &c.token_env,
            owners,
            &mut notes,
        ));
    }
    if let Some(c) = &plan.discord {
        done.push(channel_line(
            target,
            "Discord",
            &c.token_env,
            c.owners.clone(),
            &mut notes,
        ));
    }
    notes.extend(edit_notes);
    Ok((done, notes))
}

pub async fn run(args: OnboardArgs) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let mut notes = Vec::new();
    let plan = if args.non_interactive || args.has_flags() {
        flags::plan_from_flags(&target, &args, &mut notes)?
    } else if stdin_is_tty() {
        match wizard::run(&mut wizard::Terminal, &target)? {
            Some(plan) => plan,
            None => {
                eprintln!("Cancelled; nothing was changed.");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        bail!(
            "onboard asks questions, but stdin is not a terminal. In a script use flags, e.g. `printf '%s' \"$KEY\" | remoteclaw onboard --non-interactive --provider anthropic --api-key-stdin`"
        );
    };
    if plan.is_empty() {
        println!("Nothing to change.");
    } else {
        if let Some(s) = &plan.sign_in {
            // The sign-in is what most likely fails: check the config edit first, sign
            // in, and only then write the rest.
            preflight(&target, &plan)?;
            s.run(args.agent.as_deref()).await?;
        }
        let (done, more) = apply(&target, &plan)?;
        for line in done {
            println!("{line}");
        }
        notes.extend(more);
    }
    for n in notes {
        println!("Note: {n}");
    }
    println!();
    println!("Next steps:");
    println!("  remoteclaw models status --check   # are the credentials usable?");
    println!("  remoteclaw doctor                  # config, files and permissions");
    println!("  remoteclaw gateway                 # start the bot (HTTP API, web chat, channels)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(check_env_name("TELEGRAM_BOT_TOKEN").is_ok());
        assert!(check_env_name("1X").is_err());
        assert!(check_env_name("A-B").is_err());
        assert_eq!(check_discord_id(" 123 ").unwrap(), "123");
        assert!(check_discord_id("@me").is_err());
        // What the config refuses is refused here, with this flag's own message.
        assert!(check_discord_id("0").is_err());
        assert!(check_discord_id("99999999999999999999").is_err());
    }

    #[test]
    fn provider_help_names_every_subscription_preset() {
        use clap::CommandFactory;
        let mut cli = crate::cli::Cli::command();
        let help = cli
            .find_subcommand_mut("onboard")
            .unwrap()
            .render_long_help()
            .to_string();
        for p in crate::oauth::preset::PRESETS {
            assert!(help.contains(p.provider), "{} in {help}", p.provider);
            assert_eq!(suggested_model(p.provider), Some(p.default_model));
        }
        assert!(help.contains("remoteclaw models auth login --provider P"));
    }
}
