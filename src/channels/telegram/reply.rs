//! Answering on Telegram: one message through `chat::handle` (typing indicator, the
//! reply streamed into the chat as Telegram HTML by `channels::stream` and `live`, the
//! model picker for `/model` in a DM), a pairing code for unknown senders, a pressed
//! picker button, and every send through the 429 limiter.

use super::{Ctx, describe, live, media, mention::strip_mention, picker};
use crate::channels::stream::{self, Mode};
use crate::chat::{Inbound, handle_limited};
use crate::config::Streaming;
use crate::session::key;
use std::time::Duration;
use teloxide::RequestError;
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQuery, ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Message,
    MessageId, ReplyParameters, ThreadId,
};

/// Sends retried after a 429 before giving up on a message part.
const SEND_ATTEMPTS: usize = 5;
pub use crate::channels::TYPING_AFTER;
/// Telegram shows "typing…" for about 5 s; it is sent again this often.
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// The forum topic a message belongs to (replies go there too).
pub fn thread_of(msg: &Message) -> Option<ThreadId> {
    if msg.is_topic_message {
        msg.thread_id
    } else {
        None
    }
}

/// Answer one allowed message in its session, with the rest of its album (`media`).
pub async fn answer(ctx: &Ctx, session: &str, owner: bool, msg: &Message, album: &[&Message]) {
    let cfg = ctx.cfg();
    let text = strip_mention(&media::text_of(msg, album), &ctx.username);
    if text.is_empty() && !media::has_files(msg, album) {
        return;
    }
    let chat = msg.chat.id;
    let thread = thread_of(msg);
    let bot = ctx.bot.clone();
    let typing = crate::channels::Beside::spawn(async move {
        tokio::time::sleep(TYPING_AFTER).await;
        loop {
            let mut action = bot.send_chat_action(chat, ChatAction::Typing);
            action.message_thread_id = thread;
            let _ = action.await;
            tokio::time::sleep(TYPING_EVERY).await;
        }
    });
    // The message this one replies to goes to the model with it (DESIGN §10).
    let quoted = msg
        .reply_to_message()
        .and_then(|r| r.text().or_else(|| r.caption()));
    // Photos and files, downloaded and checked; the person hears about any refused.
    let gathered = media::gather(ctx, msg, album).await;
    if let Some(notice) = gathered.notice() {
        send_text(ctx, chat, &notice, thread, Some(msg.id)).await;
    }
    if !gathered.answer(&text) {
        typing.abort();
        return;
    }
    let inbound = Inbound {
        session,
        text: &text,
        owner,
        bot_username: Some(&ctx.username),
        agent: cfg.agent.as_deref(),
        system_prompt: cfg.prompt_for(chat.0),
        attachments: &gathered.attachments,
        quoted,
    };
    let mode = match cfg.streaming {
        Streaming::Off => None,
        Streaming::Draft if msg.chat.is_private() => Some(Mode::Draft),
        Streaming::Draft | Streaming::Edit => Some(Mode::Edit),
    };
    let surface = live::Chat {
        ctx,
        chat,
        thread,
        reply_to: Some(msg.id),
        draft_id: u32::try_from(msg.id.0)
            .ok()
            .filter(|d| *d != 0)
            .unwrap_or(1),
    };
    let style = stream::Style {
        mode,
        interval: crate::config::types::stream_interval(cfg.stream_interval_ms),
    };
    // `/model` alone in a DM: the compact view plus a keyboard of allowed models.
    let picker = |result: &crate::chat::ChatResult| {
        msg.chat.is_private()
            && !result.is_error()
            && result.turn.is_none()
            && result.directive.as_ref().is_some_and(|d| d.kind == "show")
    };
    let (result, stats) = stream::answer(&ctx.app, inbound, &surface, style, |result| {
        typing.abort();
        (!result.ignored && !picker(result)).then(|| stream::Final::of(result))
    })
    .await;
    tracing::debug!(chat = chat.0, ?stats, "reply delivered");
    if !result.ignored && picker(&result) {
        offer_models(ctx, session, msg, &result.reply_text()).await;
    }
}

/// The compact `/model` view with a keyboard of the allowed models.
async fn offer_models(ctx: &Ctx, session: &str, msg: &Message, reply: &str) {
    let chat = msg.chat.id;
    let buttons = ctx.picker.offer(&ctx.app, session, ctx.app.clock.now_ms());
    let markup = InlineKeyboardMarkup::new(
        buttons
            .into_iter()
            .map(|(label, data)| vec![InlineKeyboardButton::callback(label, data)]),
    );
    let req = ctx
        .bot
        .send_message(chat, reply)
        .reply_markup(markup)
        .reply_parameters(ReplyParameters {
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
}

/// An unknown DM sender under `dmPolicy = "pairing"`: a code, at most one an hour.
pub async fn offer_pairing(ctx: &Ctx, msg: &Message) {
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
        .await
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

/// A button of the model picker: re-check the sender, then apply the choice exactly as
/// the typed `/model <m>` would, and answer in the chat.
pub async fn on_button(ctx: &Ctx, q: CallbackQuery) {
    let cfg = ctx.cfg();
    // A query replayed after a restart is too old to answer: that is fine.
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
    let listed = cfg.allow_from.contains(&user);
    let approved = if listed || cfg.dm_policy != crate::config::DmPolicy::Pairing {
        false
    } else {
        ctx.pairing
            .is_approved("telegram", &user.to_string())
            .await
            .unwrap_or(false)
    };
    if !cfg.dm_policy.admits(listed, || approved) {
        return;
    }
    let owner = super::access::is_owner(&cfg, user);
    let text = format!("/model {model}");
    let session = key::telegram_dm(user);
    let result = handle_limited(
        &ctx.app,
        Inbound {
            session: &session,
            text: &text,
            owner,
            bot_username: Some(&ctx.username),
            agent: cfg.agent.as_deref(),
            system_prompt: None,
            attachments: &[],
            quoted: None,
        },
        None,
    )
    .await;
    send_text(ctx, chat.id, &result.reply_text(), None, None).await;
}

/// Send one message part, honouring `retry_after` on 429; logged (without content) when
/// it cannot be delivered.
pub async fn send_text(
    ctx: &Ctx,
    chat: ChatId,
    text: &str,
    thread: Option<ThreadId>,
    reply_to: Option<MessageId>,
) {
    for attempt in 1..=SEND_ATTEMPTS {
        ctx.limiter.wait(chat.0).await;
        let mut p = teloxide::payloads::SendMessage::new(chat, text);
        p.message_thread_id = thread;
        p.reply_parameters = reply_to.map(|id| ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(id)
        });
        match super::lean::send(&ctx.bot, p)
            .await
            .map_err(super::lenient::readable)
        {
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
