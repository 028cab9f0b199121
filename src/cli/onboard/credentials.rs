//! What `onboard` and `models auth paste-token|setup-token|order` share: finding the
//! operator's files without starting the runtime, checking provider and profile ids,
//! reading a secret from the terminal (no echo) or from stdin, and storing a profile in
//! auth-profiles.json while declaring it in the config. Secrets never reach an output
//! line or an error message: they are named by fingerprint.

use crate::auth::profile_writer;
use crate::auth::profiles::{ProfileCredential, ProfileStore};
use crate::catalog::{Catalog, closest, normalize_provider};
use crate::config::env::{EnvMap, load_env_file};
use crate::config::paths::{Paths, ensure_private_dir};
use crate::config::{self, Config, edit};
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// The files a credential command edits, and the config they are checked against.
#[derive(Debug)]
pub(crate) struct Target {
    pub paths: Paths,
    pub config_path: PathBuf,
    pub config: Config,
    /// The process environment plus `<state>/.env`.
    pub env: EnvMap,
    pub agent_id: String,
}

impl Target {
    /// Like `App::load`, without the state database, the shell import or the engine:
    /// paths, `.env`, config (a missing file is the empty config: the command creates
    /// it), and the agent (`--agent` or `agents.defaultId`).
    pub(crate) fn load(agent: Option<&str>) -> anyhow::Result<Target> {
        let mut env = EnvMap::from_process();
        let paths = Paths::from_env(&env)?;
        ensure_private_dir(&paths.state_dir).with_context(|| {
            format!(
                "cannot create the state directory {}",
                paths.state_dir.display()
            )
        })?;
        load_env_file(&paths.env_file(), &mut env)?;
        let paths = paths.refresh_config_path(&env);
        let loaded = config::load(&paths.config_path, false)?;
        let agent_id = agent
            .unwrap_or(&loaded.config.agents.default_id)
            .to_string();
        check_agent_id(&agent_id)?;
        Ok(Target {
            config_path: loaded.path,
            config: loaded.config,
            paths,
            env,
            agent_id,
        })
    }

    pub(crate) fn profiles_path(&self) -> PathBuf {
        self.paths.auth_profiles(&self.agent_id)
    }

    /// The stored profiles of this agent (empty when the file does not exist).
    pub(crate) fn store(&self) -> anyhow::Result<ProfileStore> {
        Ok(ProfileStore::load(&self.profiles_path())?)
    }

    /// Built-in providers and those configured with `baseUrl` and `api`, sorted.
    pub(crate) fn known_providers(&self) -> Vec<String> {
        Catalog::from_config(&self.config)
            .providers
            .into_iter()
            .collect()
    }

    /// The canonical id of a provider the operator named, which must be known.
    pub(crate) fn provider(&self, raw: &str) -> anyhow::Result<String> {
        let p = normalize_provider(raw);
        let known = self.known_providers();
        if !p.is_empty() && known.contains(&p) {
            return Ok(p);
        }
        let hint = closest(&p, known.iter().map(String::as_str))
            .map(|s| format!(" Did you mean \"{s}\"?"))
            .unwrap_or_default();
        bail!(
            "unknown provider \"{}\".{hint} Known providers: {}. A custom provider needs [models.providers.<id>] with baseUrl and api in {}.",
            raw.trim(),
            known.join(", "),
            self.config_path.display()
        )
    }

    /// Write profile `id` into this agent's auth-profiles.json (under the writer's lock,
    /// atomically, never over a corrupt file), then declare it in the config as
    /// `[auth.profiles."<id>"] provider, mode` (comments and other keys kept).
    pub(crate) fn save_profile(
        &self,
        id: &str,
        provider: &str,
        mode: &str,
        profile: Value,
    ) -> anyhow::Result<Saved> {
        check_profile_id(id)?;
        let path = self.profiles_path();
        // Only for the report: the writer re-reads the file under its lock, and a corrupt
        // file gets the writer's own error.
        let before = ProfileStore::load(&path).ok();
        let replaced = before
            .as_ref()
            .and_then(|s| s.profiles.get(id))
            .map(|p| format!("{} {}", p.provider, kind_word(&p.credential)));
        profile_writer::put_profile(&path, id, profile)?;
        let previous_mode = self.config.auth.profiles.get(id).map(|d| mode_word(d.mode));
        edit::update_config(&self.config_path, |doc| {
            edit::declare_profile(doc, id, provider, mode)
        })
        .with_context(|| {
            format!(
                "profile {id} was stored in {}, but declaring it in the config failed",
                path.display()
            )
        })?;
        let notes = order_notes(self, before.as_ref(), provider, id);
        Ok(Saved {
            path,
            replaced,
            declaration_changed: previous_mode.is_some_and(|m| m != mode),
            notes,
        })
    }
}

/// What `save_profile` did, for the report.
#[derive(Debug)]
pub(crate) struct Saved {
    pub path: PathBuf,
    /// "anthropic token" when a profile with that id was replaced.
    pub replaced: Option<String>,
    /// The config declared the id with another mode before.
    pub declaration_changed: bool,
    /// Why the new profile may not be used as the operator expects, and what to do.
    pub notes: Vec<String>,
}

fn kind_word(c: &ProfileCredential) -> &'static str {
    match c {
        ProfileCredential::ApiKey { .. } => "api_key",
        ProfileCredential::Token { .. } => "token",
        ProfileCredential::Oauth { .. } => "oauth",
    }
}

fn mode_word(m: config::CredentialMode) -> &'static str {
    match m {
        config::CredentialMode::ApiKey => "api_key",
        config::CredentialMode::Token => "token",
        config::CredentialMode::Oauth => "oauth",
    }
}

/// Orders that leave the new profile out, and profiles the new declaration leaves out
/// (DESIGN §5: stored order, then `auth.order`, then declared profiles, then all).
pub(crate) fn order_notes(
    target: &Target,
    before: Option<&ProfileStore>,
    provider: &str,
    id: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    let set_cmd = |ids: &[&str]| {
        format!(
            "`remoteclaw models auth order set --provider {provider} {}`",
            ids.join(" ")
        )
    };
    if let Some(order) = before.and_then(|s| s.order.get(provider)) {
        if !order.iter().any(|o| o == id) {
            let mut ids: Vec<&str> = order.iter().map(String::as_str).collect();
            ids.push(id);
            notes.push(format!(
                "the auth order stored for {provider} does not list {id}, so it is not used; add it with {}",
                set_cmd(&ids)
            ));
        }
        return notes;
    }
    if let Some(order) = target.config.auth.order.get(provider) {
        if !order.iter().any(|o| o == id) {
            notes.push(format!(
                "auth.order.{provider} in {} does not list {id}, so it is not used; add it there, or store an order with {}",
                target.config_path.display(),
                set_cmd(&[id])
            ));
        }
        return notes;
    }
    let declared_before = target
        .config
        .auth
        .profiles
        .iter()
        .any(|(d, decl)| d != id && decl.provider == provider);
    if !declared_before {
        let undeclared: Vec<&str> = before
            .map(|s| {
                s.for_provider(provider)
                    .map(|p| p.id.as_str())
                    .filter(|p| *p != id)
                    .collect()
            })
            .unwrap_or_default();
        if !undeclared.is_empty() {
            let mut ids = vec![id];
            ids.extend(&undeclared);
            notes.push(format!(
                "{provider} now uses the profiles declared in the config, and {} {} not declared; to keep using {}, run {}",
                undeclared.join(", "),
                if undeclared.len() == 1 { "is" } else { "are" },
                if undeclared.len() == 1 { "it" } else { "them" },
                set_cmd(&ids)
            ));
        }
    }
    notes
}

pub(crate) fn check_agent_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        bail!("agent id \"{id}\" is not a plain name: use letters, digits, '_' or '-'");
    }
    Ok(())
}

/// Profile ids: `[A-Za-z0-9_.:@-]+`.
pub(crate) fn check_profile_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:@-".contains(c))
    {
        bail!(
            "profile id \"{id}\" is not valid: use letters, digits and _ . : @ - (e.g. anthropic:work)"
        );
    }
    Ok(())
}

/// A pasted secret must be one token: whitespace or control characters inside it mean
/// more than one line (or a stray character) was pasted.
pub(crate) fn check_secret_text(secret: &str, what: &str) -> anyhow::Result<()> {
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "the {what} contains whitespace or control characters: it looks like more than one line was pasted. Paste only the {what}, on one line."
        );
    }
    Ok(())
}

pub(crate) fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Prompt on stderr and read one line from the terminal without echo, trimmed.
pub(crate) fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let line = rpassword::read_password().context("cannot read from the terminal")?;
    Ok(line.trim().to_string())
}

/// Prompt on stderr and read one line from stdin, trimmed. End of input is an error.
pub(crate) fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    if n == 0 {
        let _ = writeln!(err);
        bail!("input ended before the question was answered; nothing was changed");
    }
    Ok(line.trim().to_string())
}

/// All of stdin, trimmed (for secrets piped in by scripts).
pub(crate) fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read stdin (is it UTF-8 text?)")?;
    Ok(text.trim().to_string())
}

pub(crate) fn now_ms() -> i64 {
    use crate::clock::{Clock, SystemClock};
    SystemClock.now_ms()
}

/// `2026-01-01 12:00 UTC`.
pub(crate) fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        sod / 3600,
        (sod % 3600) / 60
    )
}

/// A span of time for humans: `45s`, `30m`, `12h`, `3d 4h`, `365d`.
pub(crate) fn span_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 if s % 3600 == 0 => format!("{}h", s / 3600),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ if s % 86_400 < 3600 => format!("{}d", s / 86_400),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// "expires 2026-01-01 12:00 UTC (in 12h)", "expired …", or "no expiry".
pub(crate) fn expiry_text(expires_ms: Option<i64>, now: i64) -> String {
    match expires_ms {
        None => "no expiry".into(),
        Some(e) if e <= now => format!("expired {} ({} ago)", utc_text(e), span_text(now - e)),
        Some(e) => format!("expires {} (in {})", utc_text(e), span_text(e - now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_spans() {
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(1_767_225_600_000), "2026-01-01 00:00 UTC");
        assert_eq!(utc_text(951_782_400_000 + 90_000), "2000-02-29 00:01 UTC");
        assert_eq!(span_text(12 * 3_600_000), "12h");
        assert_eq!(span_text(30 * 60_000), "30m");
        assert_eq!(span_text(365 * 86_400_000), "365d");
        assert_eq!(span_text(86_400_000 + 5 * 3_600_000), "1d 5h");
        assert_eq!(
            expiry_text(Some(1_767_225_600_000), 1_767_225_600_000 - 7_200_000),
            "expires 2026-01-01 00:00 UTC (in 2h)"
        );
        assert_eq!(expiry_text(None, 0), "no expiry");
    }

    #[test]
    fn ids_and_secret_text() {
        assert!(check_profile_id("google-gemini-cli:me@gmail.com").is_ok());
        assert!(check_profile_id("a b").is_err());
        assert!(check_profile_id("").is_err());
        assert!(check_agent_id("main").is_ok());
        assert!(check_agent_id("../x").is_err());
        assert!(check_secret_text("sk-ant-oat01-abc", "token").is_ok());
        let e = check_secret_text("sk-one\nsk-two", "token").unwrap_err();
        assert!(e.to_string().contains("more than one line"), "{e}");
        assert!(!e.to_string().contains("sk-one"), "{e}");
        assert!(check_secret_text("a\u{7}b", "token").is_err());
    }
}
