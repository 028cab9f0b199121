//! Chat channels (a bot token for each enabled one, owners, DM policy, pending pairing
//! requests) and the gateway (a non-loopback bind needs a token).

use super::Finding;
use super::checks::plural;
use crate::auth::CredentialResolver;
use crate::config::env::EnvMap;
use crate::config::{Config, DmPolicy, SecretInput, SecretRef};
use crate::pairing::{PairingStatus, PairingStore};

/// Where a channel may take its bot token from (DESIGN §3).
struct TokenSources<'a> {
    name: &'static str,
    plain: Option<&'a str>,
    plain_key: &'static str,
    reference: Option<&'a SecretRef>,
    ref_key: &'static str,
    env_var: &'static str,
}

/// Check that an enabled channel has a bot token: in the config, through a SecretRef, or
/// in the environment (in that order).
async fn channel_token(
    t: TokenSources<'_>,
    env: &EnvMap,
    env_path: &str,
    resolver: &CredentialResolver,
    config_path: &str,
    r: &mut Vec<Finding>,
) {
    let name = t.name;
    if t.plain.is_some_and(|v| !v.trim().is_empty()) {
        r.push(Finding::ok(
            "channel_token",
            format!("{name}: bot token from channels.{name}.{}", t.plain_key),
        ));
        return;
    }
    if let Some(rf) = t.reference {
        match resolver.secrets.resolve(rf).await {
            Ok(_) => r.push(Finding::ok(
                "channel_token",
                format!("{name}: bot token from channels.{name}.{}", t.ref_key),
            )),
            Err(e) => r.push(
                Finding::error(
                    "unresolved_ref",
                    format!("channels.{name}.{} in {config_path}: {e}", t.ref_key),
                )
                .fix("make the referenced secret available as the message says, or change the ref"),
            ),
        }
        return;
    }
    if env.get_nonblank(t.env_var).is_some() {
        r.push(Finding::ok(
            "channel_token",
            format!("{name}: bot token from {}", t.env_var),
        ));
        return;
    }
    let id = if name == "telegram" {
        "telegram_token_missing"
    } else {
        "discord_token_missing"
    };
    r.push(
        Finding::error(
            id,
            format!("{name} is enabled in {config_path} but has no bot token"),
        )
        .fix(format!(
            "set {} (in the environment or {env_path}), or channels.{name}.{}, or run `remoteclaw onboard`",
            t.env_var, t.ref_key
        )),
    );
}

/// Access rules of an enabled channel.
fn channel_access(
    name: &str,
    policy: DmPolicy,
    allow_from_empty: bool,
    owners_empty: bool,
    agent: Option<&str>,
    checked_agent: &str,
    r: &mut Vec<Finding>,
) {
    let id = |t: &'static str, d: &'static str| if name == "telegram" { t } else { d };
    if owners_empty {
        r.push(
            Finding::warning(
                id("telegram_no_owners", "discord_no_owners"),
                format!(
                    "{name}: no owners and no allowFrom, so nobody can pin profiles from {name}"
                ),
            )
            .fix(format!(
                "add your own user id to channels.{name}.owners (or allowFrom)"
            )),
        );
    }
    match policy {
        DmPolicy::Open => r.push(
            Finding::warning(
                id("telegram_dm_open", "discord_dm_open"),
                format!("{name}: dmPolicy = \"open\": anyone who finds the bot can use your credentials"),
            )
            .fix(format!(
                "set channels.{name}.dmPolicy = \"pairing\" (approve people with `remoteclaw pairing approve`) or \"allowlist\""
            )),
        ),
        DmPolicy::Allowlist if allow_from_empty => r.push(
            Finding::warning(
                id("telegram_allowlist_empty", "discord_allowlist_empty"),
                format!("{name}: dmPolicy = \"allowlist\" with an empty allowFrom, so nobody can message the bot"),
            )
            .fix(format!("add user ids to channels.{name}.allowFrom, or use dmPolicy = \"pairing\"")),
        ),
        _ => {}
    }
    if let Some(a) = agent.filter(|a| *a != checked_agent) {
        r.push(Finding::info(
            id("telegram_agent", "discord_agent"),
            format!("{name} uses agent \"{a}\"; check its credentials with `remoteclaw doctor --agent {a}`"),
        ));
    }
}

pub(super) async fn channels(
    config: &Config,
    env: &EnvMap,
    env_path: &str,
    resolver: &CredentialResolver,
    config_path: &str,
    checked_agent: &str,
    r: &mut Vec<Finding>,
) {
    let mut any = false;
    if let Some(t) = config.channels.telegram.as_ref().filter(|t| t.enabled) {
        any = true;
        channel_token(
            TokenSources {
                name: "telegram",
                plain: t.bot_token.as_deref(),
                plain_key: "botToken",
                reference: t.bot_token_ref.as_ref(),
                ref_key: "botTokenRef",
                env_var: "TELEGRAM_BOT_TOKEN",
            },
            env,
            env_path,
            resolver,
            config_path,
            r,
        )
        .await;
        let owners_empty = t.owners.as_ref().unwrap_or(&t.allow_from).is_empty();
        channel_access(
            "telegram",
            t.dm_policy,
            t.allow_from.is_empty(),
            owners_empty,
            t.agent.as_deref(),
            checked_agent,
            r,
        );
    }
    if let Some(d) = config.channels.discord.as_ref().filter(|d| d.enabled) {
        any = true;
        channel_token(
            TokenSources {
                name: "discord",
                plain: d.token.as_deref(),
                plain_key: "token",
                reference: d.token_ref.as_ref(),
                ref_key: "tokenRef",
                env_var: "DISCORD_BOT_TOKEN",
            },
            env,
            env_path,
            resolver,
            config_path,
            r,
        )
        .await;
        let owners_empty = d.owners.as_ref().unwrap_or(&d.allow_from).is_empty();
        channel_access(
            "discord",
            d.dm_policy,
            d.allow_from.is_empty(),
            owners_empty,
            d.agent.as_deref(),
            checked_agent,
            r,
        );
    }
    if !any {
        r.push(Finding::info(
            "channels_none",
            "no chat channel is enabled: terminal, web chat and HTTP API only",
        ));
    }
}

pub(super) async fn gateway(
    config: &Config,
    resolver: &CredentialResolver,
    config_path: &str,
    r: &mut Vec<Finding>,
) {
    let g = &config.gateway;
    let has_token = match &g.auth.token {
        None => false,
        Some(SecretInput::Plain(t)) if t.trim().is_empty() => {
            r.push(
                Finding::error(
                    "gateway_token_empty",
                    format!(
                        "gateway.auth.token is empty in {config_path}; the gateway refuses to start"
                    ),
                )
                .fix("set a long random token, or remove the key"),
            );
            true
        }
        Some(SecretInput::Plain(_)) => true,
        Some(SecretInput::Ref(rf)) => {
            if let Err(e) = resolver.secrets.resolve(rf).await {
                r.push(
                    Finding::error(
                        "gateway_token_unresolved",
                        format!("gateway.auth.token in {config_path}: {e}; the gateway refuses to start"),
                    )
                    .fix("make the referenced secret available as the message says, or change the ref"),
                );
            }
            true
        }
    };
    match crate::gateway::check_bind(&g.bind, has_token, config_path) {
        Ok(ip) => r.push(Finding::ok(
            "gateway_ok",
            format!(
                "gateway listens on {}:{} ({})",
                g.bind,
                g.port,
                if ip.is_loopback() {
                    "loopback only"
                } else {
                    "token required"
                }
            ),
        )),
        Err(crate::gateway::BindError::NeedsToken(..)) => r.push(
            Finding::error(
                "gateway_no_token",
                format!(
                    "gateway.bind = \"{}\" in {config_path} is not a loopback address and gateway.auth.token is not set: the gateway refuses to start, and anyone who can reach it could use your credentials",
                    g.bind
                ),
            )
            .fix(format!(
                "set [gateway.auth] token = \"<a long random string>\" in {config_path}, or bind = \"127.0.0.1\""
            )),
        ),
        Err(e) => r.push(
            Finding::error("gateway_bad_bind", e.to_string())
                .fix(format!("fix gateway.bind in {config_path}")),
        ),
    }
}

/// Pending pairing requests on enabled channels that pair: someone waits for the operator.
pub(super) async fn pairing_pending(pairing: &PairingStore, config: &Config, r: &mut Vec<Finding>) {
    let pairs = |name: &str| match name {
        "telegram" => config
            .channels
            .telegram
            .as_ref()
            .is_some_and(|t| t.enabled && t.dm_policy == DmPolicy::Pairing),
        _ => config
            .channels
            .discord
            .as_ref()
            .is_some_and(|d| d.enabled && d.dm_policy == DmPolicy::Pairing),
    };
    let Ok(entries) = pairing.list().await else {
        return;
    };
    for name in ["telegram", "discord"].into_iter().filter(|n| pairs(n)) {
        let n = entries
            .iter()
            .filter(|e| e.status == PairingStatus::Pending && e.channel == name)
            .count();
        if n > 0 {
            r.push(
                Finding::info(
                    "pairing_pending",
                    format!(
                        "{name}: {} waiting for approval",
                        plural(n, "pairing request", "pairing requests")
                    ),
                )
                .fix(format!(
                    "`remoteclaw pairing list`, then `remoteclaw pairing approve {name} <code>`"
                )),
            );
        }
    }
}

/// `[alerts]` (DESIGN §11): each target needs its channel's bot token (the channel
/// itself need not be enabled).
pub(super) fn alerts(config: &Config, env: &EnvMap, config_path: &str, r: &mut Vec<Finding>) {
    let Some(a) = &config.alerts else {
        return;
    };
    let telegram = config.channels.telegram.as_ref();
    let discord = config.channels.discord.as_ref();
    let has = |plain: Option<&str>, reference: bool, var: &str| {
        plain.is_some_and(|v| !v.trim().is_empty()) || reference || env.get_nonblank(var).is_some()
    };
    let mut targets = Vec::new();
    if let Some(chat) = a.telegram_chat {
        let ok = has(
            telegram.and_then(|t| t.bot_token.as_deref()),
            telegram.is_some_and(|t| t.bot_token_ref.is_some()),
            "TELEGRAM_BOT_TOKEN",
        );
        if ok {
            targets.push(format!("Telegram chat {chat}"));
        } else {
            r.push(
                Finding::warning(
                    "alerts_no_token",
                    format!("alerts.telegramChat in {config_path}: no Telegram bot token to post with, so these alerts are not sent"),
                )
                .fix("set channels.telegram.botToken or botTokenRef, or TELEGRAM_BOT_TOKEN (the channel need not be enabled)"),
            );
        }
    }
    if let Some(channel) = &a.discord_channel {
        let ok = has(
            discord.and_then(|d| d.token.as_deref()),
            discord.is_some_and(|d| d.token_ref.is_some()),
            "DISCORD_BOT_TOKEN",
        );
        if ok {
            targets.push(format!("Discord channel {channel}"));
        } else {
            r.push(
                Finding::warning(
                    "alerts_no_token",
                    format!("alerts.discordChannel in {config_path}: no Discord bot token to post with, so these alerts are not sent"),
                )
                .fix("set channels.discord.token or tokenRef, or DISCORD_BOT_TOKEN (the channel need not be enabled)"),
            );
        }
    }
    if !targets.is_empty() {
        r.push(Finding::ok(
            "alerts_ok",
            format!("credential alerts go to {}", targets.join(" and ")),
        ));
    }
}
