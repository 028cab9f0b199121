//! Built-in OAuth providers as data (DESIGN §5a), and the endpoints of any provider with
//! its `[models.providers.<id>.oauth]` overrides applied.
//!
//! Each preset records what the reference system's sign-in for that provider uses: the
//! endpoints, the public client id, the scopes, the registered redirect URI, the extra
//! authorize parameters, and how turns reach the provider afterwards (wire API, base URL,
//! extra headers, the header that carries the account id). Every value can be overridden
//! in config, which is how the tests point all of it at loopback fakes.

use crate::config::{ApiKind, Config, OauthConfig};

/// One provider's built-in sign-in and endpoint data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub provider: &'static str,
    /// What onboarding calls it ("ChatGPT subscription").
    pub label: &'static str,
    pub api: ApiKind,
    pub base_url: &'static str,
    pub authorize_url: Option<&'static str>,
    pub token_url: &'static str,
    pub device_authorization_url: Option<&'static str>,
    pub revoke_url: Option<&'static str>,
    pub client_id: &'static str,
    pub scopes: &'static [&'static str],
    /// The loopback port of the authorization-code callback.
    pub redirect_port: Option<u16>,
    /// The exact redirect URI the provider registered for this client.
    pub redirect_uri: Option<&'static str>,
    /// Extra query parameters of the authorize URL.
    pub authorize_params: &'static [(&'static str, &'static str)],
    /// The device request carries a PKCE challenge (and the token poll its verifier).
    pub device_pkce: bool,
    /// Fixed headers every turn sends.
    pub headers: &'static [(&'static str, &'static str)],
    /// The header that carries the profile's `accountId` on every turn.
    pub account_header: Option<&'static str>,
    /// The token claim (under `https://api.openai.com/auth` for OpenAI) naming the account.
    pub account_claim: Option<&'static str>,
    /// The backend accepts only streamed turns and no output-token limit field.
    pub stream_only: bool,
    /// A model to suggest after sign-in.
    pub default_model: &'static str,
}

/// The ChatGPT subscription (Codex): authorization code + PKCE on the loopback port the
/// Codex CLI registered; turns go to the ChatGPT backend's Responses endpoint with the
/// account id header.
pub const OPENAI_CODEX: Preset = Preset {
    provider: "openai-codex",
    label: "ChatGPT subscription (OpenAI Codex)",
    api: ApiKind::OpenaiResponses,
    base_url: "https://chatgpt.com/backend-api/codex",
    authorize_url: Some("https://auth.openai.com/oauth/authorize"),
    token_url: "https://auth.openai.com/oauth/token",
    device_authorization_url: None,
    revoke_url: None,
    client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
    scopes: &["openid", "profile", "email", "offline_access"],
    redirect_port: Some(1455),
    redirect_uri: Some("http://localhost:1455/auth/callback"),
    authorize_params: &[
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("originator", "codex_cli_rs"),
    ],
    device_pkce: false,
    headers: &[
        ("OpenAI-Beta", "responses=experimental"),
        ("originator", "codex_cli_rs"),
    ],
    account_header: Some("chatgpt-account-id"),
    account_claim: Some("chatgpt_account_id"),
    stream_only: true,
    default_model: "openai-codex/gpt-5.1-codex",
};

/// Qwen's free tier: the device authorization grant (with a PKCE challenge), turns over
/// the OpenAI-compatible chat completions API.
pub const QWEN_PORTAL: Preset = Preset {
    provider: "qwen-portal",
    label: "Qwen (free tier, device code)",
    api: ApiKind::OpenaiCompletions,
    base_url: "https://portal.qwen.ai/v1",
    authorize_url: None,
    token_url: "https://chat.qwen.ai/api/v1/oauth2/token",
    device_authorization_url: Some("https://chat.qwen.ai/api/v1/oauth2/device/code"),
    revoke_url: None,
    client_id: "f0304373b74a44d2b584a3fb70ca9e56",
    scopes: &["openid", "profile", "email", "model.completion"],
    redirect_port: None,
    redirect_uri: None,
    authorize_params: &[],
    device_pkce: true,
    headers: &[],
    account_header: None,
    account_claim: None,
    stream_only: false,
    default_model: "qwen-portal/coder-model",
};

pub const PRESETS: [&Preset; 2] = [&OPENAI_CODEX, &QWEN_PORTAL];

pub fn preset(provider: &str) -> Option<&'static Preset> {
    PRESETS.iter().copied().find(|p| p.provider == provider)
}

/// A provider's OAuth endpoints, preset and config merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub provider: String,
    pub authorize_url: Option<String>,
    pub token_url: String,
    pub device_authorization_url: Option<String>,
    pub revoke_url: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `None`: any free loopback port.
    pub redirect_port: Option<u16>,
    pub redirect_uri: Option<String>,
    pub authorize_params: Vec<(String, String)>,
    pub device_pkce: bool,
    pub account_claim: Option<String>,
}

impl Endpoints {
    /// The endpoints of `provider`, or `None` when it has neither a preset nor a
    /// `[models.providers.<id>.oauth]` table with at least `tokenUrl` and `clientId`.
    pub fn of(config: &Config, provider: &str) -> Option<Endpoints> {
        let over = config
            .models
            .providers
            .get(provider)
            .and_then(|p| p.oauth.as_ref());
        Self::merge(preset(provider), over, provider)
    }

    fn merge(
        preset: Option<&Preset>,
        over: Option<&OauthConfig>,
        provider: &str,
    ) -> Option<Endpoints> {
        let empty = OauthConfig::default();
        let o = over.unwrap_or(&empty);
        let pick =
            |c: &Option<String>, p: Option<&'static str>| c.clone().or(p.map(str::to_string));
        Some(Endpoints {
            provider: provider.to_string(),
            authorize_url: pick(&o.authorize_url, preset.and_then(|p| p.authorize_url)),
            token_url: pick(&o.token_url, preset.map(|p| p.token_url))?,
            device_authorization_url: pick(
                &o.device_authorization_url,
                preset.and_then(|p| p.device_authorization_url),
            ),
            revoke_url: pick(&o.revoke_url, preset.and_then(|p| p.revoke_url)),
            client_id: pick(&o.client_id, preset.map(|p| p.client_id))?,
            scopes: o.scopes.clone().unwrap_or_else(|| {
                preset
                    .map(|p| p.scopes.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default()
            }),
            redirect_port: o.redirect_port.or(preset.and_then(|p| p.redirect_port)),
            // A configured port without a URI means the default URI on that port, not
            // the preset's registered one (which names its own port).
            redirect_uri: o.redirect_uri.clone().or_else(|| {
                if o.redirect_port.is_some() {
                    None
                } else {
                    preset.and_then(|p| p.redirect_uri).map(str::to_string)
                }
            }),
            authorize_params: preset
                .map(|p| {
                    p.authorize_params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            device_pkce: preset.is_some_and(|p| p.device_pkce),
            account_claim: preset.and_then(|p| p.account_claim).map(str::to_string),
        })
    }

    /// The redirect URI for a callback server listening on `port`.
    pub fn redirect_uri_for(&self, port: u16) -> String {
        match &self.redirect_uri {
            Some(u) => u.clone(),
            None => format!("http://127.0.0.1:{port}/auth/callback"),
        }
    }

    /// The loopback port to listen on: the port of a configured redirect URI, else
    /// `redirectPort`, else 0 (any free port).
    pub fn listen_port(&self) -> u16 {
        self.redirect_uri
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.port_or_known_default())
            .or(self.redirect_port)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::parse(std::path::Path::new("t.toml"), text).expect("valid")
    }

    #[test]
    fn presets_fill_in_and_config_overrides_each_key() {
        let c = cfg("");
        let e = Endpoints::of(&c, "openai-codex").expect("preset");
        assert_eq!(e.token_url, "https://auth.openai.com/oauth/token");
        assert_eq!(e.listen_port(), 1455);
        assert_eq!(
            e.redirect_uri_for(1455),
            "http://localhost:1455/auth/callback"
        );
        assert!(Endpoints::of(&c, "anthropic").is_none());

        let c = cfg(r#"
[models.providers.openai-codex.oauth]
tokenUrl = "http://127.0.0.1:9/token"
redirectPort = 0
"#);
        let e = Endpoints::of(&c, "openai-codex").expect("preset");
        assert_eq!(e.token_url, "http://127.0.0.1:9/token");
        assert_eq!(e.client_id, OPENAI_CODEX.client_id);
        assert_eq!(e.listen_port(), 0);
        assert_eq!(
            e.redirect_uri_for(4242),
            "http://127.0.0.1:4242/auth/callback"
        );

        let c = cfg(r#"
[models.providers.corp]
baseUrl = "http://127.0.0.1:9/v1"
api = "openai-completions"
[models.providers.corp.oauth]
tokenUrl = "http://127.0.0.1:9/token"
clientId = "cli"
deviceAuthorizationUrl = "http://127.0.0.1:9/device/code"
scopes = ["a", "b"]
"#);
        let e = Endpoints::of(&c, "corp").expect("configured");
        assert_eq!(e.scopes, ["a", "b"]);
        assert!(e.authorize_url.is_none());
        assert!(!e.device_pkce);
    }

    #[test]
    fn bad_oauth_tables_are_load_errors_naming_the_key() {
        let bad = [
            (
                "[models.providers.openai-codex.oauth]\ntokenUrl = \"ftp://x\"\n",
                "models.providers.openai-codex.oauth.tokenUrl",
            ),
            (
                "[models.providers.corp]\nbaseUrl = \"http://127.0.0.1:9\"\napi = \"openai-completions\"\n[models.providers.corp.oauth]\nauthorizeUrl = \"http://127.0.0.1:9/a\"\n",
                "models.providers.corp.oauth",
            ),
            (
                "[models.providers.openai-codex.oauth]\nclientID = \"x\"\n",
                "clientID",
            ),
        ];
        for (text, key) in bad {
            let e = crate::config::parse(std::path::Path::new("t.toml"), text)
                .expect_err(text)
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
