//! Which wire API and endpoint each provider id uses: built-in defaults for the
//! well-known providers, overridden per provider by `models.providers.<id>`.

use crate::config::{ApiKind, Config};
use std::time::Duration;

/// Default connect timeout (DESIGN §5).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default idle timeout: no byte from the provider for this long ends the turn.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Built-in endpoint of a well-known provider.
pub fn builtin(provider: &str) -> Option<(ApiKind, &'static str)> {
    Some(match provider {
        "anthropic" => (ApiKind::AnthropicMessages, "https://api.anthropic.com"),
        "openai" => (ApiKind::OpenaiCompletions, "https://api.openai.com/v1"),
        "openrouter" => (ApiKind::OpenaiCompletions, "https://openrouter.ai/api/v1"),
        "ollama" => (ApiKind::OpenaiCompletions, "http://127.0.0.1:11434/v1"),
        "google" => (
            ApiKind::GoogleGenerative,
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        other => {
            let p = crate::oauth::preset::preset(other)?;
            (p.api, p.base_url)
        }
    })
}

/// Ids of the built-in providers, for listings.
pub const BUILTIN_PROVIDERS: [&str; 7] = [
    "anthropic",
    "openai",
    "openrouter",
    "google",
    "ollama",
    "openai-codex",
    "qwen-portal",
];

/// Every provider a model may name: the built-in ones and those configured with both
/// `baseUrl` and `api` (exactly the ids `ProviderSettings::resolve` knows).
pub fn known_providers(config: &Config) -> std::collections::BTreeSet<String> {
    BUILTIN_PROVIDERS
        .iter()
        .map(|p| p.to_string())
        .chain(config.models.providers.keys().cloned())
        .filter(|p| ProviderSettings::resolve(config, p).is_some())
        .collect()
}

/// Everything a provider client needs to know about one provider, except the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    pub id: String,
    pub api: ApiKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Fixed headers every call sends (a preset's, e.g. the Codex backend's `OpenAI-Beta`).
    pub headers: Vec<(&'static str, &'static str)>,
    /// The header that carries an OAuth profile's account id (`chatgpt-account-id`).
    pub account_header: Option<&'static str>,
    /// The backend answers only streamed calls and takes no output-token limit: a call
    /// without a sink streams and collects.
    pub stream_only: bool,
}

impl ProviderSettings {
    /// Settings for `provider`, or `None` when it is neither built in nor configured
    /// with both `baseUrl` and `api`.
    pub fn resolve(config: &Config, provider: &str) -> Option<ProviderSettings> {
        let over = config.models.providers.get(provider);
        let builtin = builtin(provider);
        let preset = crate::oauth::preset::preset(provider);
        let api = over.and_then(|o| o.api).or(builtin.map(|b| b.0))?;
        let base_url = over
            .and_then(|o| o.base_url.clone())
            .or(builtin.map(|b| b.1.to_string()))?;
        Some(ProviderSettings {
            id: provider.to_string(),
            api,
            base_url: base_url.trim_end_matches('/').to_string(),
            connect_timeout: over
                .and_then(|o| o.connect_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            idle_timeout: over
                .and_then(|o| o.idle_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_IDLE_TIMEOUT),
            headers: preset.map(|p| p.headers.to_vec()).unwrap_or_default(),
            account_header: preset.and_then(|p| p.account_header),
            stream_only: preset.is_some_and(|p| p.stream_only),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_overrides() {
        let cfg = crate::config::parse(
            std::path::Path::new("t.toml"),
            r#"
[models.providers.anthropic]
baseUrl = "http://127.0.0.1:9/"
idleTimeoutSecs = 5
[models.providers.local]
baseUrl = "http://127.0.0.1:11434/v1"
api = "openai-completions"
"#,
        )
        .expect("valid");
        let a = ProviderSettings::resolve(&cfg, "anthropic").expect("anthropic");
        assert_eq!(a.base_url, "http://127.0.0.1:9");
        assert_eq!(a.api, ApiKind::AnthropicMessages);
        assert_eq!(a.idle_timeout, Duration::from_secs(5));
        assert_eq!(a.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let o = ProviderSettings::resolve(&cfg, "openrouter").expect("openrouter");
        assert_eq!(o.base_url, "https://openrouter.ai/api/v1");
        let g = ProviderSettings::resolve(&cfg, "google").expect("google");
        assert_eq!(g.api, ApiKind::GoogleGenerative);
        assert!(ProviderSettings::resolve(&cfg, "local").is_some());
        assert!(ProviderSettings::resolve(&cfg, "nosuch").is_none());
    }
}
