//! Reading a streamed (SSE) reply: the body's byte chunks pass an idle/size guard (any
//! byte resets the idle timer; the total and each line are capped), then the
//! server-sent-events parser, then the wire API's `on_event`, which fills a
//! `StreamState` and yields the text deltas for the sink.

use super::error::{ErrorKind, ProviderError};
use super::http::{MAX_BODY, error_chain, malformed, timed_out};
use super::{Completion, DeltaSink, ProviderSettings, Usage, anthropic, google, openai, responses};
use crate::config::ApiKind;
use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use std::time::Duration;
use tokio::time::timeout;

/// Longest line of an SSE stream (the event parser rescans an unfinished line on
/// every chunk, so an endless line would cost quadratic time).
pub(crate) const MAX_SSE_LINE: usize = 1024 * 1024;

/// What a stream has delivered so far.
#[derive(Debug, Default)]
pub struct StreamState {
    pub text: String,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
    /// The API sent its explicit end marker (`message_stop`, `[DONE]`).
    pub done: bool,
}

impl StreamState {
    pub fn usage_mut(&mut self) -> &mut Usage {
        self.usage.get_or_insert_with(Usage::default)
    }
}

/// Why the bytes of a streamed reply stopped coming.
#[derive(Debug)]
pub(crate) enum ChunkError {
    /// Nothing arrived for the idle timeout.
    Idle,
    /// More than `MAX_BODY` bytes in all.
    TooLarge,
    /// A line longer than `MAX_SSE_LINE`.
    LineTooLong,
    /// The connection broke (the error chain, as text).
    Net(String),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Idle => f.write_str("no bytes within the idle timeout"),
            ChunkError::TooLarge => write!(f, "more than {} MiB", MAX_BODY >> 20),
            ChunkError::LineTooLong => write!(f, "a line over {} MiB", MAX_SSE_LINE >> 20),
            ChunkError::Net(e) => f.write_str(e),
        }
    }
}

/// The reply's bytes with the idle timeout applied between chunks (any byte resets it)
/// and the size caps checked; the first error ends the stream.
pub(crate) fn guarded_bytes<S, E>(
    inner: S,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, ChunkError>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error,
{
    struct Progress<S> {
        inner: S,
        total: usize,
        line: usize,
        ended: bool,
    }
    let start = Progress {
        inner,
        total: 0,
        line: 0,
        ended: false,
    };
    futures_util::stream::unfold(start, move |mut p| async move {
        if p.ended {
            return None;
        }
        let item = match timeout(idle, p.inner.next()).await {
            Err(_) => Err(ChunkError::Idle),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(ChunkError::Net(error_chain(&e))),
            Ok(Some(Ok(chunk))) => {
                p.total = p.total.saturating_add(chunk.len());
                p.line = match memchr::memrchr2(b'\n', b'\r', &chunk) {
                    Some(i) => chunk.len() - i - 1,
                    None => p.line.saturating_add(chunk.len()),
                };
                if p.total > MAX_BODY {
                    Err(ChunkError::TooLarge)
                } else if p.line > MAX_SSE_LINE {
                    Err(ChunkError::LineTooLong)
                } else {
                    Ok(chunk)
                }
            }
        };
        p.ended = item.is_err();
        Some((item, p))
    })
}

/// Drive an SSE byte stream through the API's event parser into `sink`.
pub(crate) async fn read_stream<S>(
    settings: &ProviderSettings,
    api: ApiKind,
    bytes: S,
    sink: DeltaSink<'_>,
) -> Result<Completion, ProviderError>
where
    S: Stream<Item = Result<Bytes, ChunkError>>,
{
    let id = &settings.id;
    let mut events = std::pin::pin!(bytes.eventsource());
    let mut state = StreamState::default();
    while !state.done {
        let event = match events.next().await {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(EventStreamError::Transport(ChunkError::Idle))) => {
                return Err(timed_out(
                    settings,
                    settings.idle_timeout,
                    "for the next part of the streamed reply",
                ));
            }
            Some(Err(EventStreamError::Transport(e @ ChunkError::Net(_)))) => {
                return Err(ProviderError::new(
                    ErrorKind::Unknown,
                    format!("{id}: the reply stream broke off: {e}"),
                ));
            }
            Some(Err(EventStreamError::Transport(e))) => {
                return Err(ProviderError::new(
                    ErrorKind::Format,
                    format!("{id}: the streamed reply was refused: it has {e}"),
                ));
            }
            Some(Err(EventStreamError::Utf8(_))) => {
                return Err(malformed(id, "the stream is not valid UTF-8"));
            }
            Some(Err(EventStreamError::Parser(_))) => {
                return Err(malformed(id, "the stream is not valid server-sent events"));
            }
        };
        let delta = match api {
            ApiKind::AnthropicMessages => {
                anthropic::on_event(id, &event.event, &event.data, &mut state)?
            }
            ApiKind::OpenaiCompletions => openai::on_event(id, &event.data, &mut state)?,
            ApiKind::OpenaiResponses => {
                responses::on_event(id, &event.event, &event.data, &mut state)?
            }
            ApiKind::GoogleGenerative => google::on_event(id, &event.data, &mut state)?,
        };
        if let Some(d) = delta.filter(|d| !d.is_empty()) {
            sink(&d);
            state.text.push_str(&d);
        }
        if state.text.len() > MAX_BODY {
            return Err(ProviderError::new(
                ErrorKind::Format,
                format!("{id}: the streamed reply exceeded {} MiB", MAX_BODY >> 20),
            ));
        }
    }
    if !state.done && state.stop_reason.is_none() {
        return Err(ProviderError::new(
            ErrorKind::Unknown,
            format!("{id}: the provider closed the stream before the reply was complete"),
        ));
    }
    Ok(Completion {
        text: state.text,
        usage: state.usage,
        stop_reason: state.stop_reason,
    })
}
