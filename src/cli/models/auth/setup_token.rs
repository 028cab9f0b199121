//! `remoteclaw models auth setup-token --provider anthropic [--yes] [--agent ID]`: store a
//! Claude setup token (from `claude setup-token`) as profile `anthropic:manual`. Needs
//! an interactive terminal: the token is typed or pasted without echo and checked
//! (prefix `sk-ant-oat01-`, at least 80 characters) before anything is written.

use super::paste_token::{print_stored, store_token};
use crate::auth::credential::ANTHROPIC_OAUTH_PREFIX;
use crate::auth::profiles::ProfileCredential;
use crate::catalog::normalize_provider;
use crate::cli::onboard::credentials::{
    Target, check_secret_text, expiry_text, now_ms, prompt_hidden, prompt_line, stdin_is_tty,
};
use crate::secret::Secret;
use anyhow::bail;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SetupTokenArgs {
    /// Only anthropic has setup tokens.
    #[arg(long, value_name = "P", default_value = "anthropic")]
    pub provider: String,
    /// Replace an existing anthropic:manual profile without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Agent whose credentials to change (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

/// The profile setup tokens are stored under.
const PROFILE_ID: &str = "anthropic:manual";
/// Shortest setup token accepted, in characters.
const MIN_LEN: usize = 80;
/// Wrong pastes allowed before giving up.
const ATTEMPTS: usize = 3;

/// Check a setup token; the message says which rule failed and never quotes the token.
pub(super) fn validate_setup_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("no token entered".into());
    }
    if let Err(e) = check_secret_text(token, "token") {
        return Err(e.to_string());
    }
    if !token.starts_with(ANTHROPIC_OAUTH_PREFIX) {
        return Err(format!(
            "that is not a setup token: setup tokens start with {ANTHROPIC_OAUTH_PREFIX}. Run `claude setup-token` to get one (an API key sk-ant-api03-… belongs in ANTHROPIC_API_KEY or `remoteclaw onboard`)"
        ));
    }
    let len = token.chars().count();
    if len < MIN_LEN {
        return Err(format!(
            "the token is {len} characters long, but setup tokens have at least {MIN_LEN}: copy all of it (it may wrap over several terminal lines)"
        ));
    }
    Ok(())
}

pub async fn run(args: SetupTokenArgs) -> anyhow::Result<ExitCode> {
    // The provider first: a wrong one is wrong with or without a terminal.
    let provider = normalize_provider(&args.provider);
    if provider != "anthropic" {
        bail!(
            "setup-token is only for --provider anthropic (Claude setup tokens); for {} use `remoteclaw models auth paste-token --provider {}`",
            args.provider.trim(),
            provider
        );
    }
    if !stdin_is_tty() {
        bail!(
            "setup-token requires an interactive TTY\nhint: in a script, pipe the token into `remoteclaw models auth paste-token --provider anthropic` instead (it reads stdin when stdin is not a terminal)"
        );
    }
    let target = Target::load(args.agent.as_deref())?;
    let store = target.store()?;
    if let Some(existing) = store.profiles.get(PROFILE_ID)
        && !args.yes
    {
        let what = match &existing.credential {
            ProfileCredential::Token {
                token, expires_ms, ..
            } => format!(
                "token{}, {}",
                token
                    .as_ref()
                    .map(|t| format!(", fingerprint {}", t.fingerprint()))
                    .unwrap_or_default(),
                expiry_text(*expires_ms, now_ms())
            ),
            ProfileCredential::ApiKey { .. } => "an API key".into(),
            ProfileCredential::Oauth { .. } => "OAuth credentials".into(),
        };
        let answer = prompt_line(&format!(
            "Profile {PROFILE_ID} already exists ({what}). Replace it? Type y to replace, Enter to keep it [y/N]: "
        ))?;
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            eprintln!("Kept the existing {PROFILE_ID}; nothing was changed.");
            return Ok(ExitCode::FAILURE);
        }
    }

    eprintln!("A setup token lets RemoteClaw use your Claude subscription:");
    eprintln!("  1. In another terminal, run `claude setup-token` (Claude Code) and sign in.");
    eprintln!("  2. Copy the token it prints; it starts with {ANTHROPIC_OAUTH_PREFIX}.");
    let mut token = None;
    for attempt in 1..=ATTEMPTS {
        let t = prompt_hidden("Paste the token (input is hidden), then press Enter: ")?;
        match validate_setup_token(&t) {
            Ok(()) => {
                token = Some(Secret::new(t));
                break;
            }
            Err(e) if attempt < ATTEMPTS => eprintln!("{e}. Try again."),
            Err(e) => bail!("{e}. Nothing was changed."),
        }
    }
    let Some(token) = token else {
        bail!("no setup token entered; nothing was changed");
    };
    let stored = store_token(&target, PROFILE_ID, "anthropic", &token, None)?;
    print_stored(&target, &stored);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(len: usize) -> String {
        let mut t = ANTHROPIC_OAUTH_PREFIX.to_string();
        while t.len() < len {
            t.push('x');
        }
        t
    }

    #[test]
    fn accepts_prefix_and_length() {
        assert_eq!(validate_setup_token(&token(80)), Ok(()));
        assert_eq!(validate_setup_token(&token(108)), Ok(()));
    }

    #[test]
    fn wrong_prefix_names_the_rule_not_the_token() {
        let api_key = format!("sk-ant-api03-{}", "y".repeat(90));
        let e = validate_setup_token(&api_key).unwrap_err();
        assert!(e.contains("start with sk-ant-oat01-"), "{e}");
        assert!(!e.contains("yyyy"), "{e}");
        // The prefix rule is checked first, whatever the length.
        let e = validate_setup_token("hello").unwrap_err();
        assert!(e.contains("start with"), "{e}");
    }

    #[test]
    fn too_short_says_the_length_seen() {
        let e = validate_setup_token(&token(79)).unwrap_err();
        assert!(e.contains("79 characters"), "{e}");
        assert!(e.contains("at least 80"), "{e}");
        assert!(!e.contains("xxxx"), "{e}");
    }

    #[test]
    fn empty_and_multi_line_pastes() {
        assert_eq!(validate_setup_token(""), Err("no token entered".into()));
        let two = format!("{}\n{}", token(80), token(80));
        let e = validate_setup_token(&two).unwrap_err();
        assert!(e.contains("more than one line"), "{e}");
    }
}
