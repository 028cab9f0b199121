//! `remoteclaw models auth paste-token --provider P [--profile-id ID] [--expires-in DUR]
//! [--agent ID]`: store a token as a `token` profile in the agent's auth-profiles.json
//! and declare it in the config. The token comes from the terminal without echo, or
//! from stdin when stdin is not a terminal (scripts). It is never printed: the report
//! names it by fingerprint.

use crate::cli::onboard::credentials::{
    Target, check_profile_id, check_secret_text, expiry_text, now_ms, prompt_hidden, read_stdin,
    stdin_is_tty,
};
use crate::secret::Secret;
use anyhow::bail;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct PasteTokenArgs {
    /// Provider the token is for (built in, or configured in [models.providers]).
    #[arg(long, value_name = "P")]
    pub provider: String,
    /// Profile id to store it under (default: <provider>:manual).
    #[arg(long, value_name = "ID")]
    pub profile_id: Option<String>,
    /// How long the token is valid: 365d, 12h, 30m, or a number of days.
    #[arg(long, value_name = "DUR")]
    pub expires_in: Option<String>,
    /// Agent whose credentials to change (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

/// The longest `--expires-in` accepted (100 years), so the sum cannot overflow.
const MAX_EXPIRES_DAYS: i64 = 36_500;

/// `--expires-in` in milliseconds: `<n>d`, `<n>h`, `<n>m`, or `<n>` days; n ≥ 1.
pub(super) fn parse_expires_in(raw: &str) -> anyhow::Result<i64> {
    let s = raw.trim();
    let (digits, unit_ms) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit = match c.to_ascii_lowercase() {
                'd' => 86_400_000,
                'h' => 3_600_000,
                'm' => 60_000,
                _ => 0,
            };
            (&s[..i], unit)
        }
        _ => (s, 86_400_000),
    };
    let n = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        None
    } else {
        digits.parse::<i64>().ok()
    };
    match n {
        Some(n)
            if unit_ms > 0
                && n > 0
                && n.saturating_mul(unit_ms) <= MAX_EXPIRES_DAYS * 86_400_000 =>
        {
            Ok(n * unit_ms)
        }
        Some(n) if unit_ms > 0 && n > 0 => bail!(
            "--expires-in \"{raw}\" is too long: at most {MAX_EXPIRES_DAYS}d. Leave it out for a token that does not expire."
        ),
        _ => bail!(
            "--expires-in \"{raw}\" is not a duration: use a positive number of days (365d or 365), hours (12h) or minutes (30m)"
        ),
    }
}

/// What was stored, for the report.
#[derive(Debug)]
pub(super) struct StoredToken {
    pub id: String,
    pub provider: String,
    pub fingerprint: String,
    pub expires_ms: Option<i64>,
    pub saved: crate::cli::onboard::credentials::Saved,
}

/// Store `token` as `{"type":"token","provider":P,"token":…,"expires"?:ms}` under `id`
/// and declare it (mode `token`). Shared by paste-token and setup-token.
pub(super) fn store_token(
    target: &Target,
    id: &str,
    provider: &str,
    token: &Secret,
    expires_ms: Option<i64>,
) -> anyhow::Result<StoredToken> {
    let mut profile = json!({ "type": "token", "provider": provider, "token": token.expose() });
    if let Some(ms) = expires_ms {
        profile["expires"] = json!(ms);
    }
    let saved = target.save_profile(id, provider, "token", profile)?;
    Ok(StoredToken {
        id: id.to_string(),
        provider: provider.to_string(),
        fingerprint: token.fingerprint().to_string(),
        expires_ms,
        saved,
    })
}

/// The report on stdout: id, provider, fingerprint, expiry, files, notes, next step.
pub(super) fn print_stored(target: &Target, s: &StoredToken) {
    let verb = match &s.saved.replaced {
        Some(old) => format!("Replaced profile {} (was {old})", s.id),
        None => format!("Stored profile {}", s.id),
    };
    println!(
        "{verb}: token for {}, fingerprint {}, {}.",
        s.provider,
        s.fingerprint,
        expiry_text(s.expires_ms, now_ms())
    );
    println!("  credentials: {}", s.saved.path.display());
    println!(
        "  declared in: {} (auth.profiles.\"{}\", mode token{})",
        target.config_path.display(),
        s.id,
        if s.saved.declaration_changed {
            ", changed"
        } else {
            ""
        }
    );
    for n in &s.saved.notes {
        println!("Note: {n}");
    }
    println!("Next: check with `remoteclaw models status --check`.");
}

pub async fn run(args: PasteTokenArgs) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let provider = target.provider(&args.provider)?;
    let id = args
        .profile_id
        .clone()
        .unwrap_or_else(|| format!("{provider}:manual"));
    check_profile_id(&id)?;
    let lifetime = args
        .expires_in
        .as_deref()
        .map(parse_expires_in)
        .transpose()?;

    let token = if stdin_is_tty() {
        let t = prompt_hidden(&format!(
            "Paste the {provider} token for profile {id} (input is hidden), then press Enter: "
        ))?;
        if t.is_empty() {
            bail!("no token entered; nothing was changed");
        }
        t
    } else {
        let t = read_stdin()?;
        if t.is_empty() {
            bail!(
                "no token on stdin: pipe it in, e.g. `printf '%s' \"$TOKEN\" | remoteclaw models auth paste-token --provider {provider}`, or run the command in a terminal"
            );
        }
        t
    };
    check_secret_text(&token, "token")?;
    let token = Secret::new(token);
    // "Now" is taken after the token arrived: a prompt may wait for a while.
    let expires_ms = lifetime.map(|d| now_ms() + d);
    let stored = store_token(&target, &id, &provider, &token, expires_ms)?;
    print_stored(&target, &stored);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_expires_in("365d").unwrap(), 365 * 86_400_000);
        assert_eq!(parse_expires_in("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_expires_in("30m").unwrap(), 30 * 60_000);
        assert_eq!(parse_expires_in("7").unwrap(), 7 * 86_400_000);
        assert_eq!(parse_expires_in(" 2D ").unwrap(), 2 * 86_400_000);
        for bad in [
            "0",
            "0d",
            "",
            "d",
            "12x",
            "-1d",
            "1.5d",
            "12 h",
            "abc",
            "99999999999999999999d",
        ] {
            let e = parse_expires_in(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{bad}\"")), "{bad}: {e}");
        }
        let e = parse_expires_in("40000d").unwrap_err().to_string();
        assert!(e.contains("too long"), "{e}");
    }
}
