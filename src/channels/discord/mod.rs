//! The Discord channel (serenity). Owns everything Discord-specific: the REST base and
//! gateway (a non-default `apiBase` routes every request through it, with serenity's
//! own ratelimiter off, since that one would still call discord.com), slash commands
//! rendered from `commands/*.toml` with autocomplete (`commands`), deferred interaction
//! replies, DMs and mentions (`messages`) with their images and files (`media`), who
//! may talk (`access`: dmPolicy, allowFrom, pairing, groupPolicy, owners), replies split at 2000 characters and re-sent after the
//! `retry_after` of a 429 (`rest`), the inbox marks that answer each message once, and
//! the graceful drain on shutdown (`drain`), and the shard range this process runs
//! (`shards`: `shardCount`, `shards`; Discord sends DMs on shard 0 only). The message
//! itself goes through `chat::handle`.

mod access;
mod arrivals;
mod commands;
mod drain;
mod live;
mod media;
mod messages;
mod rest;
pub mod shards;

use crate::app::App;
use crate::config::DiscordConfig;
use crate::config::live::LiveSection;
use crate::inbox::Inbox;
use crate::pairing::PairingStore;
use crate::secret::Secret;
use drain::Gate;
use rest::Rest;
use serenity::all::{
    Context, EventHandler, GatewayIntents, HttpBuilder, Interaction, Message, Ready, ShardManager,
};
use shards::ShardRange;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    #[error("channels.discord.shards: {0}")]
    Shards(String),
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

/// The serenity event handler; one task per event, each holding a drain pass.
struct Handler {
    app: Arc<App>,
    /// `[channels.discord]` in force (a reload replaces it; read once per event).
    cfg: LiveSection<DiscordConfig>,
    pairing: PairingStore,
    inbox: Inbox,
    rest: Rest,
    /// Fetches images and files attached to messages (`media`).
    media: media::Downloader,
    gate: Arc<Gate>,
    /// The bot's own user id, from READY.
    me: std::sync::OnceLock<serenity::all::UserId>,
    /// Set by the first READY, which answers what an earlier run left unanswered.
    started: AtomicBool,
    /// The first shard this process runs: its READY registers the slash commands.
    first_shard: u32,
    /// The shards this process runs, when it runs a range of them.
    shards: Option<ShardRange>,
    /// The order messages arrived in, per channel (`arrivals`).
    arrivals: Arc<arrivals::Arrivals>,
}

impl Handler {
    /// The channel's settings in force now.
    fn cfg(&self) -> Arc<DiscordConfig> {
        self.cfg.load_full()
    }

    /// Where a guild channel's messages belong: `(channel, thread)` — a thread's
    /// parent channel decides who may talk and which prompt applies, and the thread
    /// has a session of its own (`discord:channel:<channel>:thread:<thread>`).
    fn place(&self, channel: serenity::all::ChannelId) -> (String, Option<String>) {
        match self.arrivals.parent_of(channel) {
            Some(parent) => (parent.to_string(), Some(channel.to_string())),
            None => (channel.to_string(), None),
        }
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let shard = ready.shard.map(|s| [s.id.0, s.total]);
        tracing::info!(bot = %ready.user.name, ?shard, "Discord channel connected");
        let _ = self.me.set(ready.user.id);
        // Messages are noted in the order this connection receives them.
        let (cfg, me) = (self.cfg.clone(), ready.user.id);
        let collector = self.arrivals.collector(ctx.shard_id.0, move |m, parent| {
            messages::wanted(&cfg.load_full(), me, m, parent)
        });
        ctx.shard.add_collector(collector);
        // Once per connection of the process's first shard, not once per shard.
        if shard.is_none_or(|[id, _]| id == self.first_shard) {
            let http = ctx.http.clone();
            let guilds = self.cfg().guilds.clone();
            // Registration never blocks start-up.
            tokio::spawn(async move { commands::register(&http, &guilds).await });
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            self.gate.unless_ended(self.replay_pending(&ctx)).await;
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        self.gate.unless_ended(self.on_message(&ctx, msg)).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let work = async {
            match interaction {
                Interaction::Command(cmd) => commands::run(self, &ctx, cmd).await,
                Interaction::Autocomplete(ac) => commands::autocomplete(self, &ctx, ac).await,
                _ => {}
            }
        };
        self.gate.unless_ended(work).await;
    }
}

/// Run the channel until `shutdown` turns true (or its sender goes away). Then it stops
/// taking messages, lets the turns in flight finish and send their replies, closes the
/// gateway connection and returns.
pub async fn run(
    app: Arc<App>,
    live: LiveSection<DiscordConfig>,
    token: Secret,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let cfg = live.load_full();
    // serenity's own client settings, built here so replies can use it too (`rest`);
    // Discord never redirects, and a redirect must not carry the bot token elsewhere.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DiscordError::Client(e.to_string()))?;
    let mut http = HttpBuilder::new(token.expose()).client(client.clone());
    if cfg.api_base.trim_end_matches('/') != DEFAULT_API_BASE {
        // serenity's ratelimiter ignores the proxy and would call discord.com.
        http = http
            .proxy(cfg.api_base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let range = ShardRange::from_config(&cfg).map_err(DiscordError::Shards)?;
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let gate = Arc::new(Gate::default());
    let _end_handlers = drain::EndOnDrop(gate.clone());
    let media =
        media::Downloader::new(&cfg.api_base).map_err(|e| DiscordError::Client(e.to_string()))?;
    let handler = Handler {
        media,
        pairing: app.pairing(),
        inbox: app.inbox(),
        app,
        cfg: live,
        rest: Rest::new(client),
        gate: gate.clone(),
        me: std::sync::OnceLock::new(),
        started: AtomicBool::new(false),
        first_shard: range.map_or(0, |r| r.from),
        shards: range,
        arrivals: Arc::default(),
    };
    let mut client = serenity::all::ClientBuilder::new_with_http(http.build(), intents)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Client(token.redact_in(&e.to_string())))?;
    // serenity asked for the gateway URL while it was built, and on a failure fell back
    // to discord.com's: the channel connects to the one Discord (or `apiBase`) names.
    let Some(ws_url) = reach_discord(&client.http, &token, &mut shutdown).await? else {
        return Ok(());
    };
    *client.ws_url.lock().await = ws_url;
    if let Some(range) = range
        && !wait_for_identify_turn(&client.http, &token, range, &mut shutdown).await
    {
        return Ok(());
    }
    let manager: Arc<ShardManager> = client.shard_manager.clone();
    let stopper = tokio::spawn(async move {
        // An error means the sender is gone: shut down as well.
        let _ = shutdown.wait_for(|stop| *stop).await;
        tracing::info!("Discord channel: shutting down, finishing the replies in flight");
        gate.close_and_wait().await;
        manager.shutdown_all().await;
    });
    let started = match range {
        None => client.start().await,
        Some(r) => {
            tracing::info!(
                from = r.from,
                to = r.to,
                total = r.total,
                "Discord channel: running shards {}..={} of {}",
                r.from,
                r.to,
                r.total
            );
            // serenity reads the range's end as inclusive (shards 4..7 are 4, 5, 6, 7),
            // and starts them one after another, 5 s apart.
            client.start_shard_range(r.from..r.to, r.total).await
        }
    };
    stopper.abort();
    started.map_err(|e| DiscordError::Client(token.redact_in(&e.to_string())))
}

/// Ask Discord where its gateway is (`GET /gateway`) until it answers, with a growing
/// pause (1 s, doubling to 60 s): a network blip at start-up must not leave the channel
/// stopped for good, or connecting elsewhere. A refused token (401/403) ends it.
/// `None` when shutdown came first.
async fn reach_discord(
    http: &serenity::all::Http,
    token: &Secret,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<String>, DiscordError> {
    let mut backoff = super::Backoff::new();
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        let e = match http.get_gateway().await {
            Ok(gateway) => return Ok(Some(gateway.url)),
            Err(e) => e,
        };
        if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = &e
            && matches!(r.status_code.as_u16(), 401 | 403)
        {
            return Err(DiscordError::Client(format!(
                "Discord refused the bot token ({}): check it in the Developer Portal and update channels.discord",
                r.status_code.as_u16()
            )));
        }
        let wait = backoff.next();
        tracing::warn!(
            "Discord GET /gateway failed ({}); retrying in {} s",
            token.redact_in(&e.to_string()),
            wait.as_secs()
        );
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Wait until this process may identify its first shard (`shards::ShardRange::start_delay`
/// with the bot's `max_concurrency` from `GET /gateway/bot`). Returns false when
/// shutdown came first.
async fn wait_for_identify_turn(
    http: &serenity::all::Http,
    token: &Secret,
    range: ShardRange,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if range.from == 0 {
        // The first group never waits, whatever the concurrency.
        return true;
    }
    let max_concurrency = match http.get_bot_gateway().await {
        Ok(gateway) => {
            let limit = gateway.session_start_limit;
            if limit.remaining < u64::from(range.width()) {
                tracing::warn!(
                    remaining = limit.remaining,
                    reset_after_ms = limit.reset_after,
                    "Discord allows fewer session starts than this process has shards until the limit resets"
                );
            }
            limit.max_concurrency
        }
        Err(e) => {
            // Without the bot's concurrency, assume the strictest (one bucket).
            tracing::warn!(
                error = %token.redact_in(&e.to_string()),
                "GET /gateway/bot failed; staggering shards as if max_concurrency = 1"
            );
            1
        }
    };
    let delay = range.start_delay(max_concurrency);
    if delay.is_zero() {
        return true;
    }
    tracing::info!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        max_concurrency,
        "Discord channel: waiting for this process's turn to identify"
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        // An error means the sender is gone: shut down as well.
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}
