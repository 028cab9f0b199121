//! Bot API calls whose answer the channel reads only as far as it needs it.
//!
//! `sendMessage` and `editMessageText` answer with the whole `Message` (sender, chat,
//! entities, the replied-to message…). Through teloxide's request path that answer costs
//! twice: teloxide first copies the whole body into a generic tree (its answer type is an
//! untagged enum, ~55,000 instructions per reply), then reads a `Message`, which tries
//! each media kind in turn (~80,000 more). Together that was about a quarter of the CPU
//! a Telegram turn costs (callgrind, `benches/telegram_load.rs`), for a message id.
//!
//! So these calls send teloxide's own payload, as teloxide would (the same bot's HTTP
//! client, URL, method name and JSON body), and read the answer straight into a small
//! struct: the new message's id, or nothing for an edit. What an error answer means is
//! decided exactly as teloxide decides it: `parameters` first (`retry_after` →
//! [`RequestError::RetryAfter`], `migrate_to_chat_id`), else `description` as teloxide's
//! [`ApiError`] ("message is not modified", "can't parse entities", …); an answer that is
//! neither is [`RequestError::InvalidJson`] with the raw text, which
//! [`super::lenient::readable`] can still read.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::sync::Arc;
use std::time::Duration;
use teloxide::payloads;
use teloxide::requests::Payload;
use teloxide::types::{MessageId, ResponseParameters};
use teloxide::{ApiError, Bot, RequestError};

/// teloxide waits this long before reading a 5xx answer (`DELAY_ON_SERVER_ERROR`);
/// kept, so a struggling Bot API is not hit harder through this path.
const DELAY_ON_SERVER_ERROR: Duration = Duration::from_secs(10);

/// `sendMessage`, answered with the new message's id.
pub async fn send(bot: &Bot, payload: payloads::SendMessage) -> Result<MessageId, RequestError> {
    call(bot, &payload).await
}

/// `editMessageText`; its answer (the edited message) is not read.
pub async fn edit(bot: &Bot, payload: payloads::EditMessageText) -> Result<(), RequestError> {
    call::<_, IgnoredAny>(bot, &payload).await.map(|_| ())
}

async fn call<P, O>(bot: &Bot, payload: &P) -> Result<O, RequestError>
where
    P: Payload + serde::Serialize,
    O: DeserializeOwned,
{
    let body = serde_json::to_vec(payload).map_err(|e| RequestError::InvalidJson {
        source: Arc::new(e),
        raw: "".into(),
    })?;
    let response = bot
        .client()
        .post(method_url(bot, P::NAME))
        .header(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        )
        .body(body)
        .send()
        .await
        .map_err(RequestError::from)?;
    if response.status().is_server_error() {
        tokio::time::sleep(DELAY_ON_SERVER_ERROR).await;
    }
    let text = response.text().await.map_err(RequestError::from)?;
    read(text)
}

/// `{api_url}/bot{token}/{method}`, built exactly as teloxide builds it for every other
/// call of the bot (`getUpdates` included), so both go to the same place.
fn method_url(bot: &Bot, method: &str) -> reqwest::Url {
    let mut url = bot.api_url();
    if let Ok(mut path) = url.path_segments_mut() {
        path.push(&format!("bot{}", bot.token()));
        path.push(method);
    }
    url
}

/// A Bot API answer: `{"ok": true, "result": …}` or `{"ok": false, "description": …,
/// "parameters": …}`.
#[derive(Deserialize)]
struct Answer<O> {
    ok: bool,
    result: Option<O>,
    description: Option<ApiError>,
    parameters: Option<ResponseParameters>,
}

fn read<O: DeserializeOwned>(text: String) -> Result<O, RequestError> {
    let invalid = |source: serde_json::Error, text: String| RequestError::InvalidJson {
        source: Arc::new(source),
        raw: text.into(),
    };
    let answer: Answer<O> = match serde_json::from_str(&text) {
        Ok(a) => a,
        Err(e) => return Err(invalid(e, text)),
    };
    match answer {
        Answer {
            ok: true,
            result: Some(result),
            ..
        } => Ok(result),
        Answer {
            ok: false,
            description: Some(error),
            parameters,
            ..
        } => Err(match parameters {
            Some(ResponseParameters::RetryAfter(s)) => RequestError::RetryAfter(s),
            Some(ResponseParameters::MigrateToChatId(to)) => RequestError::MigrateToChatId(to),
            None => RequestError::Api(error),
        }),
        Answer { ok, .. } => {
            let what = if ok {
                "an answer with \"ok\": true has no \"result\""
            } else {
                "an answer with \"ok\": false has no \"description\""
            };
            Err(invalid(serde::de::Error::custom(what), text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::{ChatId, ParseMode, ReplyParameters, Seconds, ThreadId};

    #[test]
    fn the_payload_goes_out_in_the_bot_api_shape() {
        let mut p = payloads::SendMessage::new(ChatId(42), "<b>hi</b>");
        p.parse_mode = Some(ParseMode::Html);
        p.message_thread_id = Some(ThreadId(MessageId(7)));
        p.reply_parameters = Some(ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(MessageId(5))
        });
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({
                "chat_id": 42, "text": "<b>hi</b>", "parse_mode": "HTML",
                "message_thread_id": 7,
                "reply_parameters": {"message_id": 5, "allow_sending_without_reply": true},
            })
        );
    }

    #[test]
    fn the_method_url_is_teloxides() {
        let bot =
            Bot::new("123:abc").set_api_url(reqwest::Url::parse("http://127.0.0.1:9/tg").unwrap());
        assert_eq!(
            method_url(&bot, <payloads::SendMessage as Payload>::NAME).as_str(),
            "http://127.0.0.1:9/tg/bot123:abc/SendMessage"
        );
        let bot = Bot::new("123:abc");
        assert_eq!(
            method_url(&bot, <payloads::EditMessageText as Payload>::NAME).as_str(),
            "https://api.telegram.org/bot123:abc/EditMessageText"
        );
    }

    #[test]
    fn a_whole_message_reads_as_its_id() {
        let answer = serde_json::json!({"ok": true, "result": {
            "message_id": 7, "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "A"},
            "from": {"id": 1, "is_bot": true, "first_name": "Bot"},
            "text": "hi", "entities": [{"type": "bold", "offset": 0, "length": 2}],
        }});
        let id: MessageId = read(answer.to_string()).unwrap();
        assert_eq!(id, MessageId(7));
        let _: IgnoredAny = read(answer.to_string()).unwrap();
        // editMessageText of an inline message answers `true`.
        let _: IgnoredAny = read(r#"{"ok":true,"result":true}"#.into()).unwrap();
    }

    #[test]
    fn error_answers_mean_what_they_mean_to_teloxide() {
        let err = |text: &str| read::<MessageId>(text.to_string()).unwrap_err();
        assert!(matches!(
            err(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#),
            RequestError::RetryAfter(s) if s == Seconds::from_seconds(7)
        ));
        assert!(matches!(
            err(
                r#"{"ok":false,"description":"this string is ignored","parameters":{"migrate_to_chat_id":123456}}"#
            ),
            RequestError::MigrateToChatId(ChatId(123456))
        ));
        assert!(matches!(
            err(
                r#"{"ok":false,"error_code":400,"description":"Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}"#
            ),
            RequestError::Api(ApiError::MessageNotModified)
        ));
        assert!(matches!(
            err(
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#
            ),
            RequestError::Api(ApiError::BotBlocked)
        ));
        assert!(matches!(
            err(
                r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"}"#
            ),
            RequestError::Api(ApiError::CantParseEntities(_))
        ));
        assert!(matches!(
            err(r#"{"ok":false,"error_code":400,"description":"Bad Request: something new"}"#),
            RequestError::Api(ApiError::Unknown(m)) if m == "Bad Request: something new"
        ));
        // Unreadable answers keep their text (for `lenient::readable`).
        for raw in [
            "<html>502 Bad Gateway</html>",
            r#"{"ok":true}"#,
            r#"{"ok":false,"error_code":500}"#,
            r#"{"ok":false,"description":"Too Many Requests","parameters":{"retry_after":99999999999}}"#,
            r#"{"ok":true,"result":{"date":1}}"#,
        ] {
            assert!(
                matches!(err(raw), RequestError::InvalidJson { raw: r, .. } if &*r == raw),
                "{raw}"
            );
        }
        // The oversized retry_after is still a 429 after the lenient reading.
        assert!(matches!(
            super::super::lenient::readable(err(
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":99999999999}}"#
            )),
            RequestError::RetryAfter(_)
        ));
    }
}
