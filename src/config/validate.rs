//! Cross-field checks that serde cannot express (DESIGN §3): model refs parse, aliases
//! are unique, custom providers say where they live, paths are absolute, and so on.
//! Also finds the line of a key path, so every error can point into the file.

use super::types::{Config, SecretProviderConfig, SessionStoreKind, snowflake, telegram_chat};
use crate::catalog::{ModelRef, normalize_provider};
use crate::providers::registry;
use std::collections::BTreeMap;

/// A failed check: which key, what is wrong, what to do.
#[derive(Debug)]
pub struct Violation {
    pub key: String,
    pub message: String,
    pub hint: String,
}

fn violation(
    key: impl Into<String>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Violation {
    Violation {
        key: key.into(),
        message: message.into(),
        hint: hint.into(),
    }
}

/// `/model` keywords, which cannot be aliases (nor can the chat command words,
/// [`crate::directive::is_command_word`]).
const MODEL_KEYWORDS: [&str; 3] = ["list", "status", "default"];

/// `[models.providers.<id>.oauth]`: URLs are http(s), and a provider without a preset
/// names at least where to refresh (`tokenUrl`) and as whom (`clientId`).
fn oauth_table(key: &str, id: &str, o: &crate::config::OauthConfig) -> Result<(), Violation> {
    for (field, url) in [
        ("authorizeUrl", &o.authorize_url),
        ("tokenUrl", &o.token_url),
        ("deviceAuthorizationUrl", &o.device_authorization_url),
        ("revokeUrl", &o.revoke_url),
        ("redirectUri", &o.redirect_uri),
    ] {
        if let Some(url) = url
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err())
        {
            return Err(violation(
                format!("{key}.{field}"),
                format!("\"{url}\" is not an http(s) URL"),
                "write the full URL, e.g. https://auth.example.com/oauth/token",
            ));
        }
    }
    if let Some(uri) = &o.redirect_uri
        && !reqwest::Url::parse(uri).is_ok_and(|u| {
            let host = u.host_str().unwrap_or("");
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            u.scheme() == "http"
                && (host.eq_ignore_ascii_case("localhost")
                    || ip
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback()))
        })
    {
        return Err(violation(
            format!("{key}.redirectUri"),
            format!(
                "\"{uri}\" is not a loopback address: the sign-in's code must come back to this machine"
            ),
            "use http://localhost:<port>/… or http://127.0.0.1:<port>/… (the callback RemoteClaw listens on), or remove it to use the provider's preset",
        ));
    }
    if crate::oauth::preset::preset(id).is_none()
        && (o.token_url.is_none() || o.client_id.is_none())
    {
        return Err(violation(
            key,
            format!(
                "provider \"{id}\" has no built-in OAuth preset, so its oauth table needs tokenUrl and clientId"
            ),
            "add tokenUrl = \"https://…/token\" and clientId = \"…\" (plus authorizeUrl or deviceAuthorizationUrl to sign in)",
        ));
    }
    Ok(())
}

/// Paths the gateway serves itself (DESIGN §7): a webhook path must not shadow them.
fn gateway_route(path: &str) -> bool {
    ["/", "/health", "/metrics", "/app.js", "/app.css"].contains(&path)
        || ["/v1", "/api"]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// `[channels.telegram.webhook]`: an http(s) URL with a path of its own, and one secret
/// that Telegram accepts (never quoted back: it is a secret).
fn telegram_webhook(w: &crate::config::TelegramWebhookConfig) -> Result<(), Violation> {
    const KEY: &str = "channels.telegram.webhook";
    let url = w.url.trim();
    http_url(
        &format!("{KEY}.url"),
        url,
        "write the public URL Telegram posts to, e.g. https://bot.example.com/telegram/webhook",
    )?;
    let Some(path) = w.path() else {
        return Err(violation(
            format!("{KEY}.url"),
            format!("\"{url}\" has no path: the gateway serves the webhook at the URL's path"),
            "add a path, e.g. https://bot.example.com/telegram/webhook",
        ));
    };
    if gateway_route(&path) {
        return Err(violation(
            format!("{KEY}.url"),
            format!("the path {path} is one of the gateway's own routes"),
            "use a path of its own, e.g. /telegram/webhook",
        ));
    }
    match (&w.secret_token, &w.secret_token_ref) {
        (None, None) => Err(violation(
            KEY,
            "the webhook needs a secret: without one anyone could post updates to it",
            "add secretToken = \"…\" (1-256 characters of A-Z, a-z, 0-9, _ and -) or secretTokenRef = { source, provider, id }",
        )),
        (Some(_), Some(_)) => Err(violation(
            format!("{KEY}.secretTokenRef"),
            "both secretToken and secretTokenRef are set",
            "keep one of them",
        )),
        (Some(s), None) if !crate::config::valid_webhook_secret(s) => Err(violation(
            format!("{KEY}.secretToken"),
            format!(
                "the secret token ({} characters) is not one Telegram accepts",
                s.chars().count()
            ),
            "use 1-256 characters of A-Z, a-z, 0-9, _ and - only, e.g. the output of `openssl rand -hex 32`",
        )),
        _ => Ok(()),
    }
}

/// A secret given both inline and as a ref, or a ref to a secret provider the config
/// does not define (DESIGN §3: contradictions are load errors).
fn secrets(config: &Config) -> Result<(), Violation> {
    use super::types::{SecretInput, SecretRef};
    let both = |key: &str, plain: &str, by_ref: &str| {
        violation(
            format!("{key}.{by_ref}"),
            format!("both {plain} and {by_ref} are set"),
            format!(
                "keep one of them ({plain} inline, or {by_ref} to read it from a secret provider)"
            ),
        )
    };
    let mut refs: Vec<(String, &SecretRef)> = Vec::new();
    if let Some(t) = &config.channels.telegram {
        if t.bot_token.is_some() && t.bot_token_ref.is_some() {
            return Err(both("channels.telegram", "botToken", "botTokenRef"));
        }
        if let Some(r) = &t.bot_token_ref {
            refs.push(("channels.telegram.botTokenRef".into(), r));
        }
        if let Some(r) = t.webhook.as_ref().and_then(|w| w.secret_token_ref.as_ref()) {
            refs.push(("channels.telegram.webhook.secretTokenRef".into(), r));
        }
    }
    if let Some(d) = &config.channels.discord {
        if d.token.is_some() && d.token_ref.is_some() {
            return Err(both("channels.discord", "token", "tokenRef"));
        }
        if let Some(r) = &d.token_ref {
            refs.push(("channels.discord.tokenRef".into(), r));
        }
    }
    let s = &config.session;
    if s.redis_url.is_some() && s.redis_url_ref.is_some() {
        return Err(both("session", "redisUrl", "redisUrlRef"));
    }
    if let Some(r) = &s.redis_url_ref {
        refs.push(("session.redisUrlRef".into(), r));
    }
    if let Some(SecretInput::Ref(r)) = &config.gateway.auth.token {
        refs.push(("gateway.auth.token".into(), r));
    }
    for (id, p) in &config.models.providers {
        if let Some(SecretInput::Ref(r)) = &p.api_key {
            refs.push((format!("models.providers.{id}.apiKey"), r));
        }
    }
    for (key, r) in refs {
        crate::auth::secrets::check_ref(config, r)
            .map_err(|e| violation(key, e, "define the provider under [secrets.providers], or point the ref at one that exists"))?;
    }
    Ok(())
}

/// Agent ids become directory names (`agents/<id>/agent/`): letters, digits, `_`, `-`.
pub fn is_plain_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

pub fn validate(config: &Config) -> Result<(), Violation> {
    secrets(config)?;
    let defaults = &config.agents.defaults;
    let known_provider = |p: &str| registry::ProviderSettings::resolve(config, p).is_some();

    // Custom providers must say where they live and which API they speak.
    for (id, p) in &config.models.providers {
        let key = format!("models.providers.{id}");
        if id != &normalize_provider(id) {
            return Err(violation(
                key,
                format!("provider id \"{id}\" is not in canonical form"),
                format!("use \"{}\"", normalize_provider(id)),
            ));
        }
        if registry::builtin(id).is_none() && (p.base_url.is_none() || p.api.is_none()) {
            return Err(violation(
                key,
                format!("provider \"{id}\" is not built in, so it needs both baseUrl and api"),
                "add baseUrl = \"https://…\" and api = \"openai-completions\" (or anthropic-messages, google-generative)",
            ));
        }
        if let Some(url) = &p.base_url
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err())
        {
            return Err(violation(
                format!("{key}.baseUrl"),
                format!("\"{url}\" is not an http(s) URL"),
                "write the full URL, e.g. https://api.anthropic.com",
            ));
        }
        for (field, v) in [
            ("connectTimeoutSecs", p.connect_timeout_secs),
            ("idleTimeoutSecs", p.idle_timeout_secs),
        ] {
            if v == Some(0) {
                return Err(violation(
                    format!("{key}.{field}"),
                    "a timeout of 0 seconds would fail every request",
                    "use a positive number of seconds",
                ));
            }
        }
        if let Some(o) = &p.oauth {
            oauth_table(&format!("{key}.oauth"), id, o)?;
        }
    }

    // Model refs parse, name a known provider; aliases unique and not reserved.
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    for (model_key, entry) in &defaults.models {
        let key = format!("agents.defaults.models.\"{model_key}\"");
        let m = ModelRef::parse(model_key, "anthropic")
            .map_err(|e| violation(&key, e, "write the key as \"provider/model\""))?;
        if !model_key.contains('/') {
            return Err(violation(
                &key,
                format!("\"{model_key}\" has no provider"),
                format!("write it as \"{}\"", m),
            ));
        }
        if !known_provider(&m.provider) {
            return Err(unknown_provider(&key, &m.provider));
        }
        if let Some(alias) = &entry.alias {
            let lower = alias.to_lowercase();
            if lower.is_empty()
                || !lower
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                return Err(violation(
                    format!("{key}.alias"),
                    format!("alias \"{alias}\" must be letters, digits, '_', '.' or '-'"),
                    "pick a short word like \"opus\"",
                ));
            }
            if MODEL_KEYWORDS.contains(&lower.as_str()) || crate::directive::is_command_word(&lower)
            {
                return Err(violation(
                    format!("{key}.alias"),
                    format!("alias \"{alias}\" is a chat command word"),
                    "pick another alias",
                ));
            }
            if lower.bytes().all(|b| b.is_ascii_digit()) {
                return Err(violation(
                    format!("{key}.alias"),
                    format!(
                        "alias \"{alias}\" is a number: `/model {alias}` reads as a pick from a numbered list, which chat does not have"
                    ),
                    "pick an alias with a letter in it, e.g. \"opus\"",
                ));
            }
            if let Some(prev) = aliases.insert(lower, model_key.clone()) {
                return Err(violation(
                    format!("{key}.alias"),
                    format!("alias \"{alias}\" is used twice (also for \"{prev}\")"),
                    "give each model its own alias",
                ));
            }
        }
    }
    let check_ref = |key: &str, raw: &str| -> Result<(), Violation> {
        if aliases.contains_key(&raw.trim().to_lowercase()) {
            return Ok(());
        }
        let m = ModelRef::parse(raw, "anthropic")
            .map_err(|e| violation(key, e, "write \"provider/model\" or an alias"))?;
        if !known_provider(&m.provider) {
            return Err(unknown_provider(key, &m.provider));
        }
        Ok(())
    };
    check_ref("agents.defaults.model.primary", &defaults.model.primary)?;
    for (i, f) in defaults.model.fallbacks.iter().enumerate() {
        check_ref(&format!("agents.defaults.model.fallbacks[{i}]"), f)?;
    }
    if defaults.max_tokens == Some(0) {
        return Err(violation(
            "agents.defaults.maxTokens",
            "maxTokens = 0 would ask for an empty reply",
            "use a positive number, e.g. 4096",
        ));
    }

    if defaults.max_image_bytes == Some(0) {
        return Err(violation(
            "agents.defaults.maxImageBytes",
            "maxImageBytes = 0 would refuse every image",
            "use a positive number of bytes, e.g. 5242880 (5 MiB), or mark the models with images = false",
        ));
    }
    let discord = config.channels.discord.as_ref();
    if discord.is_some_and(|d| d.streaming == crate::config::types::Streaming::Draft) {
        return Err(violation(
            "channels.discord.streaming",
            "\"draft\" is Telegram's only (sendMessageDraft)",
            "use \"edit\" or \"off\"",
        ));
    }
    if let Some(d) = discord {
        discord_shards(d.shard_count, d.shards.as_deref())?;
        http_url(
            "channels.discord.apiBase",
            d.api_base.trim(),
            "write the full URL, e.g. https://discord.com (the default)",
        )?;
        let lists: [(&str, &str, Option<&Vec<String>>); 5] = [
            ("guilds", "server (guild)", Some(&d.guilds)),
            ("channels", "channel", Some(&d.channels)),
            ("allowFrom", "user", Some(&d.allow_from)),
            ("owners", "user", d.owners.as_ref()),
            ("groupAllowFrom", "user", d.group_allow_from.as_ref()),
        ];
        for (field, what, list) in lists {
            for (i, id) in list.into_iter().flatten().enumerate() {
                if snowflake(id).is_none() {
                    return Err(violation(
                        format!("channels.discord.{field}[{i}]"),
                        format!("\"{}\" is not a Discord {what} id", shown(id)),
                        format!(
                            "write the {what}'s id, a snowflake of digits as a string, e.g. \"222222222222222222\" (Discord: Developer Mode on, then right-click → Copy ID); names and tags do not work"
                        ),
                    ));
                }
            }
        }
        id_keys(
            d.channel_prompts.keys(),
            "channels.discord.channelPrompts",
            snowflake,
            "is not a Discord channel id",
            "key each prompt by the channel's id (a snowflake of digits), e.g. \"333333333333333333\" = \"…\"",
        )?;
    }
    if let Some(t) = &config.channels.telegram {
        http_url(
            "channels.telegram.apiRoot",
            t.api_root.trim(),
            "write the full URL, e.g. https://api.telegram.org (the default)",
        )?;
        id_keys(
            t.group_prompts.keys(),
            "channels.telegram.groupPrompts",
            telegram_chat,
            "is not a Telegram chat id",
            "key each prompt by the group's chat id, e.g. \"-1001234567890\" = \"…\"",
        )?;
    }
    if let Some(w) = config
        .channels
        .telegram
        .as_ref()
        .and_then(|t| t.webhook.as_ref())
    {
        telegram_webhook(w)?;
    }

    let channel_agents = [
        (
            "channels.telegram.agent",
            config
                .channels
                .telegram
                .as_ref()
                .and_then(|c| c.agent.as_deref()),
        ),
        (
            "channels.discord.agent",
            config
                .channels
                .discord
                .as_ref()
                .and_then(|c| c.agent.as_deref()),
        ),
    ];
    let agents = std::iter::once(("agents.defaultId", Some(config.agents.default_id.as_str())))
        .chain(channel_agents);
    for (key, id) in agents {
        if let Some(id) = id.filter(|id| !is_plain_agent_id(id)) {
            return Err(violation(
                key,
                format!("agent id \"{id}\" is not a plain name"),
                "use letters, digits, '_' or '-', e.g. \"main\"",
            ));
        }
    }

    for (id, decl) in &config.auth.profiles {
        if normalize_provider(&decl.provider) != decl.provider {
            return Err(violation(
                format!("auth.profiles.\"{id}\".provider"),
                format!("provider \"{}\" is not in canonical form", decl.provider),
                format!("use \"{}\"", normalize_provider(&decl.provider)),
            ));
        }
    }
    if config.auth.cooldowns.rate_limit_backoff_secs.is_empty() {
        return Err(violation(
            "auth.cooldowns.rateLimitBackoffSecs",
            "the backoff list is empty",
            "give at least one duration in seconds, e.g. [60, 300, 1500, 3600]",
        ));
    }
    if config.auth.cooldowns.billing_backoff_hours == 0 {
        return Err(violation(
            "auth.cooldowns.billingBackoffHours",
            "a billing disable of 0 hours would retry an exhausted credential on every turn",
            "use a positive number of hours, e.g. 5",
        ));
    }
    if config.auth.cooldowns.billing_max_hours < config.auth.cooldowns.billing_backoff_hours {
        return Err(violation(
            "auth.cooldowns.billingMaxHours",
            "billingMaxHours is smaller than billingBackoffHours",
            "make billingMaxHours at least billingBackoffHours",
        ));
    }

    for (alias, p) in &config.secrets.providers {
        let key = format!("secrets.providers.{alias}");
        match p {
            SecretProviderConfig::File(f) if !std::path::Path::new(&f.path).is_absolute() => {
                return Err(violation(
                    format!("{key}.path"),
                    format!("\"{}\" is not an absolute path", f.path),
                    "write the full path, e.g. /etc/remoteclaw/secrets.json",
                ));
            }
            SecretProviderConfig::File(f) if f.max_bytes == Some(0) => {
                return Err(zero(&key, "maxBytes", "every read of the file would fail"));
            }
            SecretProviderConfig::Exec(e) if e.timeout_ms == Some(0) => {
                return Err(zero(
                    &key,
                    "timeoutMs",
                    "every run of the command would time out",
                ));
            }
            SecretProviderConfig::Exec(e) if e.max_output_bytes == Some(0) => {
                return Err(zero(
                    &key,
                    "maxOutputBytes",
                    "every answer of the command would be too long",
                ));
            }
            SecretProviderConfig::Exec(e) if !std::path::Path::new(&e.command).is_absolute() => {
                return Err(violation(
                    format!("{key}.command"),
                    format!(
                        "\"{}\" is not an absolute path (commands run without a shell)",
                        e.command
                    ),
                    "write the full path, e.g. /usr/local/bin/resolve-secret",
                ));
            }
            _ => {}
        }
    }

    if config.env.shell_env.timeout_ms == 0 {
        return Err(zero(
            "env.shellEnv",
            "timeoutMs",
            "the login shell would be stopped before it printed anything",
        ));
    }

    if config.gateway.bind.parse::<std::net::IpAddr>().is_err()
        && config.gateway.bind != "localhost"
    {
        return Err(violation(
            "gateway.bind",
            format!("\"{}\" is not an IP address", config.gateway.bind),
            "use an address such as \"127.0.0.1\" or \"0.0.0.0\"",
        ));
    }
    let session = &config.session;
    if session.store == SessionStoreKind::Redis
        && session.redis_url.is_none()
        && session.redis_url_ref.is_none()
    {
        return Err(violation(
            "session.redisUrl",
            "session.store = \"redis\" needs redisUrl or redisUrlRef",
            "add redisUrl = \"redis://127.0.0.1:6379\" (or redisUrlRef = { source = \"env\", provider = \"default\", id = \"REDIS_URL\" } for a URL with a password)",
        ));
    }
    if session.redis_url.is_some() && session.redis_url_ref.is_some() {
        return Err(violation(
            "session.redisUrlRef",
            "both redisUrl and redisUrlRef are set",
            "keep one of them",
        ));
    }
    if let Some(url) = &session.redis_url
        && let Err(why) = crate::state::redis::check_url(url)
    {
        return Err(violation(
            "session.redisUrl",
            why,
            "write it as redis://127.0.0.1:6379 (redis://:password@host:port/db with a password, better kept in redisUrlRef)",
        ));
    }
    if defaults.turn_timeout_secs == Some(0) {
        return Err(violation(
            "agents.defaults.turnTimeoutSecs",
            "turnTimeoutSecs = 0 would end every turn before it starts",
            "use a number of seconds, e.g. 600 (the default)",
        ));
    }
    if let Some(a) = &config.alerts {
        alerts(a)?;
    }
    if config.session.history_turns == 0 {
        return Err(violation(
            "session.historyTurns",
            "historyTurns = 0 would forget every message",
            "use a positive number, e.g. 20",
        ));
    }
    Ok(())
}

/// `key` holds the URL of a service: an http(s) URL with a host (shown cut to 200
/// characters when it is not).
fn http_url(key: &str, url: &str, hint: &str) -> Result<(), Violation> {
    let ok = reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        return Ok(());
    }
    Err(violation(
        key,
        format!(
            "\"{}\" is not an http(s) URL",
            url.chars().take(200).collect::<String>()
        ),
        hint,
    ))
}

/// A limit of 0 in `table.field` that would make every use fail.
fn zero(table: &str, field: &str, why: &str) -> Violation {
    violation(
        format!("{table}.{field}"),
        format!("{field} = 0: {why}"),
        format!("use a positive number, or remove {field} for the default"),
    )
}

/// Map keys that must each name an id (`parse`), no two the same one (`"42"` and
/// `" 42"`, `"0333"` and `"333"`: after [`Config::normalize`](crate::config::Config::normalize)
/// one would silently replace the other).
fn id_keys<'a, T: PartialEq + std::fmt::Display>(
    keys: impl Iterator<Item = &'a String>,
    table: &str,
    parse: fn(&str) -> Option<T>,
    not_an_id: &str,
    hint: &str,
) -> Result<(), Violation> {
    let mut seen: Vec<(T, &String)> = Vec::new();
    for key in keys {
        let Some(id) = parse(key) else {
            return Err(violation(
                format!("{table}.\"{key}\""),
                format!("\"{}\" {not_an_id}", shown(key)),
                hint,
            ));
        };
        if let Some((_, first)) = seen.iter().find(|(known, _)| *known == id) {
            return Err(violation(
                format!("{table}.\"{key}\""),
                format!("\"{}\" and \"{}\" both name {id}", shown(first), shown(key)),
                "keep one of them",
            ));
        }
        seen.push((id, key));
    }
    Ok(())
}

/// A value from the file, cut short for a message.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `[alerts]` (DESIGN §11): a Telegram chat id is a non-zero integer, a Discord channel
/// a snowflake (digits, as a string). A target without a bot token is not an error here:
/// tokens may come from the environment, and the gateway warns at start.
fn alerts(a: &crate::config::AlertsConfig) -> Result<(), Violation> {
    if a.telegram_chat == Some(0) {
        return Err(violation(
            "alerts.telegramChat",
            "0 is not a Telegram chat id",
            "use the chat's id, e.g. 123456789 (a user) or -1001234567890 (a group)",
        ));
    }
    if let Some(c) = &a.discord_channel
        && a.discord_channel_id().is_none()
    {
        return Err(violation(
            "alerts.discordChannel",
            format!("\"{}\" is not a Discord channel id", shown(c)),
            "use the channel's id (a snowflake of digits, as a string), e.g. \"333333333333333333\"",
        ));
    }
    Ok(())
}

/// `[channels.discord]` `shardCount` and `shards = [from, to]` (DESIGN §9): at least one
/// shard in all, and a range needs the total and lies inside it.
fn discord_shards(count: Option<u32>, range: Option<&[u32]>) -> Result<(), Violation> {
    if count == Some(0) {
        return Err(violation(
            "channels.discord.shardCount",
            "shardCount = 0: a bot has at least one shard",
            "set shardCount to the bot's total number of shards (at least 1), or remove it to run one shard",
        ));
    }
    let (from, to) = match range {
        None => return Ok(()),
        Some(&[from, to]) => (from, to),
        Some(other) => {
            return Err(violation(
                "channels.discord.shards",
                format!("shards = {other:?} is not a range of two shard ids [from, to]"),
                "write the inclusive range this process runs as [from, to], e.g. [0, 1], or [2, 2] for one shard",
            ));
        }
    };
    let Some(count) = count else {
        return Err(violation(
            "channels.discord.shards",
            format!("shards = [{from}, {to}] needs shardCount, the bot's total number of shards"),
            "add shardCount = N next to shards (every process of the bot uses the same N), or remove shards to run them all",
        ));
    };
    if from > to {
        return Err(violation(
            "channels.discord.shards",
            format!("shards = [{from}, {to}]: the first shard is after the last"),
            format!("write the inclusive range as [from, to] with from <= to, e.g. [{to}, {from}]"),
        ));
    }
    if to >= count {
        return Err(violation(
            "channels.discord.shards",
            format!(
                "shards = [{from}, {to}]: shard {to} does not exist with shardCount = {count} (shard ids run from 0 to {})",
                count - 1
            ),
            format!(
                "keep the range within 0..={} or raise shardCount",
                count - 1
            ),
        ));
    }
    Ok(())
}

fn unknown_provider(key: &str, provider: &str) -> Violation {
    violation(
        key,
        format!("unknown provider \"{provider}\""),
        format!(
            "use one of {} or declare [models.providers.{provider}] with baseUrl and api",
            registry::BUILTIN_PROVIDERS.join(", ")
        ),
    )
}

/// 1-based line of a dotted key path (as printed by serde_path_to_error or by
/// `validate`), found by walking the document with spans. Falls back to the deepest
/// table that exists.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut line = None;
    for seg in split_key_path(key) {
        let Some((k, item)) = table.get_key_value(&seg) else {
            break;
        };
        if let Some(span) = k.span().or_else(|| item.span()) {
            line = Some(super::line_of_offset(text, span.start));
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    line
}

/// Split `a.b."c/d".e[0]` into `a`, `b`, `c/d`, `e`.
fn split_key_path(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            '[' if !quoted => {
                out.push(std::mem::take(&mut cur));
                break;
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split() {
        assert_eq!(
            split_key_path("a.b.\"c/d\".alias"),
            ["a", "b", "c/d", "alias"]
        );
        assert_eq!(
            split_key_path("agents.defaults.model.fallbacks[1]"),
            ["agents", "defaults", "model", "fallbacks"]
        );
    }

    /// `[channels.discord]` with this body, parsed and validated.
    fn discord(body: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let text = format!("[channels.discord]\n{body}");
        crate::config::parse(std::path::Path::new("rc.toml"), &text)
    }

    #[test]
    fn discord_shard_ranges_are_checked() {
        // (body, key named, words in the message, words in the fix)
        let bad: [(&str, &str, &str, &str); 9] = [
            (
                "shardCount = 2\nshards = [0]",
                "channels.discord.shards",
                "not a range of two shard ids",
                "[from, to]",
            ),
            (
                "shardCount = 2\nshards = [0, 1, 1]",
                "channels.discord.shards",
                "not a range of two shard ids",
                "[from, to]",
            ),
            (
                "shardCount = 2\nshards = []",
                "channels.discord.shards",
                "not a range of two shard ids",
                "[from, to]",
            ),
            (
                "shards = [0, 1]",
                "channels.discord.shards",
                "needs shardCount",
                "add shardCount",
            ),
            (
                "shardCount = 0",
                "channels.discord.shardCount",
                "at least one shard",
                "at least 1",
            ),
            (
                "shardCount = 0\nshards = [0, 0]",
                "channels.discord.shardCount",
                "at least one shard",
                "at least 1",
            ),
            (
                "shardCount = 4\nshards = [2, 1]",
                "channels.discord.shards",
                "first shard is after the last",
                "from <= to",
            ),
            (
                "shardCount = 2\nshards = [1, 2]",
                "channels.discord.shards",
                "shard 2 does not exist with shardCount = 2",
                "0..=1",
            ),
            (
                "shardCount = 2\nshards = [2, 2]",
                "channels.discord.shards",
                "shard 2 does not exist",
                "raise shardCount",
            ),
        ];
        for (body, key, message, hint) in bad {
            let err = discord(body).unwrap_err();
            let crate::config::ConfigError::Invalid {
                key: k,
                message: m,
                hint: h,
                line,
                ..
            } = &err
            else {
                panic!("{body}: {err}");
            };
            assert_eq!(k, key, "{body}: {err}");
            assert!(m.contains(message), "{body}: {m}");
            assert!(h.contains(hint), "{body}: {h}");
            assert!(line.is_some(), "{body}: the error points at a line");
            let shown = err.to_string();
            assert!(shown.contains(key) && shown.contains("fix:"), "{shown}");
        }
        // Not a range of two shard ids: serde says so, at the key.
        for body in [
            "shardCount = 2\nshards = [-1, 0]",
            "shardCount = 2\nshards = 1",
            "shardCount = 2\nshards = [\"0\", \"1\"]",
            "shardCount = -1",
        ] {
            let err = discord(body).unwrap_err();
            assert!(
                err.key()
                    .is_some_and(|k| k.starts_with("channels.discord.shard")),
                "{body}: {err}"
            );
        }
    }

    /// Regression (audit s10): values that load but could never work — every use would
    /// fail, or the entry never matches anything — are load errors at their line.
    #[test]
    fn values_that_could_never_work_are_load_errors() {
        let model = "[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\n";
        let exec = "[secrets.providers.vault]\nsource = \"exec\"\ncommand = \"/bin/true\"\n";
        let file = "[secrets.providers.f]\nsource = \"file\"\npath = \"/etc/s.json\"\n";
        let oauth = "[models.providers.openai-codex.oauth]\n";
        let bad: Vec<(String, &str, &str)> = vec![
            (
                format!("{model}alias = \"usage\""),
                "alias",
                "chat command word",
            ),
            (
                format!("{model}alias = \"New\""),
                "alias",
                "chat command word",
            ),
            (format!("{model}alias = \"12\""), "alias", "is a number"),
            (
                format!("{exec}timeoutMs = 0"),
                "secrets.providers.vault.timeoutMs",
                "= 0",
            ),
            (
                format!("{exec}maxOutputBytes = 0"),
                "secrets.providers.vault.maxOutputBytes",
                "= 0",
            ),
            (
                format!("{file}maxBytes = 0"),
                "secrets.providers.f.maxBytes",
                "= 0",
            ),
            (
                "[env.shellEnv]\nenabled = true\ntimeoutMs = 0".into(),
                "env.shellEnv.timeoutMs",
                "= 0",
            ),
            (
                "[channels.telegram]\napiRoot = \"nope\"".into(),
                "channels.telegram.apiRoot",
                "not an http(s) URL",
            ),
            (
                "[channels.discord]\napiBase = \"ftp://x\"".into(),
                "channels.discord.apiBase",
                "not an http(s) URL",
            ),
            (
                "[channels.discord]\nallowFrom = [\"alice#1234\"]".into(),
                "channels.discord.allowFrom[0]",
                "not a Discord user id",
            ),
            (
                "[channels.discord]\nallowFrom = [\"222\"]\nowners = [\"222\", \"@bob\"]".into(),
                "channels.discord.owners[1]",
                "not a Discord user id",
            ),
            (
                "[channels.discord]\nguilds = [\"my-guild\"]".into(),
                "channels.discord.guilds[0]",
                "not a Discord server (guild) id",
            ),
            (
                "[channels.discord]\nchannels = [\"#general\"]".into(),
                "channels.discord.channels[0]",
                "not a Discord channel id",
            ),
            (
                "[channels.discord]\ngroupAllowFrom = [\"0\"]".into(),
                "channels.discord.groupAllowFrom[0]",
                "not a Discord user id",
            ),
            (
                format!("{oauth}redirectUri = \"http://evil.example.com/cb\""),
                "redirectUri",
                "not a loopback address",
            ),
            (
                format!("{oauth}redirectUri = \"https://localhost:1455/cb\""),
                "redirectUri",
                "not a loopback address",
            ),
        ];
        for (body, key, message) in bad {
            let err = crate::config::parse(std::path::Path::new("rc.toml"), &body).unwrap_err();
            let crate::config::ConfigError::Invalid {
                key: k,
                message: m,
                line,
                ..
            } = &err
            else {
                panic!("{body}: {err}");
            };
            assert!(k.ends_with(key), "{body}: {err}");
            assert!(m.contains(message), "{body}: {m}");
            assert!(line.is_some(), "{body}: the error points at a line");
        }
        for good in [
            format!("{model}alias = \"o1\""),
            format!("{oauth}redirectUri = \"http://localhost:1455/auth/callback\""),
            format!("{oauth}redirectUri = \"http://127.0.0.1:1455/cb\""),
            format!("{oauth}redirectUri = \"http://[::1]:1455/cb\""),
            "[channels.telegram]\napiRoot = \"http://127.0.0.1:8081\"".into(),
        ] {
            crate::config::parse(std::path::Path::new("rc.toml"), &good)
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    /// Discord id lists are compared with the ids messages carry: written with spaces, a
    /// `+` or leading zeros, they are kept in canonical form.
    #[test]
    fn discord_id_lists_are_kept_in_canonical_form() {
        let cfg = crate::config::parse(
            std::path::Path::new("rc.toml"),
            "[channels.discord]\nallowFrom = [\" 222\", \"0333\"]\nowners = [\"+444\"]\nguilds = [\"0111\"]\nchannels = [\"555 \"]\ngroupAllowFrom = [\"0666\"]",
        )
        .unwrap();
        let d = cfg.channels.discord.unwrap();
        assert_eq!(d.allow_from, ["222", "333"]);
        assert_eq!(d.owners.unwrap(), ["444"]);
        assert_eq!(d.guilds, ["111"]);
        assert_eq!(d.channels, ["555"]);
        assert_eq!(d.group_allow_from.unwrap(), ["666"]);
    }

    #[test]
    fn prompt_keys_are_found_by_the_id_a_message_carries() {
        let cfg = crate::config::parse(
            std::path::Path::new("rc.toml"),
            "[channels.telegram.groupPrompts]\n\" -1001234 \" = \"group\"\n\"+42\" = \"dm\"\n\
             [channels.discord.channelPrompts]\n\"000333\" = \"chan\"\n\
             [alerts]\ndiscordChannel = \" +0444 \"",
        )
        .unwrap();
        let t = cfg.channels.telegram.as_ref().unwrap();
        assert_eq!(t.prompt_for(-1001234), Some("group"));
        assert_eq!(t.prompt_for(42), Some("dm"));
        let d = cfg.channels.discord.as_ref().unwrap();
        assert_eq!(d.prompt_for("333"), Some("chan"));
        assert_eq!(cfg.alerts.unwrap().discord_channel_id(), Some(444));
    }

    #[test]
    fn a_secret_given_twice_or_through_an_undefined_provider_is_refused() {
        let env_ref = |provider: &str| {
            format!("{{ source = \"env\", provider = \"{provider}\", id = \"X\" }}")
        };
        // (config, key named, words in the message)
        let bad = [
            (
                format!("[channels.telegram]\nbotToken = \"1:a\"\nbotTokenRef = {}", env_ref("default")),
                "channels.telegram.botTokenRef",
                "both botToken and botTokenRef are set",
            ),
            (
                format!("[channels.discord]\ntoken = \"t\"\ntokenRef = {}", env_ref("default")),
                "channels.discord.tokenRef",
                "both token and tokenRef are set",
            ),
            (
                format!("[session]\nredisUrl = \"redis://127.0.0.1\"\nredisUrlRef = {}", env_ref("default")),
                "session.redisUrlRef",
                "both redisUrl and redisUrlRef are set",
            ),
            (
                "[session]\nstore = \"redis\"\nredisUrl = \"http://:pw-canary@127.0.0.1:6379\"".to_string(),
                "session.redisUrl",
                "the Redis URL does not parse",
            ),
            (
                "[session]\nredisUrl = \"rediss://127.0.0.1:6379\"".to_string(),
                "session.redisUrl",
                "rediss:// (Redis over TLS) is not supported",
            ),
            (
                "[channels.telegram.groupPrompts]\n\"-100\" = \"ok\"\n\"abc\" = \"x\"".to_string(),
                "channels.telegram.groupPrompts.\"abc\"",
                "\"abc\" is not a Telegram chat id",
            ),
            (
                "[channels.discord.channelPrompts]\n\"12x\" = \"x\"".to_string(),
                "channels.discord.channelPrompts.\"12x\"",
                "\"12x\" is not a Discord channel id",
            ),
            (
                "[channels.discord.channelPrompts]\n\"0\" = \"x\"".to_string(),
                "channels.discord.channelPrompts.\"0\"",
                "\"0\" is not a Discord channel id",
            ),
            (
                "[channels.discord.channelPrompts]\n\"0333\" = \"x\"\n\"333\" = \"y\"".to_string(),
                "channels.discord.channelPrompts.\"333\"",
                "\"0333\" and \"333\" both name 333",
            ),
            (
                "[channels.telegram.groupPrompts]\n\" -100\" = \"x\"\n\"-100\" = \"y\"".to_string(),
                "channels.telegram.groupPrompts.\"-100\"",
                "\" -100\" and \"-100\" both name -100",
            ),
            (
                "[channels.telegram]\nbotTokenRef = { source = \"exec\", provider = \"nope\", id = \"X\" }".to_string(),
                "channels.telegram.botTokenRef",
                "no secret provider \"nope\"",
            ),
            (
                format!("[models.providers.openai]\napiKey = {}", env_ref("vault")),
                "models.providers.openai.apiKey",
                "no secret provider \"vault\"",
            ),
        ];
        for (text, key, message) in bad {
            let err = crate::config::parse(std::path::Path::new("rc.toml"), &text).unwrap_err();
            assert_eq!(err.key(), Some(key), "{text}: {err}");
            assert!(err.to_string().contains(message), "{text}: {err}");
            assert!(!err.to_string().contains("pw-canary"), "{err}");
        }
        // The implicit env provider, and a defined one, are fine; so are chat ids as
        // prompt keys, and a short stream interval (it acts as 100 ms).
        for text in [
            "[channels.telegram]\nstreamIntervalMs = 50\n[channels.telegram.groupPrompts]\n\"-1001234567890\" = \"x\"\n\"42\" = \"y\"".to_string(),
            "[channels.discord]\nstreamIntervalMs = 0\n[channels.discord.channelPrompts]\n\"333333333333333333\" = \"x\"".to_string(),
            format!("[channels.telegram]\nbotTokenRef = {}", env_ref("default")),
            format!(
                "[secrets.providers.vault]\nsource = \"env\"\n[channels.discord]\ntokenRef = {}",
                env_ref("vault")
            ),
        ] {
            assert!(
                crate::config::parse(std::path::Path::new("rc.toml"), &text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn loader_errors_quote_keys_that_are_not_bare_and_say_what_is_missing() {
        let parse = |t: &str| crate::config::parse(std::path::Path::new("rc.toml"), t).unwrap_err();
        let err = parse("[auth.profiles.\"anthropic:work\"]\nprovider = \"anthropic\"\n");
        assert_eq!(err.key(), Some("auth.profiles.\"anthropic:work\""), "{err}");
        assert!(err.to_string().contains("add `mode = …`"), "{err}");
        let err =
            parse("[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\nimages = \"no\"\n");
        assert_eq!(
            err.key(),
            Some("agents.defaults.models.\"anthropic/claude-opus-4-5\".images"),
            "{err}"
        );
    }

    #[test]
    fn discord_shard_ranges_that_are_fine() {
        for (body, count, range) in [
            ("", None, None),
            ("shardCount = 1", Some(1), None),
            ("shardCount = 4", Some(4), None),
            ("shardCount = 2\nshards = [0, 0]", Some(2), Some([0, 0])),
            ("shardCount = 2\nshards = [1, 1]", Some(2), Some([1, 1])),
            ("shardCount = 4\nshards = [0, 3]", Some(4), Some([0, 3])),
        ] {
            let d = discord(body).unwrap().channels.discord.unwrap();
            assert_eq!(
                (d.shard_count, d.shards.as_deref()),
                (count, range.as_ref().map(|r: &[u32; 2]| &r[..])),
                "{body}"
            );
        }
    }

    fn webhook_config(table: &str) -> Result<Config, crate::config::ConfigError> {
        crate::config::parse(
            std::path::Path::new("t.toml"),
            &format!("[channels.telegram]\nenabled = true\n[channels.telegram.webhook]\n{table}"),
        )
    }

    fn webhook_error(table: &str) -> (String, String) {
        let e = webhook_config(table).expect_err(table);
        (e.key().unwrap_or_default().to_string(), e.to_string())
    }

    #[test]
    fn telegram_webhook_settings_are_checked() {
        let ok = webhook_config(
            "url = \"https://bot.example.com/telegram/webhook\"\nsecretToken = \"Ab_9-z\"",
        )
        .unwrap();
        let w = ok.channels.telegram.unwrap().webhook.unwrap();
        assert_eq!(w.path().as_deref(), Some("/telegram/webhook"));
        webhook_config(
            "url = \"http://127.0.0.1:8080/hook\"\nsecretTokenRef = { source = \"env\", id = \"TG_HOOK\" }",
        )
        .unwrap();

        for (table, key, says) in [
            (
                "url = \"bot.example.com/hook\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "not an http(s) URL",
            ),
            (
                "url = \"ftp://bot.example.com/hook\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "not an http(s) URL",
            ),
            (
                "url = \"https://bot.example.com\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "has no path",
            ),
            (
                "url = \"https://bot.example.com/\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "has no path",
            ),
            (
                "url = \"https://bot.example.com/v1/chat/completions\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "gateway's own routes",
            ),
            (
                "url = \"https://bot.example.com/health\"\nsecretToken = \"s\"",
                "channels.telegram.webhook.url",
                "gateway's own routes",
            ),
            (
                "url = \"https://bot.example.com/hook\"",
                "channels.telegram.webhook",
                "needs a secret",
            ),
            (
                "url = \"https://bot.example.com/hook\"\nsecretToken = \"\"",
                "channels.telegram.webhook.secretToken",
                "not one Telegram accepts",
            ),
            (
                "url = \"https://bot.example.com/hook\"\nsecretToken = \"has space\"",
                "channels.telegram.webhook.secretToken",
                "not one Telegram accepts",
            ),
            (
                "url = \"https://bot.example.com/hook\"\nsecretToken = \"ünïcode\"",
                "channels.telegram.webhook.secretToken",
                "not one Telegram accepts",
            ),
            (
                "url = \"https://bot.example.com/hook\"\nsecretToken = \"s\"\nsecretTokenRef = { source = \"env\", id = \"X\" }",
                "channels.telegram.webhook.secretTokenRef",
                "both",
            ),
            ("secretToken = \"s\"", "channels.telegram.webhook", "url"),
            (
                "url = \"https://bot.example.com/hook\"\nsecret = \"s\"",
                "channels.telegram.webhook.secret",
                "unknown field",
            ),
        ] {
            let (k, message) = webhook_error(table);
            assert_eq!(k, key, "{table}: {message}");
            assert!(message.contains(says), "{table}: {message}");
            assert!(message.contains("fix:"), "{message}");
            assert!(
                !message.contains("has space") && !message.contains("ünïcode"),
                "the secret is never quoted: {message}"
            );
        }
        let long = "a".repeat(257);
        let (k, message) = webhook_error(&format!(
            "url = \"https://bot.example.com/hook\"\nsecretToken = \"{long}\""
        ));
        assert_eq!(k, "channels.telegram.webhook.secretToken");
        assert!(message.contains("257 characters") && !message.contains(&long));
        webhook_config(&format!(
            "url = \"https://bot.example.com/hook\"\nsecretToken = \"{}\"",
            "a".repeat(256)
        ))
        .unwrap();
    }

    #[test]
    fn alerts_targets_are_checked() {
        let parse = |body: &str| {
            crate::config::parse(std::path::Path::new("t.toml"), &format!("[alerts]\n{body}"))
        };
        let ok = parse("telegramChat = -1001234567890\ndiscordChannel = \"333\"").unwrap();
        let a = ok.alerts.unwrap();
        assert_eq!(a.telegram_chat, Some(-1001234567890));
        assert_eq!(a.discord_channel_id(), Some(333));
        assert!(parse("").unwrap().alerts.is_some(), "an empty table loads");
        for (body, key, says) in [
            (
                "telegramChat = 0",
                "alerts.telegramChat",
                "not a Telegram chat id",
            ),
            (
                "telegramChat = \"123\"",
                "alerts.telegramChat",
                "invalid type",
            ),
            (
                "discordChannel = \"general\"",
                "alerts.discordChannel",
                "not a Discord channel id",
            ),
            (
                "discordChannel = \"0\"",
                "alerts.discordChannel",
                "not a Discord channel id",
            ),
            (
                "discordChannel = 333",
                "alerts.discordChannel",
                "invalid type",
            ),
            (
                "slackChannel = \"x\"",
                "alerts.slackChannel",
                "unknown field",
            ),
        ] {
            let e = parse(body).expect_err(body);
            assert_eq!(e.key(), Some(key), "{body}: {e}");
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn line_lookup() {
        let t = "[gateway]\nport = 1\n\n[agents.defaults.model]\nprimary = \"x\"\n";
        assert_eq!(line_of_key(t, "gateway.port"), Some(2));
        assert_eq!(line_of_key(t, "agents.defaults.model.primary"), Some(5));
    }
}
