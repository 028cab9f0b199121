//! Loopback fake LLM provider for integration tests and benchmarks.
//!
//! One axum server on `127.0.0.1:0` speaks the wire formats of the Anthropic
//! Messages API, the OpenAI Chat Completions API, the OpenAI Responses API and the
//! Google Gemini `generateContent` API. Responses are scripted per API key (FIFO queue of
//! [`Behavior`]s, falling back to a default) and every request is recorded
//! before its behaviour runs, so even stalled requests show up in
//! [`FakeProvider::requests`]. Image parts are validated like the real APIs do
//! (`images`): a bad one gets the API's 400 and leaves the script untouched.

mod anthropic;
mod google;
pub mod images;
mod openai;
mod responses;

pub use images::SeenImage;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::post;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the fake provider does with one request.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Reply `"fake reply to: <text of last user message>"`.
    Echo,
    /// Reply with exactly this text (streamed as several deltas, split per word).
    Reply(String),
    /// 429 with the provider's rate-limit error; `retry-after` header when `Some`
    /// (Google additionally carries a `RetryInfo` detail with `retryDelay: "Ns"`).
    RateLimit { retry_after_secs: Option<u64> },
    /// 429 quota exhausted (OpenAI `insufficient_quota`, Google `RESOURCE_EXHAUSTED`).
    Quota,
    /// Out of credits (Anthropic 400 credit balance, OpenAI 402, Google 400 FAILED_PRECONDITION).
    Billing,
    /// Invalid credential (Anthropic 401, OpenAI 401 `invalid_api_key`, Google 400 `API_KEY_INVALID`).
    Auth,
    /// Anthropic: 400 "only authorized for use with Claude Code". Other APIs: a 400
    /// invalid-request error carrying the same message.
    ClaudeCodeOnly,
    /// Anthropic 529, OpenAI 503, Google 503 UNAVAILABLE.
    Overloaded,
    /// 400 with the provider's invalid-request error shape and this message.
    InvalidRequest(String),
    /// 500 with the provider's internal error shape.
    ServerError,
    /// 200, `application/json`, body `{"unexpected":` (not valid JSON).
    Malformed,
    /// Never sends response headers.
    Stall,
    /// Stream requests: headers, the stream preamble and all deltas of this text,
    /// then nothing more and the connection stays open. Non-stream: like `Stall`.
    StallMidStream(String),
    /// Stream requests: the deltas of this text, then the provider's in-stream
    /// error event, then the body ends. Non-stream: like `Overloaded`.
    ErrorMidStream(String),
    /// 400 refusing the request's image as too large, in each API's words
    /// (`images::too_large_message`).
    RefuseImage,
    /// Exactly this response.
    Raw {
        status: u16,
        content_type: String,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Exactly this response, with a body of raw bytes (any bytes, invalid UTF-8
    /// included) sent as these frames, `delay` before each; with `then_stall` the body
    /// never ends while the provider lives. `RawChunks::trickle` sends one byte a frame.
    RawChunks(RawChunks),
}

/// A scripted raw response sent frame by frame (see [`Behavior::RawChunks`]).
#[derive(Clone, Debug)]
pub struct RawChunks {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub frames: Vec<Vec<u8>>,
    pub delay: Duration,
    pub then_stall: bool,
}

impl RawChunks {
    /// A 200 response with `content_type` whose body is `body` in one frame.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> RawChunks {
        RawChunks {
            status: 200,
            content_type: content_type.into(),
            headers: Vec::new(),
            frames: vec![body.into()],
            delay: Duration::ZERO,
            then_stall: false,
        }
    }

    /// An SSE (`text/event-stream`) response whose body is `body` in one frame.
    pub fn sse(body: impl Into<Vec<u8>>) -> RawChunks {
        RawChunks::ok("text/event-stream", body)
    }

    /// The same body cut into one-byte frames, `delay` before each.
    pub fn trickle(mut self, delay: Duration) -> RawChunks {
        self.frames = self.frames.concat().into_iter().map(|b| vec![b]).collect();
        self.delay = delay;
        self
    }

    /// After the last frame the body stays open (no more bytes) while the provider lives.
    pub fn stall(mut self) -> RawChunks {
        self.then_stall = true;
        self
    }

    pub fn status(mut self, status: u16) -> RawChunks {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> RawChunks {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Api {
    Anthropic,
    OpenAi,
    /// The OpenAI Responses API (`/v1/responses`, also the ChatGPT Codex backend's).
    Responses,
    Google,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub api: Api,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-cased header names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// `Value::Null` if the body was not JSON.
    pub body: Value,
    /// Anthropic: `x-api-key` or `Authorization: Bearer`; OpenAI and Responses: Bearer
    /// (any value, an OAuth access token included); Google: `x-goog-api-key` or `?key=`.
    pub key: Option<String>,
    pub stream: bool,
    /// The images the request carried, decoded, in order (empty when it carried none
    /// or was refused for a bad one).
    pub images: Vec<SeenImage>,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The requested model (body `model`, or the Gemini path segment).
    pub fn model(&self) -> Option<String> {
        match self.api {
            Api::Google => google::parse_path(&self.path).map(|(m, _)| m),
            _ => self
                .body
                .get("model")
                .and_then(Value::as_str)
                .map(String::from),
        }
    }

    /// Text of the last user message, as used by [`Behavior::Echo`].
    pub fn user_text(&self) -> String {
        last_user_text(&self.api, &self.body)
    }
}

/// A running fake provider. Dropping it shuts the server down.
pub struct FakeProvider {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeProvider {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake provider: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake provider: local_addr");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            scripts: Mutex::new(HashMap::new()),
            default: Mutex::new(Behavior::Echo),
            latency: Mutex::new(Duration::ZERO),
            held: watch::channel(false).0,
            chunk_delay: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            keep_requests: std::sync::atomic::AtomicBool::new(true),
            counter: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            shutdown: shutdown_rx.clone(),
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic_handler))
            .route("/v1/chat/completions", post(openai_handler))
            .route("/v1/responses", post(responses_handler))
            .route("/v1beta/models/{*rest}", post(google_handler))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(inner.clone());
        let mut signal = shutdown_rx;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await;
        });
        FakeProvider {
            addr,
            inner,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` (client appends `/v1/messages`).
    pub fn anthropic_base(&self) -> String {
        self.url()
    }

    /// `http://127.0.0.1:PORT/v1` (client appends `/chat/completions`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// `http://127.0.0.1:PORT/v1` (client appends `/responses`).
    pub fn responses_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// `http://127.0.0.1:PORT/v1beta` (client appends `/models/<m>:generateContent`).
    pub fn google_base(&self) -> String {
        format!("{}/v1beta", self.url())
    }

    /// Appends behaviours to the FIFO queue of `key`; each request carrying that
    /// key pops one. When the queue is empty the default behaviour applies.
    pub fn script(&self, key: &str, behaviors: impl IntoIterator<Item = Behavior>) {
        lock(&self.inner.scripts)
            .entry(key.to_string())
            .or_default()
            .extend(behaviors);
    }

    /// Number of scripted behaviours still queued for `key`.
    pub fn pending_script(&self, key: &str) -> usize {
        lock(&self.inner.scripts).get(key).map_or(0, VecDeque::len)
    }

    /// Drops all scripted behaviours (the default stays).
    pub fn clear_scripts(&self) {
        lock(&self.inner.scripts).clear();
    }

    /// Behaviour for unscripted requests (initially [`Behavior::Echo`]).
    pub fn set_default(&self, behavior: Behavior) {
        *lock(&self.inner.default) = behavior;
    }

    /// Fixed delay before every response, errors included (default zero).
    /// Requests wait (after being recorded, before answering) until [`release`]: a
    /// test holds a turn in its model call for exactly as long as it needs, however
    /// slow the machine, instead of guessing a latency.
    ///
    /// [`release`]: FakeProvider::release
    pub fn hold(&self) {
        self.inner.held.send_replace(true);
    }

    /// Lets held requests (and later ones) answer.
    pub fn release(&self) {
        self.inner.held.send_replace(false);
    }

    pub fn set_latency(&self, d: Duration) {
        *lock(&self.inner.latency) = d;
    }

    /// Delay before each streamed frame after the response headers (default zero).
    pub fn set_stream_chunk_delay(&self, d: Duration) {
        *lock(&self.inner.chunk_delay) = d;
    }

    /// Keep every request for `requests()` (default), or only count them
    /// (`request_count()`): a load benchmark measures the gateway, not the fake's copies.
    pub fn keep_requests(&self, keep: bool) {
        self.inner.keep_requests.store(keep, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    pub fn requests_for_key(&self, key: &str) -> Vec<RecordedRequest> {
        lock(&self.inner.requests)
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .cloned()
            .collect()
    }

    /// The most requests that were in the fake at once (from arrival to the response
    /// head; a held request counts while it is held).
    pub fn peak_in_flight(&self) -> u64 {
        self.inner.peak_in_flight.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        lock(&self.inner.requests).len()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.requests).clear();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        // Wakes stalled handlers (their connections are then cut) and starts
        // axum's graceful shutdown of idle keep-alive connections.
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Server internals

struct Inner {
    scripts: Mutex<HashMap<String, VecDeque<Behavior>>>,
    default: Mutex<Behavior>,
    latency: Mutex<Duration>,
    /// While true, requests wait before answering (`hold`/`release`).
    held: watch::Sender<bool>,
    chunk_delay: Mutex<Duration>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Requests are kept for `requests()` (default) or only counted (load benches).
    keep_requests: std::sync::atomic::AtomicBool,
    counter: AtomicU64,
    /// Requests between arrival and response head now, and the most there ever were.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// One request counted in [`Inner::in_flight`] until dropped.
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> InFlight<'a> {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(inner)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
    fn next_behavior(&self, key: Option<&str>) -> Behavior {
        if let Some(key) = key
            && let Some(b) = lock(&self.scripts)
                .get_mut(key)
                .and_then(VecDeque::pop_front)
        {
            return b;
        }
        lock(&self.default).clone()
    }

    /// Resolves once the provider is dropped.
    async fn shut_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per-request facts the wire-format modules need.
pub(super) struct Ctx {
    /// Sequence number, used in ids.
    pub n: u64,
    pub model: String,
    pub input_tokens: u64,
    pub key: Option<String>,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Google `alt=sse` (otherwise streaming uses a JSON array).
    pub sse: bool,
}

/// Error responses shared by all four APIs.
pub(super) enum Failure {
    RateLimit(Option<u64>),
    Quota,
    Billing,
    Auth,
    ClaudeCodeOnly,
    Overloaded,
    Invalid(String),
    Server,
}

/// How a streamed body ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamEnd {
    Complete,
    Stall,
    Error,
}

/// Content type, extra headers and body frames of a streamed response.
pub(super) struct StreamPlan {
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub frames: Vec<String>,
}

pub(super) const CLAUDE_CODE_ONLY_MESSAGE: &str = "This credential is only authorized for use with Claude Code and cannot be used for other API requests.";

async fn anthropic_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(inner, Api::Anthropic, method, uri, headers, body).await
}

async fn openai_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(inner, Api::OpenAi, method, uri, headers, body).await
}

async fn responses_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(inner, Api::Responses, method, uri, headers, body).await
}

async fn google_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if google::parse_path(uri.path()).is_none() {
        return google::not_found(uri.path());
    }
    handle(inner, Api::Google, method, uri, headers, body).await
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let msg = format!("fake provider: no route for {} {}", method, uri.path());
    let body = json!({
        "type": "error",
        "error": {"type": "not_found_error", "code": 404, "status": "NOT_FOUND", "message": msg}
    });
    build(404, "application/json", Vec::new(), body.to_string().into())
}

async fn handle(
    inner: Arc<Inner>,
    api: Api,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&inner);
    let body: Value = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let query = uri.query().map(String::from);
    let header_list: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let key = extract_key(&api, &headers, query.as_deref());
    let (stream, model, sse) = match api {
        Api::Google => {
            let (model, action) = google::parse_path(&path).unwrap_or_default();
            let sse = query_param(query.as_deref(), "alt").as_deref() == Some("sse");
            (action == "streamGenerateContent", model, sse)
        }
        _ => (
            body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            body.get("model")
                .and_then(Value::as_str)
                .unwrap_or("unknown-model")
                .to_string(),
            true,
        ),
    };
    let ctx = Ctx {
        n: inner.counter.fetch_add(1, Ordering::SeqCst) + 1,
        model,
        input_tokens: (raw_body.len() as u64 / 4).max(1),
        key: key.clone(),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        sse,
    };
    // A bad image is refused before any scripted behaviour, as the real API would.
    let images = images::extract(&api, &body);
    let behavior = match &images {
        Ok(_) => inner.next_behavior(key.as_deref()),
        Err(message) => Behavior::InvalidRequest(message.clone()),
    };
    if inner.keep_requests.load(Ordering::SeqCst) {
        lock(&inner.requests).push(RecordedRequest {
            api: api.clone(),
            method: method.as_str().to_string(),
            path,
            query,
            headers: header_list,
            body: body.clone(),
            key,
            stream,
            images: images.unwrap_or_default(),
        });
    }

    let latency = *lock(&inner.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut held = inner.held.subscribe();
    tokio::select! {
        _ = held.wait_for(|h| !*h) => {}
        _ = inner.shut_down() => {}
    }

    let text_response = |text: String| {
        if stream {
            stream_response(&inner, &api, &ctx, &text, StreamEnd::Complete)
        } else {
            match api {
                Api::Anthropic => anthropic::ok(&ctx, &text),
                Api::OpenAi => openai::ok(&ctx, &text),
                Api::Responses => responses::ok(&ctx, &text),
                Api::Google => google::ok(&ctx, &text),
            }
        }
    };
    let failure = |f: Failure| match api {
        Api::Anthropic => anthropic::error(&ctx, &f),
        Api::OpenAi => openai::error(&ctx, &f),
        Api::Responses => responses::error(&ctx, &f),
        Api::Google => google::error(&ctx, &f),
    };

    match behavior {
        Behavior::Echo => text_response(format!("fake reply to: {}", last_user_text(&api, &body))),
        Behavior::Reply(text) => text_response(text),
        Behavior::RateLimit { retry_after_secs } => failure(Failure::RateLimit(retry_after_secs)),
        Behavior::Quota => failure(Failure::Quota),
        Behavior::Billing => failure(Failure::Billing),
        Behavior::Auth => failure(Failure::Auth),
        Behavior::ClaudeCodeOnly => failure(Failure::ClaudeCodeOnly),
        Behavior::Overloaded => failure(Failure::Overloaded),
        Behavior::InvalidRequest(msg) => failure(Failure::Invalid(msg)),
        Behavior::RefuseImage => failure(Failure::Invalid(
            images::too_large_message(&api).to_string(),
        )),
        Behavior::ServerError => failure(Failure::Server),
        Behavior::Malformed => build(
            200,
            "application/json",
            Vec::new(),
            Body::from("{\"unexpected\":"),
        ),
        Behavior::Stall => stall(&inner).await,
        Behavior::StallMidStream(text) => {
            if stream {
                stream_response(&inner, &api, &ctx, &text, StreamEnd::Stall)
            } else {
                stall(&inner).await
            }
        }
        Behavior::ErrorMidStream(text) => {
            if stream {
                stream_response(&inner, &api, &ctx, &text, StreamEnd::Error)
            } else {
                failure(Failure::Overloaded)
            }
        }
        Behavior::Raw {
            status,
            content_type,
            body,
            headers,
        } => build(status, &content_type, headers, Body::from(body)),
        Behavior::RawChunks(raw) => raw_chunks(&inner, raw),
    }
}

fn raw_chunks(inner: &Arc<Inner>, raw: RawChunks) -> Response {
    let delay = raw.delay;
    let frames = stream::iter(raw.frames.into_iter().map(Bytes::from));
    let mut body: BoxStream<'static, Result<Bytes, std::io::Error>> = frames
        .then(move |f| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(f)
        })
        .boxed();
    if raw.then_stall {
        let inner = inner.clone();
        let tail = stream::once(async move {
            inner.shut_down().await;
            Err(std::io::Error::other("fake provider shut down"))
        });
        body = body.chain(tail).boxed();
    }
    build(
        raw.status,
        &raw.content_type,
        raw.headers,
        Body::from_stream(body),
    )
}

/// Never answers while the provider lives. Once it is dropped, returns a body
/// that fails at once: hyper then closes the connection before flushing the
/// head, so the client sees the connection cut with no response.
async fn stall(inner: &Inner) -> Response {
    inner.shut_down().await;
    let failing = stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("fake provider shut down"))
    });
    build(500, "text/plain", Vec::new(), Body::from_stream(failing))
}

fn stream_response(
    inner: &Arc<Inner>,
    api: &Api,
    ctx: &Ctx,
    text: &str,
    end: StreamEnd,
) -> Response {
    let pieces = split_chunks(text);
    let plan = match api {
        Api::Anthropic => anthropic::stream(ctx, &pieces, end),
        Api::OpenAi => openai::stream(ctx, &pieces, end),
        Api::Responses => responses::stream(ctx, &pieces, end),
        Api::Google => google::stream(ctx, &pieces, end),
    };
    let delay = *lock(&inner.chunk_delay);
    let frames = stream::iter(plan.frames.into_iter().map(Bytes::from));
    let mut body: BoxStream<'static, Result<Bytes, std::io::Error>> = if delay.is_zero() {
        frames.map(Ok).boxed()
    } else {
        frames
            .then(move |f| async move {
                tokio::time::sleep(delay).await;
                Ok(f)
            })
            .boxed()
    };
    if end == StreamEnd::Stall {
        let inner = inner.clone();
        let tail = stream::once(async move {
            inner.shut_down().await;
            Err(std::io::Error::other("fake provider shut down"))
        });
        body = body.chain(tail).boxed();
    }
    build(
        200,
        plan.content_type,
        plan.headers,
        Body::from_stream(body),
    )
}

/// Builds a response; invalid extra headers are skipped rather than failing.
pub(super) fn build(
    status: u16,
    content_type: &str,
    headers: Vec<(String, String)>,
    body: Body,
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        map.insert(axum::http::header::CONTENT_TYPE, v);
    }
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            map.append(k, v);
        }
    }
    resp
}

/// JSON response helper for the wire modules.
pub(super) fn json_response(
    status: u16,
    content_type: &str,
    headers: Vec<(String, String)>,
    body: &Value,
) -> Response {
    build(status, content_type, headers, Body::from(body.to_string()))
}

fn extract_key(api: &Api, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let bearer = || {
        header("authorization").and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
                .filter(|k| !k.is_empty())
        })
    };
    match api {
        Api::Anthropic => header("x-api-key").or_else(bearer),
        Api::OpenAi | Api::Responses => bearer(),
        Api::Google => header("x-goog-api-key").or_else(|| query_param(query, "key")),
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Text of the last user message (string content or concatenated text parts).
pub(super) fn last_user_text(api: &Api, body: &Value) -> String {
    match api {
        Api::Google => google::last_user_text(body),
        Api::Responses => responses::last_user_text(body),
        Api::Anthropic | Api::OpenAi => {
            let Some(messages) = body.get("messages").and_then(Value::as_array) else {
                return String::new();
            };
            messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
                .unwrap_or_default()
        }
    }
}

/// String content, or the concatenated `text` of `[{type:"text",text}]` parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| {
                p.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "text")
            })
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Splits text into word-sized pieces, each keeping its leading whitespace, so
/// concatenating the pieces gives back the text. A single word is cut in two
/// so streams carry more than one delta whenever the text has 2+ characters.
pub(super) fn split_chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else {
            in_word = true;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.len() == 1 {
        let chars: Vec<char> = out[0].chars().collect();
        if chars.len() >= 2 {
            let mid = chars.len() / 2;
            out = vec![chars[..mid].iter().collect(), chars[mid..].iter().collect()];
        }
    }
    out
}

/// Rough token count of generated text.
pub(super) fn output_tokens(text: &str) -> u64 {
    (text.split_whitespace().count() as u64).max(1)
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
