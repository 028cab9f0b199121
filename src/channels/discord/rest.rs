//! Replies over Discord's REST API: channel messages, the edit of an interaction's
//! original response, and follow-ups. Each part is sent exactly once: a 429 means it
//! was not delivered, so it goes again after the `retry_after` the 429 carries (its JSON
//! body, seconds as a float; else the `Retry-After` header). That also holds behind a
//! custom `apiBase`, where serenity's ratelimiter is off and serenity's own error type
//! drops the 429 body (it has no `code` field, so serenity cannot decode it). Requests
//! are built by serenity (`Request` + `Route`: URL, proxy base, token header) and sent
//! on the same reqwest client serenity uses, through serenity's ratelimiter when it is
//! on. A hint above [`MAX_WAIT`] is not waited for: the part is given up, logged.

use serenity::all::{ApplicationId, ChannelId, Http, LightMethod, MessageId, Request, Route};
use std::time::Duration;

/// The longest 429 pause this channel waits for before giving a part up.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(60);
/// Tries per part (the first send and the resends after 429s).
const MAX_ATTEMPTS: u32 = 5;
/// How much of an error body is read (they are small JSON objects).
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error(
        "Discord asked to wait {0:.1} s before sending again (429), longer than the {max} s this bot waits: the part was not sent",
        max = MAX_WAIT.as_secs()
    )]
    WaitTooLong(f64),
    #[error(
        "Discord still answered 429 (rate limited) after {MAX_ATTEMPTS} tries: the part was not sent"
    )]
    StillLimited,
    #[error("Discord refused the request with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("could not reach Discord: {0}")]
    Transport(String),
}

/// What to do after a 429.
#[derive(Debug, PartialEq)]
pub(super) enum After429 {
    Wait(Duration),
    GiveUp(f64),
}

/// The pause a 429 asks for, in seconds: `retry_after` of the JSON body, else the
/// `Retry-After` header. Values that are not finite non-negative numbers are ignored.
pub(super) fn retry_hint(body: &[u8], header: Option<&str>) -> Option<f64> {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    let from_header = || header.and_then(|h| h.trim().parse::<f64>().ok());
    from_body
        .filter(|s| s.is_finite() && *s >= 0.0)
        .or_else(|| from_header().filter(|s| s.is_finite() && *s >= 0.0))
}

/// The pause before try `attempt + 1`: the hint when there is one (up to [`MAX_WAIT`]),
/// else 1 s, 2 s, 4 s, …
pub(super) fn after_429(hint: Option<f64>, attempt: u32) -> After429 {
    match hint {
        Some(s) if s > MAX_WAIT.as_secs_f64() => After429::GiveUp(s),
        // In range [0, MAX_WAIT]: cannot panic.
        Some(s) => After429::Wait(Duration::from_secs_f64(s)),
        None => After429::Wait(Duration::from_secs(
            1u64 << attempt.saturating_sub(1).min(6),
        )),
    }
}

/// The `message` of a Discord error body, shortened; never the raw body.
fn error_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "(no error message)".into());
    message.chars().take(200).collect()
}

/// Sends replies; holds the reqwest client that serenity's `Http` was built with.
#[derive(Clone, Debug)]
pub(super) struct Rest {
    client: reqwest::Client,
}

impl Rest {
    pub(super) fn new(client: reqwest::Client) -> Rest {
        Rest { client }
    }

    /// Post `text` in a channel; the new message's id.
    pub(super) async fn post_message(
        &self,
        http: &Http,
        channel: ChannelId,
        text: &str,
    ) -> Result<MessageId, SendError> {
        let route = Route::ChannelMessages {
            channel_id: channel,
        };
        let body = content(text);
        let sent = self
            .send(http, route, LightMethod::Post, Some(&body))
            .await?;
        message_id(&sent)
    }

    /// Replace the content of a message the bot posted.
    pub(super) async fn edit_message(
        &self,
        http: &Http,
        channel: ChannelId,
        message: MessageId,
        text: &str,
    ) -> Result<(), SendError> {
        let route = Route::ChannelMessage {
            channel_id: channel,
            message_id: message,
        };
        let body = content(text);
        self.send(http, route, LightMethod::Patch, Some(&body))
            .await?;
        Ok(())
    }

    /// Replace the content of an interaction's (deferred) original response.
    pub(super) async fn edit_original(
        &self,
        http: &Http,
        application_id: ApplicationId,
        token: &str,
        text: &str,
    ) -> Result<(), SendError> {
        let route = Route::WebhookOriginalInteractionResponse {
            application_id,
            token,
        };
        let body = content(text);
        self.send(http, route, LightMethod::Patch, Some(&body))
            .await?;
        Ok(())
    }

    /// A follow-up message of an interaction; its id.
    pub(super) async fn followup(
        &self,
        http: &Http,
        application_id: ApplicationId,
        token: &str,
        text: &str,
        ephemeral: bool,
    ) -> Result<MessageId, SendError> {
        let route = Route::WebhookFollowupMessages {
            application_id,
            token,
        };
        let mut body = content(text);
        if ephemeral {
            body["flags"] = serde_json::json!(64);
        }
        let sent = self
            .send(http, route, LightMethod::Post, Some(&body))
            .await?;
        message_id(&sent)
    }

    /// Replace the content of a follow-up message.
    pub(super) async fn edit_followup(
        &self,
        http: &Http,
        application_id: ApplicationId,
        token: &str,
        message: MessageId,
        text: &str,
    ) -> Result<(), SendError> {
        let route = Route::WebhookFollowupMessage {
            application_id,
            token,
            message_id: message,
        };
        let body = content(text);
        self.send(http, route, LightMethod::Patch, Some(&body))
            .await?;
        Ok(())
    }

    /// Delete a message the bot posted in a channel.
    pub(super) async fn delete_message(
        &self,
        http: &Http,
        channel: ChannelId,
        message: MessageId,
    ) -> Result<(), SendError> {
        let route = Route::ChannelMessage {
            channel_id: channel,
            message_id: message,
        };
        self.send(http, route, LightMethod::Delete, None).await?;
        Ok(())
    }

    /// Delete a follow-up message of an interaction.
    pub(super) async fn delete_followup(
        &self,
        http: &Http,
        application_id: ApplicationId,
        token: &str,
        message: MessageId,
    ) -> Result<(), SendError> {
        let route = Route::WebhookFollowupMessage {
            application_id,
            token,
            message_id: message,
        };
        self.send(http, route, LightMethod::Delete, None).await?;
        Ok(())
    }

    async fn send(
        &self,
        http: &Http,
        route: Route<'_>,
        method: LightMethod,
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, SendError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let request = Request::new(route, method).body(bytes);
        for attempt in 1..=MAX_ATTEMPTS {
            let response = self.execute(http, request.clone()).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(read_capped(response).await);
            }
            let header = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = read_capped(response).await;
            if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(SendError::Refused {
                    status: status.as_u16(),
                    message: error_message(&body),
                });
            }
            if attempt == MAX_ATTEMPTS {
                break;
            }
            match after_429(retry_hint(&body, header.as_deref()), attempt) {
                After429::Wait(pause) => {
                    tracing::debug!(
                        pause_ms = pause.as_millis() as u64,
                        "Discord answered 429: sending the part again after the pause it asked for"
                    );
                    tokio::time::sleep(pause).await;
                }
                After429::GiveUp(secs) => return Err(SendError::WaitTooLong(secs)),
            }
        }
        Err(SendError::StillLimited)
    }

    /// One HTTP exchange, through serenity's ratelimiter when it is on (default base).
    async fn execute(
        &self,
        http: &Http,
        request: Request<'_>,
    ) -> Result<reqwest::Response, SendError> {
        if let Some(limiter) = &http.ratelimiter {
            return limiter.perform(request).await.map_err(describe);
        }
        let built = request
            .build(&self.client, http.token(), http.proxy.as_deref())
            .map_err(describe)?
            .build()
            .map_err(|e| SendError::Transport(e.without_url().to_string()))?;
        self.client
            .execute(built)
            .await
            .map_err(|e| SendError::Transport(e.without_url().to_string()))
    }
}

/// A message body: `text`, with every mention shown as text, never a ping (a reply that
/// quotes `@everyone` or a user id must not notify anyone).
fn content(text: &str) -> serde_json::Value {
    serde_json::json!({ "content": text, "allowed_mentions": { "parse": [] } })
}

/// The `id` of the message object Discord answered with.
fn message_id(body: &[u8]) -> Result<MessageId, SendError> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id")?.as_str()?.parse::<u64>().ok())
        .filter(|id| *id != 0)
        .map(MessageId::new)
        .ok_or_else(|| SendError::Transport("Discord answered without a message id".into()))
}

/// A serenity error as text, without the URL (webhook URLs carry interaction tokens).
fn describe(e: serenity::Error) -> SendError {
    SendError::Transport(match e {
        serenity::Error::Http(serenity::all::HttpError::Request(r)) => r.without_url().to_string(),
        other => other.to_string(),
    })
}

/// At most [`MAX_ERROR_BODY`] bytes of a body (errors and message objects are small);
/// what could be read on a read error.
async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_comes_from_the_body_then_the_header() {
        let cases: &[(&str, Option<&str>, Option<f64>)] = &[
            (
                r#"{"message":"You are being rate limited.","retry_after":2.5,"global":false}"#,
                Some("3"),
                Some(2.5),
            ),
            (r#"{"retry_after":0.25}"#, None, Some(0.25)),
            ("not json", Some("4"), Some(4.0)),
            ("", Some(" 1.5 "), Some(1.5)),
            (r#"{"retry_after":-1}"#, Some("2"), Some(2.0)),
            (r#"{"retry_after":"soon"}"#, None, None),
            ("", Some("NaN"), None),
            ("", Some("inf"), None),
            ("", Some("-3"), None),
            ("", None, None),
            (r#"{"retry_after":1e30}"#, None, Some(1e30)),
        ];
        for (body, header, want) in cases {
            assert_eq!(
                retry_hint(body.as_bytes(), *header),
                *want,
                "{body} / {header:?}"
            );
        }
    }

    #[test]
    fn hints_are_waited_up_to_a_minute_and_never_panic() {
        assert_eq!(
            after_429(Some(2.5), 1),
            After429::Wait(Duration::from_millis(2500))
        );
        assert_eq!(after_429(Some(0.0), 3), After429::Wait(Duration::ZERO));
        assert_eq!(after_429(Some(60.0), 1), After429::Wait(MAX_WAIT));
        assert_eq!(after_429(Some(60.5), 1), After429::GiveUp(60.5));
        assert_eq!(after_429(Some(1e30), 1), After429::GiveUp(1e30));
        assert_eq!(after_429(Some(f64::MAX), 1), After429::GiveUp(f64::MAX));
        // No hint: 1 s, 2 s, 4 s, … (capped, no shift overflow).
        assert_eq!(after_429(None, 1), After429::Wait(Duration::from_secs(1)));
        assert_eq!(after_429(None, 3), After429::Wait(Duration::from_secs(4)));
        assert_eq!(
            after_429(None, u32::MAX),
            After429::Wait(Duration::from_secs(64))
        );
    }

    #[test]
    fn error_text_is_the_message_field_only() {
        assert_eq!(
            error_message(br#"{"message":"Missing Access","code":50001}"#),
            "Missing Access"
        );
        assert_eq!(error_message(b"<html>secret</html>"), "(no error message)");
        assert_eq!(
            error_message(format!(r#"{{"message":"{}"}}"#, "x".repeat(500)).as_bytes()).len(),
            200
        );
    }
}
