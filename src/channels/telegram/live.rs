//! Writing a reply into one Telegram chat (DESIGN §10): the [`Surface`] the streaming
//! presenter drives. Text is the model's Markdown rendered to Telegram HTML and cut at
//! 4096 UTF-16 units with tags balanced (`format`); every send, edit and draft waits for
//! the bot's 429 limiter and reports a `retry_after` back to it. When Telegram refuses the
//! formatting (400 "can't parse entities"), the same part is written again without
//! `parse_mode` — its text with the formatting removed — in place of the refused write,
//! so the chat shows it once.
//!
//! `sendMessageDraft` is newer than teloxide's method list, so it goes as a custom JSON
//! payload through the same bot's client.

use super::{Ctx, describe, lean};
use crate::channels::chunk;
use crate::channels::stream::{Failure, Surface};
use crate::format::{html_chunk, telegram_html};
use serde::Serialize;
use teloxide::payloads;
use teloxide::prelude::Requester;
use teloxide::requests::{JsonRequest, Payload};
use teloxide::types::{ChatId, MessageId, ParseMode, ReplyParameters, ThreadId, True};
use teloxide::{ApiError, RequestError};

/// The reply to one message, in one chat (and forum topic).
pub(super) struct Chat<'a> {
    pub ctx: &'a Ctx,
    pub chat: ChatId,
    pub thread: Option<ThreadId>,
    /// The message the first part answers (shown as a reply to it).
    pub reply_to: Option<MessageId>,
    /// The draft's id (non-zero): one per reply, so its changes animate.
    pub draft_id: u32,
}

/// Bot API `sendMessageDraft` (not in teloxide 0.17).
#[derive(Debug, Clone, Serialize)]
struct SendMessageDraft {
    chat_id: ChatId,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_thread_id: Option<ThreadId>,
    draft_id: u32,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_mode: Option<ParseMode>,
}

impl Payload for SendMessageDraft {
    type Output = True;
    const NAME: &'static str = "SendMessageDraft";
}

/// Whether a write is tried with formatting or as the plain text of the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Markup {
    Html,
    Plain,
}

impl Markup {
    fn text(self, part: &str) -> String {
        match self {
            Markup::Html => part.to_string(),
            Markup::Plain => telegram_html::plain(part),
        }
    }
}

/// Telegram refused the part's entities (malformed or unsupported HTML).
fn cannot_parse(e: &RequestError) -> bool {
    matches!(e, RequestError::Api(ApiError::CantParseEntities(_)))
        || matches!(e, RequestError::Api(ApiError::Unknown(m)) if m.contains("can't parse entities"))
}

impl Chat<'_> {
    /// Telegram answered 429: this chat's limiter pauses, and the presenter hears how
    /// long (both clamp the hint to 24 h).
    fn limited(&self, retry_after: std::time::Duration) -> Failure {
        self.ctx.limiter.back_off(self.chat.0, retry_after);
        Failure::RetryAfter(retry_after)
    }

    /// Run `write` with HTML, then once more as plain text if Telegram cannot parse it.
    async fn write<T, F, Fut>(&self, part: &str, what: &str, write: F) -> Result<T, Failure>
    where
        F: Fn(String, Markup) -> Fut,
        Fut: IntoFuture<Output = Result<T, RequestError>>,
    {
        let mut markup = Markup::Html;
        loop {
            self.ctx.limiter.wait(self.chat.0).await;
            match write(markup.text(part), markup)
                .await
                .map_err(super::lenient::readable)
            {
                Ok(v) => return Ok(v),
                Err(e) if markup == Markup::Html && cannot_parse(&e) => {
                    tracing::warn!(
                        chat = self.chat.0,
                        "Telegram could not parse the formatting of a reply part ({}); writing it again as plain text",
                        describe(&e, &self.ctx.token)
                    );
                    markup = Markup::Plain;
                }
                Err(RequestError::RetryAfter(s)) => return Err(self.limited(s.duration())),
                Err(e) => {
                    return Err(Failure::Refused(format!(
                        "could not {what} on Telegram: {}",
                        describe(&e, &self.ctx.token)
                    )));
                }
            }
        }
    }
}

fn parse_mode(m: Markup) -> Option<ParseMode> {
    (m == Markup::Html).then_some(ParseMode::Html)
}

impl Surface for Chat<'_> {
    type Id = MessageId;

    fn parts(&self, text: &str) -> Vec<String> {
        html_chunk::split(&telegram_html::render(text), chunk::TELEGRAM)
    }

    fn literal_parts(&self, text: &str) -> Vec<String> {
        html_chunk::split(&telegram_html::literal(text), chunk::TELEGRAM)
    }

    fn literal_markdown(&self, text: &str) -> String {
        telegram_html::markdown_literal(text)
    }

    async fn send(&self, index: usize, part: &str) -> Result<MessageId, Failure> {
        let reply_to = if index == 0 { self.reply_to } else { None };
        let sent = self
            .write(part, "send a reply", |text, markup| {
                let mut p = payloads::SendMessage::new(self.chat, text);
                p.parse_mode = parse_mode(markup);
                p.message_thread_id = self.thread;
                p.reply_parameters = reply_to.map(|id| ReplyParameters {
                    allow_sending_without_reply: Some(true),
                    ..ReplyParameters::new(id)
                });
                lean::send(&self.ctx.bot, p)
            })
            .await?;
        Ok(sent)
    }

    async fn edit(&self, id: &MessageId, part: &str) -> Result<(), Failure> {
        self.write(part, "edit a reply", |text, markup| {
            let mut p = payloads::EditMessageText::new(self.chat, *id, text);
            p.parse_mode = parse_mode(markup);
            let req = lean::edit(&self.ctx.bot, p);
            async move {
                match req.await {
                    Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
                    other => other.map(|_| ()),
                }
            }
        })
        .await
    }

    async fn delete(&self, id: &MessageId) -> Result<(), Failure> {
        self.ctx.limiter.wait(self.chat.0).await;
        match self
            .ctx
            .bot
            .delete_message(self.chat, *id)
            .await
            .map_err(super::lenient::readable)
        {
            Ok(_) => Ok(()),
            Err(RequestError::RetryAfter(s)) => Err(self.limited(s.duration())),
            Err(e) => Err(Failure::Refused(format!(
                "could not delete a streamed part on Telegram: {}",
                describe(&e, &self.ctx.token)
            ))),
        }
    }

    async fn draft(&self, part: &str) -> Result<(), Failure> {
        self.write(part, "update the reply draft", |text, markup| {
            let payload = SendMessageDraft {
                chat_id: self.chat,
                message_thread_id: self.thread,
                draft_id: self.draft_id,
                text,
                parse_mode: parse_mode(markup),
            };
            JsonRequest::new(self.ctx.bot.clone(), payload)
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draft_payload_is_the_bot_api_shape() {
        let p = SendMessageDraft {
            chat_id: ChatId(42),
            message_thread_id: None,
            draft_id: 7,
            text: "<b>hi</b>".into(),
            parse_mode: Some(ParseMode::Html),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"chat_id": 42, "draft_id": 7, "text": "<b>hi</b>", "parse_mode": "HTML"})
        );
    }

    #[test]
    fn both_forms_of_the_entities_error_count_as_a_parse_refusal() {
        let e = RequestError::Api(ApiError::CantParseEntities(
            "Bad Request: can't parse entities: Unsupported start tag \"x\"".into(),
        ));
        assert!(cannot_parse(&e));
        let e = RequestError::Api(ApiError::Unknown(
            "Bad Request: can't parse entities: unclosed".into(),
        ));
        assert!(cannot_parse(&e));
        assert!(!cannot_parse(&RequestError::Api(
            ApiError::MessageNotModified
        )));
    }
}
