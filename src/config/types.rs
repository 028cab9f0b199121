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
    /// `[alerts]`: where the gateway reports credential trouble (DESIGN §11).
    pub alerts: Option<AlertsConfig>,
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
    /// The largest image a message may carry (DESIGN §10); unset:
    /// `media::DEFAULT_MAX_IMAGE_BYTES` (5 MiB).
    pub max_image_bytes: Option<u64>,
}

impl AgentDefaults {
    /// `maxImageBytes`, or its default.
    pub fn max_image_bytes(&self) -> u64 {
        self.max_image_bytes
            .unwrap_or(crate::media::DEFAULT_MAX_IMAGE_BYTES)
    }

    /// Whether the model `model_key` (`provider/model`) takes image input: false only
    /// when its entry says `images = false`.
    pub fn accepts_images(&self, model_key: &str) -> bool {
        self.models
            .get(model_key)
            .and_then(|e| e.images)
            .unwrap_or(true)
    }
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
    /// `false`: the model takes no image input (DESIGN §10). Unset: it does.
    pub images: Option<bool>,
}

/// How a chat channel shows a reply while the model writes it (DESIGN §10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Streaming {
    /// Send the first part early, then edit it as the text grows.
    #[default]
    Edit,
    /// Telegram private chats: `sendMessageDraft`, then the final message.
    Draft,
    /// The whole reply at the end.
    Off,
}

/// `streamIntervalMs` when unset.
pub const DEFAULT_STREAM_INTERVAL_MS: u64 = 1000;

/// The least time between two writes of one streamed message, whatever
/// `streamIntervalMs` says: below it every chunk would be an edit, and the platform's
/// rate limits would answer.
pub const MIN_STREAM_INTERVAL_MS: u64 = 100;

/// The interval a channel streams with: `streamIntervalMs`, at least
/// [`MIN_STREAM_INTERVAL_MS`].
pub fn stream_interval(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms.max(MIN_STREAM_INTERVAL_MS))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    /// In the order the file declares them: that order is the auth order when neither
    /// auth-profiles.json nor `auth.order` gives one (DESIGN §5).
    pub profiles: indexmap::IndexMap<String, ProfileDecl>,
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
    /// OAuth endpoints (DESIGN §5a); each key overrides the provider's built-in preset.
    pub oauth: Option<OauthConfig>,
}

/// `[models.providers.<id>.oauth]`: where to sign in and refresh. Every key is optional
/// here; a provider with a built-in preset (`crate::oauth::preset`) fills the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OauthConfig {
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub device_authorization_url: Option<String>,
    pub revoke_url: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub redirect_port: Option<u16>,
    pub redirect_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKind {
    AnthropicMessages,
    OpenaiCompletions,
    /// The OpenAI Responses API (`POST {baseUrl}/responses`).
    OpenaiResponses,
    GoogleGenerative,
}

impl ApiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::AnthropicMessages => "anthropic-messages",
            ApiKind::OpenaiCompletions => "openai-completions",
            ApiKind::OpenaiResponses => "openai-responses",
            ApiKind::GoogleGenerative => "google-generative",
        }
    }
}

/// A secret given inline (a string) or as a reference to where it lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretInput {
    Plain(PlainSecret),
    Ref(SecretRef),
}

/// A secret written inline in the config (a bot token, an API key). It reads as a
/// `&str` where the value is needed; `Debug` never shows it, so printing a config (or
/// any value holding one) cannot leak it.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct PlainSecret(String);

impl PlainSecret {
    pub fn new(value: impl Into<String>) -> PlainSecret {
        PlainSecret(value.into())
    }
}

impl From<&str> for PlainSecret {
    fn from(value: &str) -> PlainSecret {
        PlainSecret(value.to_string())
    }
}

impl From<String> for PlainSecret {
    fn from(value: String) -> PlainSecret {
        PlainSecret(value)
    }
}

impl std::ops::Deref for PlainSecret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<redacted>")
        }
    }
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

/// Read through [`RawSecretProvider`] (a plain table) rather than as an internally
/// tagged enum: serde buffers a tagged enum's fields and loses their places, so a wrong
/// `mode` or `timeoutMs` would be reported at the table, not at its own line and key.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSecretProvider")]
pub enum SecretProviderConfig {
    Env(EnvSecretProvider),
    File(FileSecretProvider),
    Exec(ExecSecretProvider),
}

/// `[secrets.providers.<name>]` as written: every field of every source, each checked
/// for its type where it stands; [`SecretProviderConfig::try_from`] then checks that the
/// fields fit the `source`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSecretProvider {
    source: SecretSource,
    allowlist: Option<Vec<String>>,
    path: Option<String>,
    mode: Option<FileSecretMode>,
    max_bytes: Option<u64>,
    allow_symlink: Option<bool>,
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    pass_env: Option<Vec<String>>,
    timeout_ms: Option<u64>,
    max_output_bytes: Option<u64>,
}

impl TryFrom<RawSecretProvider> for SecretProviderConfig {
    type Error = String;

    fn try_from(r: RawSecretProvider) -> Result<Self, String> {
        let given = [
            ("allowlist", r.allowlist.is_some()),
            ("path", r.path.is_some()),
            ("mode", r.mode.is_some()),
            ("maxBytes", r.max_bytes.is_some()),
            ("allowSymlink", r.allow_symlink.is_some()),
            ("command", r.command.is_some()),
            ("args", r.args.is_some()),
            ("env", r.env.is_some()),
            ("passEnv", r.pass_env.is_some()),
            ("timeoutMs", r.timeout_ms.is_some()),
            ("maxOutputBytes", r.max_output_bytes.is_some()),
        ];
        let (name, allowed): (&str, &[&str]) = match r.source {
            SecretSource::Env => ("env", &["allowlist"]),
            SecretSource::File => ("file", &["path", "mode", "maxBytes", "allowSymlink"]),
            SecretSource::Exec => (
                "exec",
                &[
                    "command",
                    "args",
                    "env",
                    "passEnv",
                    "timeoutMs",
                    "maxOutputBytes",
                    "allowSymlink",
                ],
            ),
        };
        if let Some((key, _)) = given
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            return Err(format!(
                "`{key}` does not belong to source = \"{name}\" (its keys: {})",
                allowed.join(", ")
            ));
        }
        Ok(match r.source {
            SecretSource::Env => SecretProviderConfig::Env(EnvSecretProvider {
                allowlist: r.allowlist,
            }),
            SecretSource::File => SecretProviderConfig::File(FileSecretProvider {
                path: r
                    .path
                    .ok_or("source = \"file\" needs `path` (an absolute path)")?,
                mode: r.mode.unwrap_or_default(),
                max_bytes: r.max_bytes,
                allow_symlink: r.allow_symlink.unwrap_or(false),
            }),
            SecretSource::Exec => SecretProviderConfig::Exec(ExecSecretProvider {
                command: r
                    .command
                    .ok_or("source = \"exec\" needs `command` (an absolute path)")?,
                args: r.args.unwrap_or_default(),
                env: r.env.unwrap_or_default(),
                pass_env: r.pass_env.unwrap_or_default(),
                timeout_ms: r.timeout_ms,
                max_output_bytes: r.max_output_bytes,
                allow_symlink: r.allow_symlink.unwrap_or(false),
            }),
        })
    }
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

#[derive(Clone, Deserialize)]
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

/// `env` values may be credentials of the secret store itself (a vault token): `Debug`
/// lists their names only.
impl std::fmt::Debug for ExecSecretProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSecretProvider")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("pass_env", &self.pass_env)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("allow_symlink", &self.allow_symlink)
            .finish()
    }
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

/// Who may talk in an allowed group/guild (DESIGN §8 "Who may talk, in groups").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// Only senders in `groupAllowFrom` (default: `allowFrom`).
    #[default]
    Allowlist,
    /// Any member of an allowed group, guild or listed channel.
    Open,
    /// Group traffic is ignored.
    Disabled,
}

impl GroupPolicy {
    /// Whether a member of an allowed group is answered; `listed` = the sender is in
    /// `groupAllowFrom` (or `allowFrom` when that is not set).
    pub fn admits(self, listed: bool) -> bool {
        match self {
            GroupPolicy::Allowlist => listed,
            GroupPolicy::Open => true,
            GroupPolicy::Disabled => false,
        }
    }
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
    pub bot_token: Option<PlainSecret>,
    pub bot_token_ref: Option<SecretRef>,
    pub api_root: String,
    pub dm_policy: DmPolicy,
    pub agent: Option<String>,
    pub allow_from: Vec<i64>,
    pub owners: Option<Vec<i64>>,
    pub groups: Vec<i64>,
    pub require_mention: bool,
    pub group_policy: GroupPolicy,
    /// Who may talk in groups (default: `allowFrom`).
    pub group_allow_from: Option<Vec<i64>>,
    /// This channel's system prompt (DESIGN §10); default `agents.defaults.systemPrompt`.
    pub system_prompt: Option<String>,
    /// Per group chat (keyed by chat id): that chat's system prompt.
    pub group_prompts: BTreeMap<String, String>,
    pub streaming: Streaming,
    /// The least time between two edits of one streamed message.
    pub stream_interval_ms: u64,
    /// `[channels.telegram.webhook]`: receive updates by webhook instead of long
    /// polling (DESIGN §9).
    pub webhook: Option<TelegramWebhookConfig>,
}

/// `[channels.telegram.webhook]`: Telegram posts updates to `url` (its path is served on
/// the gateway's listener), each carrying the secret in `X-Telegram-Bot-Api-Secret-Token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TelegramWebhookConfig {
    /// The public URL given to `setWebhook` as is (TLS is the reverse proxy's business).
    pub url: String,
    /// The secret every delivery must carry; or `secretTokenRef`.
    #[serde(default)]
    pub secret_token: Option<PlainSecret>,
    #[serde(default)]
    pub secret_token_ref: Option<SecretRef>,
}

impl TelegramWebhookConfig {
    /// The path of `url` the gateway serves (`/telegram/webhook`); `None` when `url` is
    /// not an http(s) URL with a path (config validation refuses those).
    pub fn path(&self) -> Option<String> {
        let url = reqwest::Url::parse(self.url.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return None;
        }
        let path = url.path();
        (path.len() > 1 && path.starts_with('/')).then(|| path.to_string())
    }
}

/// Telegram's rule for a webhook secret token: 1-256 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_webhook_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A Discord id (snowflake) as the config writes it: digits, not 0, surrounding spaces
/// and a leading `+` allowed (`" 0333 "` is 333).
pub fn snowflake(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u64>().ok().filter(|n| *n != 0)
}

/// A Telegram chat id as the config writes it (a `groupPrompts` key): a non-zero integer,
/// surrounding spaces allowed.
pub fn telegram_chat(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok().filter(|n| *n != 0)
}

impl Config {
    /// Ids written as map keys, and Discord's id lists, in their one canonical form, so a
    /// lookup by the id a message carries finds them: `" -100123"` → `"-100123"`,
    /// `"0333"` → `"333"`.
    /// Runs after [`validate`](super::validate::validate), which refused keys that are no
    /// id and two keys naming one id.
    pub fn normalize(&mut self) {
        if let Some(t) = self.channels.telegram.as_mut() {
            t.group_prompts = std::mem::take(&mut t.group_prompts)
                .into_iter()
                .map(|(k, v)| (telegram_chat(&k).map_or(k, |id| id.to_string()), v))
                .collect();
        }
        if let Some(d) = self.channels.discord.as_mut() {
            let canonical = |k: String| snowflake(&k).map_or(k, |id| id.to_string());
            d.channel_prompts = std::mem::take(&mut d.channel_prompts)
                .into_iter()
                .map(|(k, v)| (canonical(k), v))
                .collect();
            let lists = [
                Some(&mut d.guilds),
                Some(&mut d.channels),
                Some(&mut d.allow_from),
                d.owners.as_mut(),
                d.group_allow_from.as_mut(),
            ];
            for list in lists.into_iter().flatten() {
                *list = std::mem::take(list).into_iter().map(canonical).collect();
            }
        }
    }
}

impl TelegramConfig {
    /// The system prompt for chat `chat`: its `groupPrompts` entry, else `systemPrompt`.
    pub fn prompt_for(&self, chat: i64) -> Option<&str> {
        self.group_prompts
            .get(&chat.to_string())
            .or(self.system_prompt.as_ref())
            .map(String::as_str)
    }

    /// Whether `user` may talk in an allowed group.
    pub fn group_admits(&self, user: i64) -> bool {
        let list = self.group_allow_from.as_ref().unwrap_or(&self.allow_from);
        self.group_policy.admits(list.contains(&user))
    }
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
            group_policy: GroupPolicy::Allowlist,
            group_allow_from: None,
            system_prompt: None,
            group_prompts: BTreeMap::new(),
            streaming: Streaming::Edit,
            stream_interval_ms: DEFAULT_STREAM_INTERVAL_MS,
            webhook: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscordConfig {
    pub enabled: bool,
    pub token: Option<PlainSecret>,
    pub token_ref: Option<SecretRef>,
    pub api_base: String,
    pub guilds: Vec<String>,
    pub channels: Vec<String>,
    pub allow_from: Vec<String>,
    pub owners: Option<Vec<String>>,
    pub dm_policy: DmPolicy,
    pub agent: Option<String>,
    pub group_policy: GroupPolicy,
    /// Who may talk in guilds (default: `allowFrom`).
    pub group_allow_from: Option<Vec<String>>,
    /// This channel's system prompt (DESIGN §10); default `agents.defaults.systemPrompt`.
    pub system_prompt: Option<String>,
    /// Per Discord channel (keyed by channel id): that channel's system prompt.
    pub channel_prompts: BTreeMap<String, String>,
    /// `edit` or `off` (`draft` is Telegram's only).
    pub streaming: Streaming,
    /// The least time between two edits of one streamed message.
    pub stream_interval_ms: u64,
    /// Total shards of the bot (DESIGN §9); `None`: one process runs the one shard.
    pub shard_count: Option<u32>,
    /// The inclusive range `[from, to]` of shards this process runs (needs
    /// `shardCount`; default: all of them). A list, so that validation can refuse one
    /// of another length (a fixed-size array would drop extra elements silently).
    pub shards: Option<Vec<u32>>,
}

impl DiscordConfig {
    /// The system prompt for channel `channel`: its `channelPrompts` entry, else
    /// `systemPrompt`.
    pub fn prompt_for(&self, channel: &str) -> Option<&str> {
        self.channel_prompts
            .get(channel)
            .or(self.system_prompt.as_ref())
            .map(String::as_str)
    }

    /// Whether `user` may talk in an allowed guild or listed channel.
    pub fn group_admits(&self, user: &str) -> bool {
        let list = self.group_allow_from.as_ref().unwrap_or(&self.allow_from);
        self.group_policy.admits(list.iter().any(|u| u == user))
    }
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
            group_policy: GroupPolicy::Allowlist,
            group_allow_from: None,
            system_prompt: None,
            channel_prompts: BTreeMap::new(),
            streaming: Streaming::Edit,
            stream_interval_ms: DEFAULT_STREAM_INTERVAL_MS,
            shard_count: None,
            shards: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    pub bind: String,
    pub port: u16,
    pub auth: GatewayAuthConfig,
    /// Host names (besides loopback) the gateway answers to, with or without a port;
    /// any other `Host` is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Web origins (`https://app.example.com`) allowed to call the API from a browser;
    /// only these get CORS headers.
    pub allowed_origins: Vec<String>,
    /// Largest POST body accepted, in bytes.
    pub max_body_bytes: std::num::NonZeroUsize,
    /// Turns running at once across the HTTP API (and, later, the channels).
    pub max_concurrent_turns: std::num::NonZeroUsize,
    /// On SIGINT/SIGTERM, how long turns in flight may take to finish (DESIGN §8).
    pub shutdown_grace_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            bind: "127.0.0.1".into(),
            port: 18789,
            auth: GatewayAuthConfig::default(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: std::num::NonZeroUsize::new(1024 * 1024)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            max_concurrent_turns: std::num::NonZeroUsize::new(64)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            shutdown_grace_secs: 30,
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
    pub redis_url: Option<PlainSecret>,
    /// A SecretRef for a URL that carries a password (`redisUrlRef`).
    pub redis_url_ref: Option<SecretRef>,
    /// Prefix of every key the Redis store writes (`redisPrefix`), so several
    /// deployments can share one server.
    pub redis_prefix: String,
    pub history_turns: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            store: SessionStoreKind::Sqlite,
            redis_url: None,
            redis_url_ref: None,
            redis_prefix: crate::state::redis::DEFAULT_PREFIX.to_string(),
            history_turns: 20,
        }
    }
}

/// `[alerts]` (DESIGN §11): the running gateway posts credential trouble (expiring,
/// expired, disabled, a provider in use with no usable credential left) and recoveries
/// to this Telegram chat and/or Discord channel, with the bot tokens of `[channels]`
/// (or `TELEGRAM_BOT_TOKEN` / `DISCORD_BOT_TOKEN`), whether those channels are enabled
/// or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AlertsConfig {
    /// A Telegram chat id (a user, group or channel the bot may write to).
    pub telegram_chat: Option<i64>,
    /// A Discord channel id (a snowflake, as a string).
    pub discord_channel: Option<String>,
}

impl AlertsConfig {
    /// `discordChannel` as a number, when it is a valid snowflake.
    pub fn discord_channel_id(&self) -> Option<u64> {
        self.discord_channel.as_deref().and_then(snowflake)
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

    /// Regression: `Debug` of the config printed plaintext tokens (`SecretInput::Plain`,
    /// bot tokens, the gateway token).
    #[test]
    fn debug_of_the_config_prints_no_plaintext_token() {
        let text = r#"
[models.providers.anthropic]
apiKey = "canary-provider-key-1"
[channels.telegram]
botToken = "canary-telegram-token-2"
[channels.telegram.webhook]
url = "https://bot.example.com/telegram/webhook"
secretToken = "canary-webhook-secret-7"
[channels.discord]
token = "canary-discord-token-3"
[gateway.auth]
token = "canary-gateway-token-4"
[session]
redisUrl = "redis://:canary-redis-password-5@127.0.0.1:6379"
[secrets.providers.vault]
source = "exec"
command = "/usr/bin/true"
env = { VAULT_TOKEN = "canary-vault-token-6" }
"#;
        let config = crate::config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("<redacted>"));
        // The values are still there for whoever needs them on the wire.
        let tg = config.channels.telegram.unwrap();
        assert_eq!(tg.bot_token.as_deref(), Some("canary-telegram-token-2"));
    }

    #[test]
    fn session_redis_prefix_defaults_and_parses() {
        let cfg: super::SessionConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.redis_prefix, "remoteclaw:");
        let cfg: super::SessionConfig = toml::from_str("redisPrefix = \"staging:rc:\"").unwrap();
        assert_eq!(cfg.redis_prefix, "staging:rc:");
        assert!(toml::from_str::<super::SessionConfig>("redisPrefix = 5").is_err());
    }

    #[test]
    fn group_policies() {
        use super::GroupPolicy;
        assert!(GroupPolicy::Allowlist.admits(true));
        assert!(!GroupPolicy::Allowlist.admits(false));
        assert!(GroupPolicy::Open.admits(false));
        assert!(!GroupPolicy::Disabled.admits(true));
        let cfg: super::TelegramConfig =
            toml::from_str("groupAllowFrom = [5]\nallowFrom = [6]").unwrap();
        assert!(cfg.group_admits(5) && !cfg.group_admits(6));
        let cfg: super::TelegramConfig = toml::from_str("allowFrom = [6]").unwrap();
        assert!(cfg.group_admits(6), "groupAllowFrom defaults to allowFrom");
    }

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
