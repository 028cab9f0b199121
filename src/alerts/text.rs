//! The words of an alert (pure): which credential (profile id or environment variable
//! name, and provider), its state, when (expiry, or until when it is disabled), and the
//! next step. Built from the resolver's view of a credential, which holds no secret
//! outside `Credential`, so no secret can end up here.

use crate::auth::cooldown::{FOREVER, Reason};
use crate::auth::{CredentialKind, CredentialSource};

/// What an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A token (or an OAuth sign-in without a refresh token) expires within 24 h.
    Expiring,
    Expired,
    /// Set aside after an error: auth, billing, quota or a refused refresh.
    Disabled(Reason),
    /// A provider in use has nothing left to try.
    NoCredential,
}

impl Problem {
    /// The state as stored (`expiring`, `expired`, `disabled:<reason>`, `no_credential`).
    pub fn as_str(self) -> String {
        match self {
            Problem::Expiring => "expiring".into(),
            Problem::Expired => "expired".into(),
            Problem::Disabled(r) => format!("disabled:{}", r.as_str()),
            Problem::NoCredential => "no_credential".into(),
        }
    }
}

/// One credential as the alert names it.
#[derive(Debug, Clone)]
pub struct CredentialFacts<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub kind: CredentialKind,
    pub source: CredentialSource,
    /// The agent whose credential it is, when the gateway serves several and the
    /// credential is a profile of that agent.
    pub agent: Option<&'a str>,
    /// `--agent <id>` for the commands, when the agent is not `agents.defaultId`.
    pub cli_agent: Option<&'a str>,
    pub expires_ms: Option<i64>,
    /// When a disable ends (`FOREVER`: until cleared).
    pub until: Option<i64>,
    /// Where a ref'd secret comes from (`env:default:TEAM_KEY`): never a value.
    pub detail: Option<&'a str>,
}

/// `2026-01-01 12:00 UTC`.
pub fn utc_text(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}

/// `5h 10m`, `3d 2h`.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn kind_word(k: CredentialKind) -> &'static str {
    match k {
        CredentialKind::ApiKey => "API key",
        CredentialKind::Token => "token",
        CredentialKind::Oauth => "OAuth sign-in",
    }
}

/// The variable of an environment credential id: `env:ANTHROPIC_API_KEYS[1]` →
/// `ANTHROPIC_API_KEYS`.
fn env_var(id: &str) -> &str {
    let var = id.strip_prefix("env:").unwrap_or(id);
    var.split('[').next().unwrap_or(var)
}

/// `credential anthropic:work (anthropic token, agent support)`; an environment key
/// is named by its variable.
fn credential_name(f: &CredentialFacts<'_>) -> String {
    let agent = f.agent.map(|a| format!(", agent {a}")).unwrap_or_default();
    match f.source {
        CredentialSource::Env => format!(
            "{} key {} (environment variable {}{agent})",
            f.provider,
            f.id,
            env_var(f.id)
        ),
        _ => format!(
            "credential {} ({} {}{agent})",
            f.id,
            f.provider,
            kind_word(f.kind)
        ),
    }
}

fn agent_flag(f: &CredentialFacts<'_>) -> String {
    f.cli_agent
        .map(|a| format!(" --agent {a}"))
        .unwrap_or_default()
}

fn paste(f: &CredentialFacts<'_>) -> String {
    format!(
        "`remoteclaw models auth paste-token --provider {} --profile-id {}{}`",
        f.provider,
        f.id,
        agent_flag(f)
    )
}

fn login(provider: &str, cli_agent: Option<&str>) -> String {
    let agent = cli_agent
        .map(|a| format!(" --agent {a}"))
        .unwrap_or_default();
    format!("`remoteclaw models auth login --provider {provider}{agent}`")
}

fn clear(f: &CredentialFacts<'_>) -> String {
    format!(
        "`remoteclaw models auth cooldown clear {}{}`",
        f.id,
        agent_flag(f)
    )
}

/// Whether the credential is `models.providers.P.apiKey` (inline or a ref).
fn is_config_key(f: &CredentialFacts<'_>) -> bool {
    f.source == CredentialSource::Config || f.id.starts_with("config:")
}

/// How to give the credential a working secret.
fn replace_secret(f: &CredentialFacts<'_>) -> String {
    if f.source == CredentialSource::Env {
        return format!(
            "set {} to a working key (in the environment or the state dir's .env) and restart the gateway",
            env_var(f.id)
        );
    }
    if is_config_key(f) {
        return format!(
            "put a working key in models.providers.{}.apiKey{}",
            f.provider,
            f.detail
                .map(|d| format!(" (its secret comes from {d})"))
                .unwrap_or_default()
        );
    }
    if let (CredentialSource::Ref, Some(d)) = (f.source, f.detail) {
        return format!("put a working secret where the profile's ref points ({d})");
    }
    match f.kind {
        CredentialKind::Oauth => format!("sign in again: {}", login(f.provider, f.cli_agent)),
        CredentialKind::Token => format!("paste a working token: {}", paste(f)),
        CredentialKind::ApiKey => format!(
            "put a working key in the profile, or paste a token in its place: {}",
            paste(f)
        ),
    }
}

/// The alert for a credential's problem at `now`.
pub fn credential_problem(f: &CredentialFacts<'_>, problem: Problem, now: i64) -> String {
    let name = credential_name(f);
    let (state, step) = match problem {
        Problem::Expiring => {
            let when = f
                .expires_ms
                .map(|e| format!(" at {} (in {})", utc_text(e), span(e - now)))
                .unwrap_or_default();
            let step = if f.kind == CredentialKind::Oauth {
                format!(
                    "sign in again before then: {}",
                    login(f.provider, f.cli_agent)
                )
            } else {
                format!("paste a fresh token before then: {}", paste(f))
            };
            (format!("expires{when}"), step)
        }
        Problem::Expired => {
            let when = f
                .expires_ms
                .map(|e| format!(" at {} ({} ago)", utc_text(e), span(now - e)))
                .unwrap_or_default();
            let step = if f.kind == CredentialKind::Oauth {
                format!("sign in again: {}", login(f.provider, f.cli_agent))
            } else {
                format!("paste a new token: {}", paste(f))
            };
            (format!("expired{when} and is no longer used"), step)
        }
        Problem::Disabled(reason) => {
            let until = match f.until {
                Some(FOREVER) | None => "until it is fixed or cleared".to_string(),
                Some(u) => format!("until {} (in {})", utc_text(u), span(u - now)),
            };
            let why = match reason {
                Reason::Auth => "the provider refused it (authentication error)",
                Reason::Billing => "the provider reported a billing problem (out of credit)",
                Reason::Quota => "its quota is used up",
                Reason::RefreshFailed => "the provider refused to refresh the sign-in",
                Reason::RateLimit => "a rate limit",
            };
            let step = match reason {
                Reason::RefreshFailed => {
                    format!("sign in again: {}", login(f.provider, f.cli_agent))
                }
                Reason::Billing | Reason::Quota => format!(
                    "add credit or raise the limit with {}; it is tried again by itself when the disable ends, or at once after {}",
                    f.provider,
                    clear(f)
                ),
                _ => format!(
                    "{} (the disable ends when the secret changes); if it was a passing fault, clear it: {}",
                    replace_secret(f),
                    clear(f)
                ),
            };
            (format!("is disabled {until}: {why}"), step)
        }
        // A provider's problem (`provider_problem`); not said of one credential.
        Problem::NoCredential => (
            "cannot be used".to_string(),
            "see `remoteclaw models status`".to_string(),
        ),
    };
    format!("⚠️ RemoteClaw: {name} {state}. Next step: {step}.")
}

/// The message when a reported problem is over: the credential is usable again
/// (`now_state`: `ok`, `static`, `cooldown` after a rate limit), or it changed into
/// something alerts do not report (`missing`, with its reason code).
pub fn credential_recovered(
    f: &CredentialFacts<'_>,
    now_state: &str,
    usable: bool,
    reason: Option<&str>,
) -> String {
    if usable {
        return format!(
            "✅ RemoteClaw: {} is usable again ({now_state}).",
            credential_name(f)
        );
    }
    let reason = reason.map(|r| format!(", {r}")).unwrap_or_default();
    format!(
        "ℹ️ RemoteClaw: {} is now {now_state}{reason}; see `remoteclaw models status`.",
        credential_name(f)
    )
}

/// What a provider in use is needed for, for one agent.
#[derive(Debug, Clone)]
pub struct ProviderFacts<'a> {
    pub provider: &'a str,
    /// `default model anthropic/claude-sonnet-4-5` (the first model that needs it).
    pub needed_by: &'a str,
    /// The agent, when the gateway serves several.
    pub agent: Option<&'a str>,
    pub cli_agent: Option<&'a str>,
    /// The primary environment variable of the provider (`ANTHROPIC_API_KEY`).
    pub env_var: &'a str,
}

/// The alert for a provider in use with no usable credential left; `summary` lists
/// its credentials and why each is unusable (no secrets: ids, health, reasons).
pub fn provider_problem(f: &ProviderFacts<'_>, summary: &str) -> String {
    let agent = f
        .agent
        .map(|a| format!(" for agent {a}"))
        .unwrap_or_default();
    let listed = if summary.is_empty() {
        " It has no credentials at all.".to_string()
    } else {
        format!(" Its credentials: {summary}.")
    };
    format!(
        "🚨 RemoteClaw: {p} has no usable credential left{agent}, and the {needed} needs it: turns on {p} fail.{listed} Next step: {paste}, or set {var} and restart the gateway (`remoteclaw models status` shows the details).",
        p = f.provider,
        needed = f.needed_by,
        paste = format_args!(
            "`remoteclaw models auth paste-token --provider {}{}`",
            f.provider,
            f.cli_agent
                .map(|a| format!(" --agent {a}"))
                .unwrap_or_default()
        ),
        var = f.env_var,
    )
}

/// The alert for a provider that has a usable credential again.
pub fn provider_recovered(f: &ProviderFacts<'_>, next: Option<&str>) -> String {
    let agent = f
        .agent
        .map(|a| format!(" for agent {a}"))
        .unwrap_or_default();
    let next = next.map(|n| format!(" (next: {n})")).unwrap_or_default();
    format!(
        "✅ RemoteClaw: {} has a usable credential again{agent}{next}.",
        f.provider
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01 00:00 UTC

    fn facts(id: &str, kind: CredentialKind, source: CredentialSource) -> CredentialFacts<'_> {
        CredentialFacts {
            id,
            provider: "anthropic",
            kind,
            source,
            agent: None,
            cli_agent: None,
            expires_ms: None,
            until: None,
            detail: None,
        }
    }

    #[test]
    fn expiring_and_expired_tokens_name_the_time_and_the_paste_command() {
        let mut f = facts(
            "anthropic:manual",
            CredentialKind::Token,
            CredentialSource::Profile,
        );
        f.expires_ms = Some(NOW + 5 * 3_600_000);
        let text = credential_problem(&f, Problem::Expiring, NOW);
        assert_eq!(
            text,
            "⚠️ RemoteClaw: credential anthropic:manual (anthropic token) expires at 2026-01-01 05:00 UTC (in 5h 0m). Next step: paste a fresh token before then: `remoteclaw models auth paste-token --provider anthropic --profile-id anthropic:manual`."
        );
        let text = credential_problem(&f, Problem::Expired, NOW + 6 * 3_600_000);
        assert!(
            text.contains("expired at 2026-01-01 05:00 UTC (1h 0m ago)"),
            "{text}"
        );
        assert!(text.contains("paste-token --provider anthropic"), "{text}");
    }

    #[test]
    fn oauth_sign_ins_are_signed_in_again() {
        let mut f = facts(
            "openai-codex:me",
            CredentialKind::Oauth,
            CredentialSource::Profile,
        );
        f.provider = "openai-codex";
        f.cli_agent = Some("support");
        f.agent = Some("support");
        f.until = Some(FOREVER);
        let text = credential_problem(&f, Problem::Disabled(Reason::RefreshFailed), NOW);
        assert!(
            text.contains("`remoteclaw models auth login --provider openai-codex --agent support`"),
            "{text}"
        );
        assert!(text.contains("agent support"), "{text}");
        assert!(text.contains("until it is fixed or cleared"), "{text}");
    }

    #[test]
    fn disabled_env_keys_name_the_variable() {
        let mut f = facts(
            "env:ANTHROPIC_API_KEYS[1]",
            CredentialKind::ApiKey,
            CredentialSource::Env,
        );
        f.until = Some(FOREVER);
        let text = credential_problem(&f, Problem::Disabled(Reason::Auth), NOW);
        assert!(
            text.starts_with("⚠️ RemoteClaw: anthropic key env:ANTHROPIC_API_KEYS[1] (environment variable ANTHROPIC_API_KEYS) is disabled"),
            "{text}"
        );
        assert!(
            text.contains("set ANTHROPIC_API_KEYS to a working key"),
            "{text}"
        );
        assert!(
            text.contains("`remoteclaw models auth cooldown clear env:ANTHROPIC_API_KEYS[1]`"),
            "{text}"
        );
        f.until = Some(NOW + 5 * 3_600_000);
        let text = credential_problem(&f, Problem::Disabled(Reason::Billing), NOW);
        assert!(
            text.contains("is disabled until 2026-01-01 05:00 UTC (in 5h 0m)"),
            "{text}"
        );
        assert!(text.contains("add credit"), "{text}");
        assert_eq!(
            credential_recovered(&f, "static", true, None),
            "✅ RemoteClaw: anthropic key env:ANTHROPIC_API_KEYS[1] (environment variable ANTHROPIC_API_KEYS) is usable again (static)."
        );
    }

    #[test]
    fn providers_without_credentials() {
        let f = ProviderFacts {
            provider: "anthropic",
            needed_by: "default model anthropic/claude-sonnet-4-5",
            agent: None,
            cli_agent: None,
            env_var: "ANTHROPIC_API_KEY",
        };
        let text = provider_problem(&f, "anthropic:work disabled (auth)");
        assert!(text.contains("anthropic has no usable credential left, and the default model anthropic/claude-sonnet-4-5 needs it"), "{text}");
        assert!(
            text.contains("Its credentials: anthropic:work disabled (auth)."),
            "{text}"
        );
        assert!(
            text.contains("`remoteclaw models auth paste-token --provider anthropic`, or set ANTHROPIC_API_KEY"),
            "{text}"
        );
        assert!(provider_problem(&f, "").contains("no credentials at all"));
        assert_eq!(
            provider_recovered(&f, Some("anthropic:work")),
            "✅ RemoteClaw: anthropic has a usable credential again (next: anthropic:work)."
        );
    }
}
