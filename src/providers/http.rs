//! Shared HTTP plumbing for every wire API: send with the connect timeout, wait at most
//! the idle timeout for each byte (before the first and between chunks), turn non-2xx
//! replies into classified errors, and drive SSE streams through the API's event parser.

use super::error::{ErrorKind, ProviderError, classify, retry_after_header};
use super::{Completion, DeltaSink, ProviderSettings, Usage, anthropic, google, openai};
use crate::config::ApiKind;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::time::timeout;

/// Largest reply body we read (a reply bigger than this is not a chat reply).
const MAX_BODY: usize = 16 * 1024 * 1024;

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
        Some(sink) if is_sse => read_stream(settings, call.api, resp, sink).await,
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

async fn read_stream(
    settings: &ProviderSettings,
    api: ApiKind,
    resp: reqwest::Response,
    sink: DeltaSink<'_>,
) -> Result<Completion, ProviderError> {
    let idle = settings.idle_timeout;
    let mut events = resp.bytes_stream().eventsource();
    let mut state = StreamState::default();
    while !state.done {
        let event = match timeout(idle, events.next()).await {
            Err(_) => {
                return Err(timed_out(
                    settings,
                    idle,
                    "for the next part of the streamed reply",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ProviderError::new(
                    ErrorKind::Unknown,
                    format!("{}: the reply stream broke off: {e}", settings.id),
                ));
            }
            Ok(Some(Ok(ev))) => ev,
        };
        let delta = match api {
            ApiKind::AnthropicMessages => {
                anthropic::on_event(&settings.id, &event.event, &event.data, &mut state)?
            }
            ApiKind::OpenaiCompletions => openai::on_event(&settings.id, &event.data, &mut state)?,
            ApiKind::GoogleGenerative => google::on_event(&settings.id, &event.data, &mut state)?,
        };
        if let Some(d) = delta.filter(|d| !d.is_empty()) {
            sink(&d);
            state.text.push_str(&d);
        }
        if state.text.len() > MAX_BODY {
            return Err(ProviderError::new(
                ErrorKind::Format,
                format!(
                    "{}: the streamed reply exceeded {} MiB",
                    settings.id,
                    MAX_BODY >> 20
                ),
            ));
        }
    }
    if !state.done && state.stop_reason.is_none() {
        return Err(ProviderError::new(
            ErrorKind::Unknown,
            format!(
                "{}: the provider closed the stream before the reply was complete",
                settings.id
            ),
        ));
    }
    Ok(Completion {
        text: state.text,
        usage: state.usage,
        stop_reason: state.stop_reason,
    })
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

fn network_error(settings: &ProviderSettings, e: &reqwest::Error) -> ProviderError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
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
