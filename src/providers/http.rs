//! Shared HTTP plumbing for every wire API: send with the connect timeout, wait at most
//! the idle timeout for the reply to start and for each chunk of a plain reply, refuse
//! redirects, turn non-2xx replies into classified errors, and hand SSE replies to
//! `stream`. The whole turn's deadline is the engine's business.

use super::error::{ErrorKind, ProviderError, classify, retry_after_header};
use super::stream::{guarded_bytes, read_stream};
use super::{Completion, DeltaSink, ProviderSettings, anthropic, google, openai, responses};
use crate::config::ApiKind;
use std::time::Duration;
use tokio::time::timeout;

/// Largest reply body we read (a reply bigger than this is not a chat reply).
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;
/// The `Accept` header of a call: SSE when streamed, JSON otherwise.
pub(super) fn accept(stream: bool) -> &'static str {
    if stream {
        "text/event-stream"
    } else {
        "application/json"
    }
}

/// A JSON POST with a bearer token (the OpenAI-style APIs).
pub(super) fn bearer_json(
    http: &reqwest::Client,
    url: String,
    cred: &crate::auth::credential::Credential,
    body: &(impl serde::Serialize + ?Sized),
    stream: bool,
    api: ApiKind,
) -> ApiCall {
    let request = http
        .post(url)
        .bearer_auth(cred.secret.expose())
        .header(reqwest::header::ACCEPT, accept(stream))
        .json(body);
    ApiCall { request, api }
}

/// A request ready to send, and how to read its reply.
pub struct ApiCall {
    pub request: reqwest::RequestBuilder,
    pub api: ApiKind,
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
        let body = String::from_utf8_lossy(&body);
        return Err(match call.api {
            ApiKind::OpenaiResponses => {
                responses::classify_http(&settings.id, status.as_u16(), retry, &body)
            }
            _ => classify(&settings.id, Some(status.as_u16()), retry, &body),
        });
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
        ApiKind::OpenaiResponses => responses::parse_reply(provider, body),
        ApiKind::GoogleGenerative => google::parse_reply(provider, body),
    }
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

pub(super) fn timed_out(settings: &ProviderSettings, idle: Duration, what: &str) -> ProviderError {
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
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
    if e.is_builder() {
        // The URL is checked at config load; what is left is a header value, and the one
        // that comes from outside is the credential's key.
        return ProviderError::new(
            ErrorKind::Unknown,
            format!(
                "{}: the request could not be built ({detail}): the credential's key holds a character an HTTP header cannot carry (a control character or line break). Fix the key where it is set (.env, the environment, auth-profiles.json or the SecretRef's source).",
                settings.id
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
