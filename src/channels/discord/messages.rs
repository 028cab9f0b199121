//! Direct and guild messages: who may talk (`access`), the inbox mark (a message that
//! is delivered twice is answered once; one received while shutting down, or cut off by
//! a crash, is answered at the next start), the turn through `chat::handle` with the
//! message's images and files (`media`), and the reply streamed into the channel
//! (`live`), split at 2000 characters. Unknown DM senders are offered a pairing code.

use super::access::{self, GuildEvent};
use super::arrivals::Turn;
use super::{Handler, live};
use crate::channels::{chunk, stream};
use crate::chat::Inbound;
use crate::config::{DiscordConfig, DmPolicy};
use crate::inbox::{PendingMessage, Receipt};
use crate::session::BUSY_REPLY;
use crate::session::key;
use serenity::all::{ChannelId, Context, Message, UserId};

/// The inbox channel name of Discord (message and interaction ids are snowflakes, unique
/// across both).
pub(super) const INBOX: &str = "discord";

/// Pending messages older than this are not answered at start (a day-old reply helps
/// nobody); they are marked answered instead.
const REPLAY_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;

/// Answered marks are kept this long (Discord does not redeliver after that).
const KEEP_ANSWERED_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Whether a message may be for the bot: a person's (not a bot's or a webhook's) text
/// or files, in a DM, a listed channel, or speaking to the bot ([`addresses`]). Who may talk is decided
/// later (`access`); this only keeps other traffic out of a channel's order
/// (`arrivals`).
pub(super) fn wanted(cfg: &DiscordConfig, me: UserId, msg: &Message, parent: ChannelId) -> bool {
    if !carries_input(msg) {
        return false;
    }
    msg.guild_id.is_none()
        || cfg.channels.iter().any(|c| *c == parent.to_string())
        || addresses(msg, me)
}

/// A person's message (not a bot's or a webhook's) with text or files.
fn carries_input(msg: &Message) -> bool {
    !msg.author.bot && (!msg.content.trim().is_empty() || !msg.attachments.is_empty())
}

/// A guild message speaks to the bot: it mentions the bot, or replies to one of its
/// messages (with the reply's ping turned off too, as Telegram counts a reply).
fn addresses(msg: &Message, me: UserId) -> bool {
    msg.mentions_user_id(me)
        || msg
            .referenced_message
            .as_ref()
            .is_some_and(|r| r.author.id == me)
}

/// The text without the bot's mentions (`<@id>`, `<@!id>`), the rest as written.
fn without_me(text: &str, me: UserId) -> String {
    let (plain, nick) = (format!("<@{me}>"), format!("<@!{me}>"));
    let mut spans: Vec<std::ops::Range<usize>> = text
        .match_indices(&plain)
        .chain(text.match_indices(&nick))
        .map(|(at, m)| at..at + m.len())
        .collect();
    spans.sort_by_key(|r| r.start);
    crate::channels::without_mentions(text, spans)
}

impl Handler {
    /// A MESSAGE_CREATE.
    pub(super) async fn on_message(&self, ctx: &Context, msg: Message) {
        if !carries_input(&msg) {
            return;
        }
        let pass = self.gate.enter();
        // Its place in the channel's order, held from here (freed on every way out).
        let claim = self.arrivals.claim(msg.channel_id, msg.id);
        let Some(session) = self.admit(ctx, &msg, !pass.late()).await else {
            return;
        };
        let id = msg.id.to_string();
        let payload = serde_json::to_string(&msg).unwrap_or_default();
        match self.inbox.receive(INBOX, &id, &payload).await {
            Ok(Receipt::New) => {}
            Ok(seen) => {
                tracing::debug!(message = %id, ?seen, "Discord delivered a message again: not answered twice");
                return;
            }
            Err(e) => tracing::warn!(
                message = %id,
                "could not record a Discord message in the inbox ({e}); answering it anyway"
            ),
        }
        if pass.late() {
            tracing::info!(message = %id, "shutting down: the message is answered at the next start");
            return;
        }
        // Recorded first, so a message still waiting when the gateway stops is answered
        // at the next start. Then its turn: the messages that came before it are answered
        // first; the place is held until the reply is sent.
        let (_place, busy) = match claim.turn().await {
            Turn::Go(place) => (Some(place), false),
            Turn::Unordered => (None, false),
            Turn::Busy => (None, true),
        };
        if busy {
            tracing::debug!(message = %id, "channel queue full: answering busy");
            self.reply(ctx, msg.channel_id, BUSY_REPLY).await;
            self.mark_answered(&id).await;
            return;
        }
        self.answer(ctx, &msg, &session).await;
    }

    /// The session a message belongs to, or `None` when it is not for us or its sender
    /// may not talk here (then it never reaches a model; only an unknown DM sender
    /// under `dmPolicy = "pairing"` hears back, with a pairing code).
    async fn admit(&self, ctx: &Context, msg: &Message, may_reply: bool) -> Option<String> {
        let cfg = self.cfg();
        let user = msg.author.id.to_string();
        match msg.guild_id {
            None => {
                if access::dm_admitted(&cfg, &self.pairing, &user).await {
                    return Some(key::discord_dm(&user));
                }
                if may_reply && cfg.dm_policy == DmPolicy::Pairing {
                    self.offer_pairing(ctx, msg).await;
                }
                None
            }
            Some(guild) => {
                let (channel, thread) = self.place(msg.channel_id);
                let event = GuildEvent {
                    guild: &guild.to_string(),
                    channel: &channel,
                    user: &user,
                };
                let mentioned = self.me.get().is_some_and(|me| addresses(msg, *me));
                access::guild_message_admitted(&cfg, event, mentioned)
                    .then(|| key::discord_channel(&channel, thread.as_deref()))
            }
        }
    }

    /// Run the message as a turn of `session`, send the reply, mark it answered.
    async fn answer(&self, ctx: &Context, msg: &Message, session: &str) {
        let cfg = self.cfg();
        let user = msg.author.id.to_string();
        let text = match self.me.get() {
            Some(me) => without_me(&msg.content, *me),
            None => crate::directive::tidy(&msg.content).to_string(),
        };
        let typing = typing_after_grace(ctx, msg.channel_id);
        // Images and files, downloaded and checked; the person hears about any refused.
        let max = self.app.config().agents.defaults.max_image_bytes();
        let gathered = self.media.gather(&msg.attachments, max).await;
        if let Some(notice) = gathered.notice() {
            self.reply(ctx, msg.channel_id, &notice).await;
        }
        if !gathered.answer(&text) {
            typing.abort();
            self.mark_answered(&msg.id.to_string()).await;
            return;
        }
        let surface = live::ChannelReply {
            rest: &self.rest,
            http: &ctx.http,
            channel: msg.channel_id,
        };
        let inbound = Inbound {
            session,
            text: &text,
            owner: access::is_owner(&cfg, &user),
            bot_username: None,
            agent: cfg.agent.as_deref(),
            system_prompt: cfg.prompt_for(&self.place(msg.channel_id).0),
            attachments: &gathered.attachments,
            quoted: msg
                .referenced_message
                .as_deref()
                .map(|m| m.content.as_str()),
        };
        let (_, stats) =
            stream::answer(&self.app, inbound, &surface, live::style(&cfg), |result| {
                typing.abort();
                (!result.ignored).then(|| stream::Final::of(result))
            })
            .await;
        tracing::debug!(channel = %msg.channel_id, ?stats, "reply delivered");
        if let Err(e) = self.inbox.answered(INBOX, &msg.id.to_string()).await {
            tracing::warn!(message = %msg.id, "could not mark a Discord message answered (trying again in the background): {e}");
        }
    }

    /// Send `text` in parts of at most 2000 characters; stops at the first part that
    /// cannot be delivered.
    pub(super) async fn reply(&self, ctx: &Context, channel: ChannelId, text: &str) {
        for part in chunk::split(text, chunk::DISCORD) {
            if let Err(e) = self.rest.post_message(&ctx.http, channel, &part).await {
                tracing::error!(channel = %channel, "could not send a reply to Discord: {e}");
                return;
            }
        }
    }

    async fn offer_pairing(&self, ctx: &Context, msg: &Message) {
        let request = self
            .pairing
            .request(
                "discord",
                &msg.author.id.to_string(),
                Some(&msg.author.name),
            )
            .await;
        match request {
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

    /// At start: answer the messages that were received but not answered (a crash, or
    /// a shutdown that came first), oldest first; forget old answered marks.
    pub(super) async fn replay_pending(&self, ctx: &Context) {
        let pending = match self.inbox.pending(INBOX).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("could not read unanswered Discord messages: {e}");
                return;
            }
        };
        // With replicas, a message another live replica is answering is left to it,
        // and answered here only if that replica stops with it still pending.
        let mut elsewhere = Vec::new();
        for p in pending {
            let msg = serde_json::from_str::<Message>(&p.payload).ok();
            // With processes running shard ranges over one store, another process's
            // messages are its own to answer.
            if let (Some(m), Some(range)) = (&msg, &self.shards)
                && !range.holds(m.guild_id.map(|g| g.get()))
            {
                continue;
            }
            if !self.inbox.claim(INBOX, &p.id).await {
                elsewhere.push((p, msg));
                continue;
            }
            if !self.replay_one(ctx, &p, msg).await {
                return;
            }
        }
        for (p, msg) in elsewhere {
            if self.inbox.wait_for_claim(INBOX, &p.id).await && !self.replay_one(ctx, &p, msg).await
            {
                return;
            }
        }
        if let Err(e) = self.inbox.prune(INBOX, KEEP_ANSWERED_MS).await {
            tracing::warn!("could not prune old Discord inbox marks: {e}");
        }
    }

    /// Answer one message left pending; `false` when the channel is stopping.
    async fn replay_one(&self, ctx: &Context, p: &PendingMessage, msg: Option<Message>) -> bool {
        let pass = self.gate.enter();
        if pass.late() {
            return false;
        }
        let now = self.app.clock.now_ms();
        match msg {
            Some(msg) if now.saturating_sub(p.received_at) <= REPLAY_MAX_AGE_MS => {
                tracing::info!(message = %p.id, "answering a Discord message received before the restart");
                match self.admit(ctx, &msg, false).await {
                    Some(session) => self.answer(ctx, &msg, &session).await,
                    None => self.mark_answered(&p.id).await,
                }
            }
            // Interactions (their tokens expire) and messages too old to answer.
            _ => {
                tracing::info!(id = %p.id, "a Discord message or command from before the restart cannot be answered now");
                self.mark_answered(&p.id).await;
            }
        }
        true
    }

    pub(super) async fn mark_answered(&self, id: &str) {
        if let Err(e) = self.inbox.answered(INBOX, id).await {
            tracing::warn!(
                id,
                "could not mark a Discord message answered (trying again in the background): {e}"
            );
        }
    }
}

/// Discord shows "typing…" for about 10 s after each trigger; it is sent again this often.
const TYPING_EVERY: std::time::Duration = std::time::Duration::from_secs(7);

/// The typing indicator, from [`crate::channels::TYPING_AFTER`] on until aborted: a reply
/// that is there sooner costs no extra REST call.
fn typing_after_grace(ctx: &Context, channel: ChannelId) -> crate::channels::Beside {
    let http = ctx.http.clone();
    crate::channels::Beside::spawn(async move {
        tokio::time::sleep(crate::channels::TYPING_AFTER).await;
        loop {
            if let Err(e) = channel.broadcast_typing(&http).await {
                tracing::debug!(%channel, "typing indicator not shown: {e}");
            }
            tokio::time::sleep(TYPING_EVERY).await;
        }
    })
}
