//! The Discord channel (serenity). Owns everything Discord-specific: the REST base and
//! gateway (a non-default `apiBase` routes every request through it, with serenity's
//! own ratelimiter off, since that one would still call discord.com), slash commands
//! rendered from `commands/*.toml` with autocomplete, deferred interaction replies,
//! DMs and mentions, who may talk (dmPolicy, allowFrom, pairing, owners), and replies
//! split at 2000 characters. The message itself goes through `chat::handle`.

mod commands;

use crate::app::App;
use crate::channels::chunk;
use crate::chat::{Inbound, handle};
use crate::config::{DiscordConfig, DmPolicy};
use crate::pairing::PairingStore;
use crate::secret::Secret;
use crate::session::key;
use serenity::all::{
    Context, EventHandler, GatewayIntents, HttpBuilder, Interaction, Message, Ready, ShardManager,
};
use std::sync::Arc;
use tokio::sync::watch;

/// Discord's own REST base: requests go there directly, with serenity's ratelimiter.
pub const DEFAULT_API_BASE: &str = "https://discord.com";

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error(
        "Discord bot token missing: set channels.discord.token, tokenRef, or DISCORD_BOT_TOKEN"
    )]
    NoToken,
    #[error("channels.discord.tokenRef: {0}")]
    TokenRef(String),
    #[error("Discord client failed: {0}")]
    Client(String),
}

/// The bot token from `token`, `tokenRef` or `DISCORD_BOT_TOKEN`.
pub async fn token(app: &App, cfg: &DiscordConfig) -> Result<Secret, DiscordError> {
    super::bot_token(
        app,
        cfg.token.as_deref(),
        cfg.token_ref.as_ref(),
        "DISCORD_BOT_TOKEN",
    )
    .await
    .map_err(|e| match e {
        super::TokenError::Missing => DiscordError::NoToken,
        super::TokenError::Ref(m) => DiscordError::TokenRef(m),
    })
}

struct Handler {
    app: Arc<App>,
    cfg: DiscordConfig,
    pairing: PairingStore,
    /// The bot's own user id, from READY.
    me: std::sync::OnceLock<serenity::all::UserId>,
}

impl Handler {
    fn owners(&self) -> &[String] {
        self.cfg.owners.as_deref().unwrap_or(&self.cfg.allow_from)
    }

    fn dm_allowed(&self, user: &str) -> bool {
        let listed = self.cfg.allow_from.iter().any(|u| u == user);
        self.cfg.dm_policy.admits(listed, || {
            self.pairing.is_approved("discord", user).unwrap_or(false)
        })
    }

    /// Guild messages: only in listed guilds (when any are listed) or channels.
    fn guild_allowed(&self, guild: &str, channel: &str) -> bool {
        self.cfg.channels.iter().any(|c| c == channel) || self.cfg.guilds.iter().any(|g| g == guild)
    }

    async fn reply(&self, ctx: &Context, channel: serenity::all::ChannelId, text: &str) {
        for part in chunk::split(text, chunk::DISCORD) {
            if !send_once(ctx, channel, &part).await {
                return;
            }
        }
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, "Discord channel connected");
        let _ = self.me.set(ready.user.id);
        let http = ctx.http.clone();
        let guilds = self.cfg.guilds.clone();
        // Registration never blocks start-up.
        tokio::spawn(async move { commands::register(&http, &guilds).await });
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot || msg.content.trim().is_empty() {
            return;
        }
        let user = msg.author.id.to_string();
        let session = match msg.guild_id {
            None => {
                if !self.dm_allowed(&user) {
                    if self.cfg.dm_policy == DmPolicy::Pairing {
                        self.offer_pairing(&ctx, &msg).await;
                    }
                    return;
                }
                key::discord_dm(&user)
            }
            Some(guild) => {
                // Listed channels are answered as they are; elsewhere in allowed guilds
                // only when the bot is mentioned.
                let channel = msg.channel_id.to_string();
                let listed = self.cfg.channels.iter().any(|c| c == &channel);
                let mentioned = self.me.get().is_some_and(|me| msg.mentions_user_id(*me));
                let in_allowed_guild = self.cfg.guilds.iter().any(|g| g == &guild.to_string());
                if !(listed || mentioned && in_allowed_guild) {
                    return;
                }
                key::discord_channel(&msg.channel_id.to_string(), None)
            }
        };
        let text = match self.me.get() {
            Some(me) => msg
                .content
                .replace(&format!("<@{me}>"), " ")
                .replace(&format!("<@!{me}>"), " "),
            None => msg.content.clone(),
        };
        let owner = self.owners().iter().any(|o| o == &user);
        let typing = msg.channel_id.start_typing(&ctx.http);
        let result = handle(
            &self.app,
            Inbound {
                session: &session,
                text: text.trim(),
                owner,
                bot_username: None,
                agent: self.cfg.agent.as_deref(),
            },
            None,
        )
        .await;
        typing.stop();
        if !result.ignored {
            self.reply(&ctx, msg.channel_id, &result.reply_text()).await;
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) => commands::run(self, &ctx, cmd).await,
            Interaction::Autocomplete(ac) => commands::autocomplete(self, &ctx, ac).await,
            _ => {}
        }
    }
}

impl Handler {
    async fn offer_pairing(&self, ctx: &Context, msg: &Message) {
        match self.pairing.request(
            "discord",
            &msg.author.id.to_string(),
            Some(&msg.author.name),
        ) {
            Ok(r) if r.fresh && !r.approved => {
                let text = format!(
                    "Hi! I don't know you yet. To let you in, the operator of this bot runs:\n\nremoteclaw pairing approve discord {}\n\nThe code is valid for one hour.",
                    r.code
                );
                self.reply(ctx, msg.channel_id, &text).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("pairing request failed: {e}"),
        }
    }
}

/// Send one message part. A 429 means it was not delivered, so it is sent again after
/// a pause (1 s, then 2 s, 4 s): with the default `apiBase` serenity's ratelimiter
/// already honours `retry-after`; behind a proxy base it is off and its error type does
/// not carry the value, so the pause is our own.
async fn send_once(ctx: &Context, channel: serenity::all::ChannelId, text: &str) -> bool {
    let mut pause = std::time::Duration::from_secs(1);
    for attempt in 1..=4 {
        match channel.say(&ctx.http, text).await {
            Ok(_) => return true,
            Err(serenity::Error::Http(serenity::all::HttpError::UnsuccessfulRequest(r)))
                if r.status_code.as_u16() == 429 && attempt < 4 =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                tracing::warn!(channel = %channel, "could not send a reply to Discord: {e}");
                return false;
            }
        }
    }
    false
}

/// Run the channel until `shutdown` turns true.
pub async fn run(
    app: Arc<App>,
    cfg: DiscordConfig,
    token: Secret,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let mut http = HttpBuilder::new(token.expose());
    if cfg.api_base.trim_end_matches('/') != DEFAULT_API_BASE {
        // serenity's ratelimiter ignores the proxy and would call discord.com.
        http = http
            .proxy(cfg.api_base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let pairing = PairingStore::new(app.db.clone(), app.clock.clone());
    let handler = Handler {
        app,
        cfg,
        pairing,
        me: std::sync::OnceLock::new(),
    };
    let mut client = serenity::all::ClientBuilder::new_with_http(http.build(), intents)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Client(token.redact_in(&e.to_string())))?;
    let manager: Arc<ShardManager> = client.shard_manager.clone();
    tokio::spawn(async move {
        let _ = shutdown.changed().await;
        manager.shutdown_all().await;
    });
    client
        .start()
        .await
        .map_err(|e| DiscordError::Client(token.redact_in(&e.to_string())))
}
