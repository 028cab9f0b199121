//! Shared HTTP plumbing for every wire API: send with the connect timeout, wait at most
//! the idle timeout for each byte chunk (before the first and between chunks, whatever
//! the chunk holds), refuse redirects, turn non-2xx replies into classified errors, and
//! drive SSE streams through the API's event parser. The whole turn's deadline is the
//! engine's business.

use super::error::{ErrorKind, ProviderError, classify, retry_after_header};
use super::{Completion, DeltaSink, ProviderSettings, Usage, anthropic, google, openai};
use crate::config::ApiKind;
use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use std::time::Duration;
use tokio::time::timeout;

/// Largest reply body we read (a reply bigger than this is not a chat reply).
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest line of an SSE stream (the event parser rescans an unfinished line on
/// every chunk, so an endless line would cost quadratic time).
pub(crate) const MAX_SSE_LINE: usize = 1024 * 1024;

/// A request ready to send, and how to read its reply.
pub struct ApiCall {
    pub request: reqwest::RequestBuilder,
    pub api: ApiKind,
}

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

pub async fn execute(
    settings: &ProviderSettings,
    call: ApiCall,
    sink: Option<DeltaSink<'_>>,
) -> Result<Completion, ProviderError> {
    let idle = settings.idle_timeout;
    let resp = match timeout(idle, call.request.send()).await {
        Err(_) => return Err(timed_out(settings, idle, "for the reply to start")),
        Ok(Err(e)) => return Err(network_error(settings, &e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status.is_redirection() {
        return Err(redirected(settings, &resp));
    }
    if !status.is_success() {
        let retry = retry_after_header(resp.headers());
        let body = read_body(settings, resp).await.unwrap_or_default();
        return Err(classify(
            &settings.id,
            Some(status.as_u16()),
            retry,
            &String::from_utf8_lossy(&body),
        ));
    }
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    match sink {
        Some(sink) if is_sse => {
            let bytes = guarded_bytes(resp.bytes_stream(), settings.idle_timeout);
            read_stream(settings, call.api, bytes, sink).await
        }
        sink => {
            // Non-streaming call, or a server that answered a stream request with JSON.
            let body = read_body(settings, resp).await?;
            let completion = parse_reply(call.api, &settings.id, &body)?;
            if let Some(sink) = sink
                && !completion.text.is_empty()
            {
                sink(&completion.text);
            }
            Ok(completion)
        }
    }
}

fn parse_reply(api: ApiKind, provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    match api {
        ApiKind::AnthropicMessages => anthropic::parse_reply(provider, body),
        ApiKind::OpenaiCompletions => openai::parse_reply(provider, body),
        ApiKind::GoogleGenerative => google::parse_reply(provider, body),
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

/// A 3xx reply: never followed (the credential header would go along), reported with
/// the status and where it pointed.
fn redirected(settings: &ProviderSettings, resp: &reqwest::Response) -> ProviderError {
    let id = &settings.id;
    let status = resp.status().as_u16();
    let target = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|loc| resp.url().join(loc.trim()).ok())
        .and_then(|url| {
            let host = url.host_str()?.to_string();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        });
    let to = match target {
        Some(host) => format!("redirecting to {host}"),
        None => "a redirect without a usable Location".to_string(),
    };
    let mut e = ProviderError::new(
        ErrorKind::Unknown,
        format!(
            "{id}: {} answered HTTP {status}, {to}; redirects are not followed so the credential is never sent to another host. Point models.providers.{id}.baseUrl at the final address.",
            settings.base_url
        ),
    );
    e.status = Some(status);
    e
}

async fn read_body(
    settings: &ProviderSettings,
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, ProviderError> {
    let idle = settings.idle_timeout;
    let mut body = Vec::new();
    loop {
        match timeout(idle, resp.chunk()).await {
            Err(_) => return Err(timed_out(settings, idle, "for the rest of the reply")),
            Ok(Err(e)) => return Err(network_error(settings, &e)),
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(ProviderError::new(
                        ErrorKind::Format,
                        format!("{}: the reply exceeded {} MiB", settings.id, MAX_BODY >> 20),
                    ));
                }
            }
        }
    }
}

fn timed_out(settings: &ProviderSettings, idle: Duration, what: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Timeout,
        format!(
            "{}: no answer from {} within {} s while waiting {what} (models.providers.{}.idleTimeoutSecs)",
            settings.id,
            settings.base_url,
            idle.as_secs(),
            settings.id
        ),
    )
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn network_error(settings: &ProviderSettings, e: &reqwest::Error) -> ProviderError {
    let detail = error_chain(e);
    if e.is_timeout() {
        return ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "{}: connecting to {} timed out after {} s (models.providers.{}.connectTimeoutSecs)",
                settings.id,
                settings.base_url,
                settings.connect_timeout.as_secs(),
                settings.id
            ),
        );
    }
    if e.is_connect() {
        return ProviderError::new(
            ErrorKind::Unknown,
            format!(
                "{}: cannot connect to {} ({detail}). Check the network and models.providers.{}.baseUrl.",
                settings.id, settings.base_url, settings.id
            ),
        );
    }
    ProviderError::new(
        ErrorKind::Unknown,
        format!(
            "{}: request to {} failed: {detail}",
            settings.id, settings.base_url
        ),
    )
}

/// A reply body that did not have the expected shape.
pub fn malformed(provider: &str, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorKind::Format,
        format!("{provider}: could not understand the reply ({what})"),
    )
}
