//! The Telegram channel (teloxide, long polling). Owns everything Telegram-specific:
//! who may talk (dmPolicy, allowFrom, pairing, groups and mentions), session keys per
//! chat and forum topic, the command menu from `commands/*.toml`, typing indicator,
//! and replies split at 4096 UTF-16 units and sent as plain text (so `*`, `_`, `[`
//! can never make a send fail). The message itself goes through `chat::handle` like
//! every other channel; no Telegram type leaves this module.
//!
//! `/model` alone in a DM answers with an inline keyboard of the allowed models
//! (`picker`). Sends go through a `limiter` that honours Telegram's `retry_after`.

use crate::app::App;
use crate::channels::chunk;
use crate::chat::{Inbound, handle};
use crate::config::TelegramConfig;
use crate::pairing::PairingStore;
use crate::secret::Secret;
use crate::session::key;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;
use teloxide::RequestError;
use teloxide::payloads::{GetUpdatesSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQuery, ChatAction, ChatId, InlineKeyboardButton,
    InlineKeyboardMarkup, Message, ReplyParameters, UpdateKind,
};
use teloxide::{ApiError, Bot};
use tokio::sync::{mpsc, watch};

mod access;
mod limiter;
mod picker;

use access::strip_mention;
pub use access::{Access, access};

/// Long-poll timeout asked of Telegram (teloxide gives up on a request after ~17 s).
const POLL_TIMEOUT_SECS: u32 = 10;
/// A session's worker stops after this long without messages.
const WORKER_IDLE: Duration = Duration::from_secs(600);
/// Sends retried after a 429 before giving up on a message part.
const SEND_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error(
        "Telegram bot token missing: set channels.telegram.botToken, botTokenRef, or TELEGRAM_BOT_TOKEN"
    )]
    NoToken,
    #[error("channels.telegram.botTokenRef: {0}")]
    TokenRef(String),
    #[error("channels.telegram.apiRoot \"{0}\" is not a URL")]
    BadApiRoot(String),
    #[error(
        "Telegram rejected the bot token (401). Check it with @BotFather and update channels.telegram."
    )]
    InvalidToken,
    #[error("Telegram getMe failed: {0}")]
    GetMe(String),
}

/// The bot token from `botToken`, `botTokenRef` or `TELEGRAM_BOT_TOKEN`.
pub async fn token(app: &App, cfg: &TelegramConfig) -> Result<Secret, TelegramError> {
    super::bot_token(
        app,
        cfg.bot_token.as_deref(),
        cfg.bot_token_ref.as_ref(),
        "TELEGRAM_BOT_TOKEN",
    )
    .await
    .map_err(|e| match e {
        super::TokenError::Missing => TelegramError::NoToken,
        super::TokenError::Ref(m) => TelegramError::TokenRef(m),
    })
}

/// An error's text with the bot token taken out: teloxide's network errors quote the
/// request URL, and the token is part of every Bot API URL.
fn describe(e: &RequestError, token: &Secret) -> String {
    token.redact_in(&e.to_string())
}

struct Ctx {
    app: Arc<App>,
    token: Secret,
    cfg: TelegramConfig,
    bot: Bot,
    username: String,
    bot_id: u64,
    pairing: PairingStore,
    /// Per-session workers; `owner` travels with each message (group senders differ).
    workers: DashMap<String, mpsc::UnboundedSender<(Message, bool)>>,
    picker: picker::Picker,
    limiter: limiter::Limiter,
}

/// Run the channel until `shutdown` turns true.
pub async fn run(
    app: Arc<App>,
    cfg: TelegramConfig,
    token: Secret,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let url = reqwest::Url::parse(&cfg.api_root)
        .map_err(|_| TelegramError::BadApiRoot(cfg.api_root.clone()))?;
    let bot = Bot::new(token.expose()).set_api_url(url);
    let me = match bot.get_me().await {
        Ok(me) => me,
        Err(RequestError::Api(ApiError::InvalidToken)) => return Err(TelegramError::InvalidToken),
        Err(e) => return Err(TelegramError::GetMe(describe(&e, &token))),
    };
    let username = me.username().to_string();
    tracing::info!(bot = %username, "Telegram channel connected");
    let pairing = PairingStore::new(app.db.clone(), app.clock.clone());
    let ctx = Arc::new(Ctx {
        app,
        token,
        cfg,
        bot,
        username,
        bot_id: me.id.0,
        pairing,
        workers: DashMap::new(),
        picker: picker::Picker::default(),
        limiter: limiter::Limiter::default(),
    });
    register_commands(&ctx).await;
    let offset_key = format!("telegram:offset:{}", ctx.bot_id);
    let mut offset = load_offset(&ctx.app, &offset_key);
    let mut backoff = Duration::from_secs(1);
    loop {
        let poll = ctx
            .bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT_SECS)
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let result = tokio::select! {
            _ = shutdown.changed() => break,
            r = poll => r,
        };
        match result {
            Ok(updates) => {
                backoff = Duration::from_secs(1);
                for u in updates {
                    offset =
                        offset.max(i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1));
                    match u.kind {
                        UpdateKind::Message(m) => dispatch(&ctx, m),
                        UpdateKind::CallbackQuery(q) => {
                            let ctx = ctx.clone();
                            tokio::spawn(async move { on_button(&ctx, q).await });
                        }
                        _ => {}
                    }
                }
                save_offset(&ctx.app, &offset_key, offset);
            }
            Err(RequestError::RetryAfter(s)) => tokio::time::sleep(s.duration()).await,
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::InvalidToken);
            }
            Err(e) => {
                tracing::warn!(
                    "Telegram getUpdates failed ({}); retrying in {} s",
                    describe(&e, &ctx.token),
                    backoff.as_secs()
                );
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
    tracing::info!("Telegram channel stopped");
    Ok(())
}

fn load_offset(app: &App, key: &str) -> i32 {
    app.db
        .with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
        })
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn save_offset(app: &App, key: &str, offset: i32) {
    let saved = app.db.with(|c| {
        c.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            rusqlite::params![key, offset.to_string()],
        )
    });
    if let Err(e) = saved {
        tracing::warn!("could not store the Telegram update offset: {e}");
    }
}

/// The command menu from `commands/*.toml`, checked against Telegram's limits first;
/// on failure the previous menu stays.
async fn register_commands(ctx: &Ctx) {
    let commands: Vec<BotCommand> = crate::directive::spec::commands()
        .iter()
        .filter(|c| {
            let ok = (1..=32).contains(&c.name.len())
                && c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
                && (1..=256).contains(&c.description.chars().count());
            if !ok {
                tracing::warn!(command = %c.name, "left out of the Telegram menu: outside Telegram's limits");
            }
            ok
        })
        .map(|c| BotCommand::new(c.name.clone(), c.description.clone()))
        .collect();
    if let Err(e) = ctx.bot.set_my_commands(commands).await {
        tracing::warn!(
            "Telegram kept its previous command menu: setMyCommands failed ({})",
            describe(&e, &ctx.token)
        );
    }
}

/// Route a message to its session's worker (one per session keeps arrival order).
fn dispatch(ctx: &Arc<Ctx>, msg: Message) {
    if msg.text().is_none() {
        return;
    }
    let channel = "telegram";
    let approved = |user: i64| {
        ctx.pairing
            .is_approved(channel, &user.to_string())
            .unwrap_or(false)
    };
    match access(&ctx.cfg, &ctx.username, ctx.bot_id, &msg, approved) {
        Access::Ignored => {}
        Access::NeedsPairing => {
            let ctx = ctx.clone();
            tokio::spawn(async move { offer_pairing(&ctx, &msg).await });
        }
        Access::Allowed { session, owner } => {
            // A worker that just went idle has closed its channel: start a fresh one.
            let mut job = (msg, owner);
            loop {
                let sender = ctx
                    .workers
                    .entry(session.clone())
                    .or_insert_with(|| spawn_worker(ctx.clone(), session.clone()))
                    .clone();
                match sender.send(job) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => {
                        ctx.workers
                            .remove_if(&session, |_, tx| tx.same_channel(&sender));
                        job = back;
                    }
                }
            }
        }
    }
}

async fn offer_pairing(ctx: &Ctx, msg: &Message) {
    let Some(from) = msg.from.as_ref() else {
        return;
    };
    let label = from
        .username
        .clone()
        .map(|u| format!("@{u}"))
        .unwrap_or_else(|| from.first_name.clone());
    match ctx
        .pairing
        .request("telegram", &from.id.0.to_string(), Some(&label))
    {
        Ok(r) if r.approved => {}
        Ok(r) if r.fresh => {
            let text = format!(
                "Hi! I don't know you yet. To let you in, the operator of this bot runs:\n\nremoteclaw pairing approve telegram {}\n\nThe code is valid for one hour.",
                r.code
            );
            send_text(ctx, msg.chat.id, &text, None, None).await;
        }
        Ok(_) => {} // a code was sent within the hour: stay quiet
        Err(e) => tracing::warn!("pairing request failed: {e}"),
    }
}

/// A session's worker: answers its messages one at a time, in order, and goes away
/// after `WORKER_IDLE` without messages (a later message starts a new one).
fn spawn_worker(ctx: Arc<Ctx>, session: String) -> mpsc::UnboundedSender<(Message, bool)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Message, bool)>();
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(WORKER_IDLE, rx.recv()).await {
                Ok(Some((msg, owner))) => answer(&ctx, &session, owner, &msg).await,
                Ok(None) => break,
                Err(_) => {
                    // Refuse new messages, then finish any that slipped in.
                    rx.close();
                    while let Ok((msg, owner)) = rx.try_recv() {
                        answer(&ctx, &session, owner, &msg).await;
                    }
                    ctx.workers.remove_if(&session, |_, tx| tx.is_closed());
                    break;
                }
            }
        }
    });
    tx
}

async fn answer(ctx: &Ctx, session: &str, owner: bool, msg: &Message) {
    let text = strip_mention(msg.text().unwrap_or_default(), &ctx.username);
    if text.is_empty() {
        return;
    }
    let chat = msg.chat.id;
    let thread = if msg.is_topic_message {
        msg.thread_id
    } else {
        None
    };
    let bot = ctx.bot.clone();
    let typing = tokio::spawn(async move {
        loop {
            let mut action = bot.send_chat_action(chat, ChatAction::Typing);
            action.message_thread_id = thread;
            let _ = action.await;
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
    });
    let inbound = Inbound {
        session,
        text: &text,
        owner,
        bot_username: Some(&ctx.username),
        agent: ctx.cfg.agent.as_deref(),
    };
    let result = handle(&ctx.app, inbound, None).await;
    typing.abort();
    if result.ignored {
        return;
    }
    let reply = result.reply_text();
    // `/model` alone in a DM: the compact view plus a keyboard of allowed models.
    if msg.chat.is_private()
        && !result.is_error()
        && result.turn.is_none()
        && result.directive.as_ref().is_some_and(|d| d.kind == "show")
    {
        let buttons = ctx.picker.offer(&ctx.app, session, ctx.app.clock.now_ms());
        let markup = InlineKeyboardMarkup::new(
            buttons
                .into_iter()
                .map(|(label, data)| vec![InlineKeyboardButton::callback(label, data)]),
        );
        let mut req = ctx.bot.send_message(chat, &reply).reply_markup(markup);
        req = req.reply_parameters(ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(msg.id)
        });
        if let Err(e) = req.await {
            tracing::warn!(
                chat = chat.0,
                "could not send the model picker: {}",
                describe(&e, &ctx.token)
            );
        }
        return;
    }
    for (i, part) in chunk::split(&reply, chunk::TELEGRAM).iter().enumerate() {
        let reply_to = (i == 0).then_some(msg.id);
        send_text(ctx, chat, part, thread, reply_to).await;
    }
}

/// A button of the model picker: re-check the sender, then apply the choice exactly as
/// the typed `/model <m>` would, and answer in the chat.
async fn on_button(ctx: &Ctx, q: CallbackQuery) {
    let _ = ctx.bot.answer_callback_query(q.id.clone()).await;
    let Some(chat) = q.message.as_ref().map(|m| m.chat().clone()) else {
        return;
    };
    if !chat.is_private() {
        return;
    }
    let user = i64::try_from(q.from.id.0).unwrap_or(i64::MAX);
    let now = ctx.app.clock.now_ms();
    let model = match ctx.picker.take(
        q.data.as_deref().unwrap_or_default(),
        &key::telegram_dm(user),
        now,
    ) {
        picker::Pick::Model(m) => m,
        picker::Pick::Foreign => return, // someone else's menu: nothing to do
        picker::Pick::Expired => {
            send_text(
                ctx,
                chat.id,
                "That menu has expired. Send /model again for a fresh one.",
                None,
                None,
            )
            .await;
            return;
        }
    };
    let approved = || {
        ctx.pairing
            .is_approved("telegram", &user.to_string())
            .unwrap_or(false)
    };
    if !ctx
        .cfg
        .dm_policy
        .admits(ctx.cfg.allow_from.contains(&user), approved)
    {
        return;
    }
    let owner = access::is_owner(&ctx.cfg, user);
    let text = format!("/model {model}");
    let session = key::telegram_dm(user);
    let result = handle(
        &ctx.app,
        Inbound {
            session: &session,
            text: &text,
            owner,
            bot_username: Some(&ctx.username),
            agent: ctx.cfg.agent.as_deref(),
        },
        None,
    )
    .await;
    send_text(ctx, chat.id, &result.reply_text(), None, None).await;
}

/// Send one message part, honouring `retry_after` on 429; logged (without content) when
/// it cannot be delivered.
async fn send_text(
    ctx: &Ctx,
    chat: ChatId,
    text: &str,
    thread: Option<teloxide::types::ThreadId>,
    reply_to: Option<teloxide::types::MessageId>,
) {
    for attempt in 1..=SEND_ATTEMPTS {
        ctx.limiter.wait(chat.0).await;
        let mut req = ctx.bot.send_message(chat, text);
        if let Some(t) = thread {
            req = req.message_thread_id(t);
        }
        if let Some(id) = reply_to {
            req = req.reply_parameters(ReplyParameters {
                allow_sending_without_reply: Some(true),
                ..ReplyParameters::new(id)
            });
        }
        match req.await {
            Ok(_) => return,
            Err(RequestError::RetryAfter(s)) if attempt < SEND_ATTEMPTS => {
                ctx.limiter.back_off(chat.0, s.duration());
            }
            Err(e) => {
                tracing::warn!(
                    chat = chat.0,
                    "could not send a reply to Telegram: {}",
                    describe(&e, &ctx.token)
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped_case_insensitively() {
        assert_eq!(
            strip_mention("@MyBot  what is rust?", "mybot"),
            "what is rust?"
        );
        assert_eq!(
            strip_mention("/model@MyBot list", "MyBot"),
            "/model@MyBot list"
        );
    }
}
