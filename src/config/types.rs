//! The typed shape of `remoteclaw.toml` (DESIGN §3). Every table rejects unknown keys;
//! cross-references are checked afterwards by `validate`.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub env: EnvConfig,
    pub agents: AgentsConfig,
    pub auth: AuthConfig,
    pub models: ModelsConfig,
    pub secrets: SecretsConfig,
    pub channels: ChannelsConfig,
    pub gateway: GatewayConfig,
    pub session: SessionConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvConfig {
    pub shell_env: ShellEnvConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ShellEnvConfig {
    pub enabled: bool,
    /// How long the login shell may take before it is killed.
    pub timeout_ms: u64,
}

impl Default for ShellEnvConfig {
    fn default() -> Self {
        ShellEnvConfig {
            enabled: false,
            timeout_ms: 15_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentsConfig {
    pub default_id: String,
    pub defaults: AgentDefaults,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            default_id: "main".into(),
            defaults: AgentDefaults::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentDefaults {
    pub model: ModelChoice,
    /// Non-empty = allowlist. Keys are `provider/model` refs.
    pub models: BTreeMap<String, ModelEntry>,
    /// Upper bound on reply tokens requested from the provider.
    pub max_tokens: Option<u32>,
    /// System prompt sent with every turn.
    pub system_prompt: Option<String>,
    /// Every turn ends within this many seconds (all attempts included), with its
    /// reply or a `timeout` error. Unset: `engine::DEFAULT_TURN_TIMEOUT` (600 s).
    pub turn_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelChoice {
    pub primary: String,
    pub fallbacks: Vec<String>,
}

impl Default for ModelChoice {
    fn default() -> Self {
        ModelChoice {
            primary: crate::catalog::DEFAULT_MODEL.into(),
            fallbacks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelEntry {
    pub alias: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    pub profiles: BTreeMap<String, ProfileDecl>,
    pub order: BTreeMap<String, Vec<String>>,
    pub cooldowns: CooldownConfig,
    pub pin_policy: PinPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileDecl {
    pub provider: String,
    pub mode: CredentialMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialMode {
    ApiKey,
    Token,
    Oauth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CooldownConfig {
    pub rate_limit_backoff_secs: Vec<u64>,
    pub billing_backoff_hours: u64,
    pub billing_max_hours: u64,
}

impl Default for CooldownConfig {
    fn default() -> Self {
        CooldownConfig {
            rate_limit_backoff_secs: vec![60, 300, 1500, 3600],
            billing_backoff_hours: 5,
            billing_max_hours: 24,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinPolicy {
    #[default]
    Strict,
    Fallback,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelsConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderConfig {
    pub base_url: Option<String>,
    pub api: Option<ApiKind>,
    pub api_key: Option<SecretInput>,
    pub connect_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKind {
    AnthropicMessages,
    OpenaiCompletions,
    GoogleGenerative,
}

impl ApiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::AnthropicMessages => "anthropic-messages",
            ApiKind::OpenaiCompletions => "openai-completions",
            ApiKind::GoogleGenerative => "google-generative",
        }
    }
}

/// A secret given inline (a string) or as a reference to where it lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretInput {
    Plain(String),
    Ref(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub source: SecretSource,
    #[serde(default = "default_secret_provider")]
    pub provider: String,
    pub id: String,
}

fn default_secret_provider() -> String {
    "default".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Env,
    File,
    Exec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretsConfig {
    pub providers: BTreeMap<String, SecretProviderConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum SecretProviderConfig {
    Env(EnvSecretProvider),
    File(FileSecretProvider),
    Exec(ExecSecretProvider),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvSecretProvider {
    /// When set, only these variable names may be read through this provider.
    pub allowlist: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileSecretProvider {
    pub path: String,
    #[serde(default)]
    pub mode: FileSecretMode,
    pub max_bytes: Option<u64>,
    /// Accept a symlink at `path` (off by default).
    #[serde(default)]
    pub allow_symlink: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileSecretMode {
    #[default]
    Json,
    SingleValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecSecretProvider {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub pass_env: Vec<String>,
    pub timeout_ms: Option<u64>,
    pub max_output_bytes: Option<u64>,
    /// Accept a symlink at `command` (off by default; package managers often install links).
    #[serde(default)]
    pub allow_symlink: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelsConfig {
    pub telegram: Option<TelegramConfig>,
    pub discord: Option<DiscordConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

impl DmPolicy {
    /// Whether a direct message from a sender is let through: `listed` = the sender is in
    /// `allowFrom`; `approved` (asked only when needed) = a pairing approval exists.
    pub fn admits(self, listed: bool, approved: impl FnOnce() -> bool) -> bool {
        match self {
            DmPolicy::Disabled => false,
            DmPolicy::Open => true,
            DmPolicy::Allowlist => listed,
            DmPolicy::Pairing => listed || approved(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TelegramConfig {
    pub enabled: bool,
    pub bot_token: Option<String>,
    pub bot_token_ref: Option<SecretRef>,
    pub api_root: String,
    pub dm_policy: DmPolicy,
    pub agent: Option<String>,
    pub allow_from: Vec<i64>,
    pub owners: Option<Vec<i64>>,
    pub groups: Vec<i64>,
    pub require_mention: bool,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            enabled: false,
            bot_token: None,
            bot_token_ref: None,
            api_root: "https://api.telegram.org".into(),
            dm_policy: DmPolicy::Pairing,
            agent: None,
            allow_from: Vec::new(),
            owners: None,
            groups: Vec::new(),
            require_mention: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscordConfig {
    pub enabled: bool,
    pub token: Option<String>,
    pub token_ref: Option<SecretRef>,
    pub api_base: String,
    pub guilds: Vec<String>,
    pub channels: Vec<String>,
    pub allow_from: Vec<String>,
    pub owners: Option<Vec<String>>,
    pub dm_policy: DmPolicy,
    pub agent: Option<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            enabled: false,
            token: None,
            token_ref: None,
            api_base: "https://discord.com".into(),
            guilds: Vec::new(),
            channels: Vec::new(),
            allow_from: Vec::new(),
            owners: None,
            dm_policy: DmPolicy::Pairing,
            agent: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    pub bind: String,
    pub port: u16,
    pub auth: GatewayAuthConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            bind: "127.0.0.1".into(),
            port: 18789,
            auth: GatewayAuthConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayAuthConfig {
    pub token: Option<SecretInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionConfig {
    pub store: SessionStoreKind,
    pub redis_url: Option<String>,
    pub history_turns: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            store: SessionStoreKind::Sqlite,
            redis_url: None,
            history_turns: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    #[default]
    Sqlite,
    Redis,
}

#[cfg(test)]
mod tests {
    use super::DmPolicy;

    #[test]
    fn dm_policies() {
        let never = || -> bool { panic!("the pairing store is asked only under pairing") };
        assert!(!DmPolicy::Disabled.admits(true, never));
        assert!(DmPolicy::Open.admits(false, never));
        assert!(DmPolicy::Allowlist.admits(true, never));
        assert!(!DmPolicy::Allowlist.admits(false, never));
        assert!(
            DmPolicy::Pairing.admits(true, never),
            "listed senders need no approval lookup"
        );
        assert!(DmPolicy::Pairing.admits(false, || true));
        assert!(!DmPolicy::Pairing.admits(false, || false));
    }
}
