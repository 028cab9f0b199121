//! Bot API calls whose answer the channel reads only as far as it needs it.
//!
//! `sendMessage` and `editMessageText` answer with the whole `Message` (sender, chat,
//! entities, the replied-to message…). teloxide reads it into its `Message` type, which
//! tries each media kind in turn: about 80,000 instructions per answer, a tenth of the
//! CPU a Telegram turn costs (callgrind, `benches/telegram_load.rs`). The channel needs
//! only the new message's id (to edit it while streaming) or nothing at all, so these
//! calls send teloxide's own payload and read the answer as [`MessageId`] or
//! [`IgnoredAny`]. Errors (`ok: false`, `retry_after`, "message is not modified") are
//! read exactly as before: only the `result` type differs.

use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::marker::PhantomData;
use teloxide::Bot;
use teloxide::payloads;
use teloxide::requests::{JsonRequest, Payload};
use teloxide::types::MessageId;

/// Payload `P` sent as it is, its answer read as `O`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Lean<P, O> {
    payload: P,
    #[serde(skip)]
    answer: PhantomData<fn() -> O>,
}

impl<P: Payload, O> Payload for Lean<P, O> {
    type Output = O;
    const NAME: &'static str = P::NAME;

    fn timeout_hint(&self) -> Option<std::time::Duration> {
        self.payload.timeout_hint()
    }
}

fn request<P, O>(bot: &Bot, payload: P) -> JsonRequest<Lean<P, O>>
where
    P: Payload + Serialize + 'static,
    O: DeserializeOwned + 'static,
{
    JsonRequest::new(
        bot.clone(),
        Lean {
            payload,
            answer: PhantomData,
        },
    )
}

/// `sendMessage`, answered with the new message's id.
pub fn send(
    bot: &Bot,
    payload: payloads::SendMessage,
) -> JsonRequest<Lean<payloads::SendMessage, MessageId>> {
    request(bot, payload)
}

/// `getUpdates`, each update read by [`super::plain`] (a plain text message without
/// teloxide's general reader, anything else with it).
pub fn updates(
    bot: &Bot,
    payload: payloads::GetUpdates,
) -> JsonRequest<Lean<payloads::GetUpdates, Vec<super::plain::Polled>>> {
    request(bot, payload)
}

/// `editMessageText`; its answer (the edited message) is not read.
pub fn edit(
    bot: &Bot,
    payload: payloads::EditMessageText,
) -> JsonRequest<Lean<payloads::EditMessageText, IgnoredAny>> {
    request(bot, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::{ChatId, ParseMode, ReplyParameters, ThreadId};

    #[test]
    fn the_payload_goes_out_in_the_bot_api_shape() {
        let mut p = payloads::SendMessage::new(ChatId(42), "<b>hi</b>");
        p.parse_mode = Some(ParseMode::Html);
        p.message_thread_id = Some(ThreadId(MessageId(7)));
        p.reply_parameters = Some(ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(MessageId(5))
        });
        let lean: Lean<_, MessageId> = Lean {
            payload: p,
            answer: PhantomData,
        };
        assert_eq!(
            serde_json::to_value(&lean).unwrap(),
            serde_json::json!({
                "chat_id": 42, "text": "<b>hi</b>", "parse_mode": "HTML",
                "message_thread_id": 7,
                "reply_parameters": {"message_id": 5, "allow_sending_without_reply": true},
            })
        );
        assert_eq!(
            <Lean<payloads::SendMessage, MessageId> as Payload>::NAME,
            "SendMessage"
        );
        assert_eq!(
            <Lean<payloads::EditMessageText, IgnoredAny> as Payload>::NAME,
            "EditMessageText"
        );
    }

    #[test]
    fn a_whole_message_reads_as_its_id() {
        let message = serde_json::json!({
            "message_id": 7, "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "A"},
            "from": {"id": 1, "is_bot": true, "first_name": "Bot"},
            "text": "hi", "entities": [{"type": "bold", "offset": 0, "length": 2}],
        });
        let id: MessageId = serde_json::from_value(message).unwrap();
        assert_eq!(id, MessageId(7));
    }
}
