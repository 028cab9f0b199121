//! Environment keys for a provider, in DESIGN §5 priority: `REMOTECLAW_LIVE_<P>_KEY`
//! alone when set; else `<P>_API_KEYS` (split on commas, semicolons, whitespace),
//! `<P>_API_KEY`, `<P>_API_KEY_*` by name; for Google also `GOOGLE_API_KEY`. Pure.

use super::credential::{Credential, CredentialKind, CredentialSource};
use crate::config::env::EnvMap;
use crate::secret::Secret;

/// The `<P>` of a provider's variables: upper-cased, `-` → `_`; Google uses `GEMINI`.
pub fn env_prefix(provider: &str) -> String {
    if provider == "google" {
        return "GEMINI".into();
    }
    provider.to_ascii_uppercase().replace(['-', '.'], "_")
}

/// The variable an operator should set for `provider`.
pub fn primary_env_var(provider: &str) -> String {
    format!("{}_API_KEY", env_prefix(provider))
}

fn cred(provider: &str, id: String, value: &str) -> Credential {
    Credential {
        id: id.into(),
        provider: provider.into(),
        kind: CredentialKind::ApiKey,
        source: CredentialSource::Env,
        secret: Secret::new(value.trim()),
        expires_ms: None,
        account_id: None,
        refresh_fp: None,
    }
}

pub fn env_candidates(provider: &str, env: &EnvMap) -> Vec<Credential> {
    let p = env_prefix(provider);
    let live = format!("REMOTECLAW_LIVE_{p}_KEY");
    if let Some(v) = env.get_nonblank(&live) {
        return vec![cred(provider, format!("env:{live}"), v)];
    }
    let mut out = Vec::new();
    let list = format!("{p}_API_KEYS");
    if let Some(v) = env.get(&list) {
        let parts = v
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty());
        out.extend(
            parts
                .enumerate()
                .map(|(i, k)| cred(provider, format!("env:{list}[{i}]"), k)),
        );
    }
    let single = format!("{p}_API_KEY");
    if let Some(v) = env.get_nonblank(&single) {
        out.push(cred(provider, format!("env:{single}"), v));
    }
    let prefix = format!("{p}_API_KEY_");
    for (name, v) in env.with_prefix(&prefix) {
        if !v.trim().is_empty() {
            out.push(cred(provider, format!("env:{name}"), v));
        }
    }
    if provider == "google"
        && let Some(v) = env.get_nonblank("GOOGLE_API_KEY")
    {
        out.push(cred(provider, "env:GOOGLE_API_KEY".into(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(provider: &str, pairs: &[(&str, &str)]) -> Vec<String> {
        env_candidates(provider, &EnvMap::from_pairs(pairs.iter().copied()))
            .into_iter()
            .map(|c| c.id.to_string())
            .collect()
    }

    #[test]
    fn priority_and_splitting() {
        let env = [
            ("ANTHROPIC_API_KEY_B", "kb"),
            ("ANTHROPIC_API_KEY", "k"),
            ("ANTHROPIC_API_KEYS", "k1, k2;k3\tk4"),
            ("ANTHROPIC_API_KEY_A", "ka"),
            ("ANTHROPIC_API_KEY_EMPTY", "  "),
        ];
        assert_eq!(
            ids("anthropic", &env),
            [
                "env:ANTHROPIC_API_KEYS[0]",
                "env:ANTHROPIC_API_KEYS[1]",
                "env:ANTHROPIC_API_KEYS[2]",
                "env:ANTHROPIC_API_KEYS[3]",
                "env:ANTHROPIC_API_KEY",
                "env:ANTHROPIC_API_KEY_A",
                "env:ANTHROPIC_API_KEY_B"
            ]
        );
    }

    #[test]
    fn live_key_alone() {
        assert_eq!(
            ids(
                "openai",
                &[("REMOTECLAW_LIVE_OPENAI_KEY", "x"), ("OPENAI_API_KEY", "y")]
            ),
            ["env:REMOTECLAW_LIVE_OPENAI_KEY"]
        );
        assert_eq!(
            ids(
                "openai",
                &[("REMOTECLAW_LIVE_OPENAI_KEY", " "), ("OPENAI_API_KEY", "y")]
            ),
            ["env:OPENAI_API_KEY"]
        );
    }

    #[test]
    fn google_and_custom_ids() {
        assert_eq!(
            ids(
                "google",
                &[("GOOGLE_API_KEY", "g"), ("GEMINI_API_KEY", "m")]
            ),
            ["env:GEMINI_API_KEY", "env:GOOGLE_API_KEY"]
        );
        assert_eq!(
            ids("my-llm", &[("MY_LLM_API_KEY", "v")]),
            ["env:MY_LLM_API_KEY"]
        );
        assert_eq!(primary_env_var("google"), "GEMINI_API_KEY");
        assert_eq!(primary_env_var("openrouter"), "OPENROUTER_API_KEY");
    }
}
