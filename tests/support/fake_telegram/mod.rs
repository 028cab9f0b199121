//! Loopback fake of the Telegram Bot API for integration tests.
//!
//! One axum server on `127.0.0.1:0` answers `/bot<TOKEN>/<method>` (method
//! names case-insensitive, JSON / form / query parameters) with complete Bot
//! API objects, so the real teloxide client can be pointed at
//! [`FakeTelegram::api_url`]. Tests queue incoming updates
//! ([`FakeTelegram::send_dm`], [`FakeTelegram::send_group`],
//! [`FakeTelegram::press_button`], photos, documents and albums:
//! [`FakeTelegram::send_photo`], [`FakeTelegram::send_document`],
//! [`FakeTelegram::send_album`]), script failures
//! ([`FakeTelegram::rate_limit_next`], [`FakeTelegram::fail_next`]) and inspect
//! every call ([`FakeTelegram::calls`]) and every message the bot sent
//! ([`FakeTelegram::sent_messages`]).
//!
//! Behaviour that mirrors the real server (and that tests may trip over):
//! - `getUpdates` long-polls for `timeout` seconds, answers as soon as updates
//!   are queued, never hands out an update below its `offset`, and forgets
//!   updates below `offset` for good. Every poll's `offset` is recorded
//!   ([`FakeTelegram::poll_offsets`]). A second
//!   `getUpdates` while one is waiting ends the older one with 409 Conflict.
//! - Sending to a chat the fake never saw (no `send_dm`/`send_group`/
//!   `register_*`) fails with 400 "Bad Request: chat not found".
//! - `parse_mode` text is validated (MarkdownV2 reserved characters, unclosed
//!   entities, HTML tags); the returned/stored `text` is the visible text.
//! - In a forum topic, a user message that is not an explicit reply carries
//!   `reply_to_message` = the topic's creation service message
//!   (`message_id == message_thread_id`, `forum_topic_created`, sent by the user).
//! - Editing to identical text and markup fails with "message is not modified".
//! - `setWebhook` records `url`, `secret_token` and `allowed_updates` (form, JSON or
//!   multipart, as teloxide sends it) ([`FakeTelegram::webhook`]); while a webhook is
//!   set `getUpdates` fails with 409 Conflict, as on the real server. `deleteWebhook`
//!   clears it. The fake never posts to the webhook itself: tests deliver updates.
//! - `getFile` knows the files of the photo and document messages it queued; their
//!   bytes are served at `/file/bot<token>/<file_path>` (404 unknown, 401 another
//!   token), and every download is recorded ([`FakeTelegram::file_downloads`]).

mod files;
mod inspect;
pub mod markup;
mod methods;
mod objects;
mod updates;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use files::{FakeFile, FileDownload, To};
use objects::{group_chat, strip_reply, text_entities, unix_now, user};

/// `username` of the fake bot (`getMe`).
pub const BOT_USERNAME: &str = "RemoteClawTestBot";
/// `first_name` of the fake bot.
pub const BOT_FIRST_NAME: &str = "RemoteClaw Test Bot";

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// Lower-cased method name, e.g. `sendmessage`.
    pub method: String,
    /// The method name as it appeared in the path, e.g. `SendMessage`.
    pub raw_method: String,
    /// Parameters: the JSON body object, or form / query fields (as strings).
    /// Always an object (empty if nothing could be parsed, e.g. multipart).
    pub body: Value,
    /// The raw request body (lossy UTF-8).
    pub raw_body: String,
    pub content_type: Option<String>,
    /// `false` when the path carried another token (answered 401).
    pub authorized: bool,
    /// The bot token the path carried.
    pub token: String,
    /// When the request arrived.
    pub at: Instant,
    /// HTTP status of the answer; 0 while it is still pending (long poll).
    pub status: u16,
    /// The JSON answer (`{"ok":...}`); `Null` while pending.
    pub response: Value,
    seq: u64,
}

impl RecordedCall {
    /// A parameter (`body[name]`).
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.body.get(name)
    }

    /// Whether the answer was `{"ok":true,...}`.
    pub fn succeeded(&self) -> bool {
        self.response.get("ok").and_then(Value::as_bool) == Some(true)
    }

    /// `error_code` of a failed answer.
    pub fn error_code(&self) -> Option<i64> {
        self.response.get("error_code").and_then(Value::as_i64)
    }
}

/// A message the bot sent (`sendMessage`) or rewrote (`editMessageText`) successfully.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// `sendmessage`, `editmessagetext` or `sendmessagedraft`.
    pub method: String,
    pub chat_id: i64,
    pub message_id: i64,
    /// Text exactly as the bot sent it (markup and escapes included).
    pub text: String,
    /// Visible text after `parse_mode` was applied (equals `text` without one).
    pub plain_text: String,
    pub parse_mode: Option<String>,
    /// `message_thread_id` as requested.
    pub thread_id: Option<i64>,
    /// `reply_parameters.message_id` (or legacy `reply_to_message_id`).
    pub reply_to_message_id: Option<i64>,
    /// `reply_markup` as requested (any keyboard kind).
    pub reply_markup: Option<Value>,
    pub at: Instant,
}

impl SentMessage {
    pub fn is_edit(&self) -> bool {
        self.method == "editmessagetext"
    }

    pub fn is_draft(&self) -> bool {
        self.method == "sendmessagedraft"
    }

    /// Every `callback_data` of the inline keyboard, row by row.
    pub fn callback_data(&self) -> Vec<String> {
        self.reply_markup
            .as_ref()
            .and_then(|m| m.get("inline_keyboard"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|b| b.get("callback_data").and_then(Value::as_str))
            .map(String::from)
            .collect()
    }
}

/// A running fake Bot API server. Dropping it shuts the server down.
pub struct FakeTelegram {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeTelegram {
    /// Binds `127.0.0.1:0` and serves `/bot<token>/...` on the current tokio runtime.
    /// The bot's user id is the numeric part of the token before `:` when there is one.
    pub async fn start(token: &str) -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake telegram: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake telegram: local_addr");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let bot_id = token
            .split(':')
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .unwrap_or(7_000_000_001);
        let inner = Arc::new(Inner {
            token: token.to_string(),
            also: Mutex::new(Vec::new()),
            bot_id,
            bot_user: json!({
                "id": bot_id,
                "is_bot": true,
                "first_name": BOT_FIRST_NAME,
                "username": BOT_USERNAME,
            }),
            state: Mutex::new(St::default()),
            updates_ready: Notify::new(),
            changed: Notify::new(),
            shutdown: shutdown_rx.clone(),
        });
        let app = Router::new()
            .fallback(handle)
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
        FakeTelegram {
            addr,
            inner,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (what goes into `channels.telegram.apiRoot`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/bot<token>/<method>`, for driving the fake by hand.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{}", self.api_url(), self.inner.token, method)
    }

    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn bot_username(&self) -> &str {
        BOT_USERNAME
    }

    /// Answer calls made with `token` too, as the same bot (a bot token that was
    /// regenerated: which token a call carried is in [`RecordedCall::token`]).
    pub fn accept_token(&self, token: &str) {
        lock(&self.inner.also).push(token.to_string());
    }

    pub fn bot_id(&self) -> i64 {
        self.inner.bot_id
    }

    // --- scripted failures ------------------------------------------------

    /// Script the next `times` calls of `method` (case-insensitive) to fail
    /// with 429 "Too Many Requests: retry after S" and `parameters.retry_after`.
    pub fn rate_limit_next(&self, method: &str, times: usize, retry_after_secs: u64) {
        let mut st = lock(&self.inner.state);
        let queue = st.scripted.entry(method.to_ascii_lowercase()).or_default();
        for _ in 0..times {
            queue.push_back(Failure {
                code: 429,
                description: format!("Too Many Requests: retry after {retry_after_secs}"),
                retry_after: Some(retry_after_secs),
            });
        }
    }

    /// In the body of the next `getUpdates` answer that holds `from`, replace it by
    /// `to` as raw text: a way to send what a `serde_json::Value` cannot hold, such
    /// as a lone UTF-16 surrogate escape (`\udcff`).
    pub fn rewrite_next_updates(&self, from: &str, to: &str) {
        lock(&self.inner.state).rewrite_updates = Some((from.to_string(), to.to_string()));
    }

    /// Script the next call of `method` (case-insensitive) to fail with this
    /// `error_code` (also the HTTP status) and `description`.
    pub fn fail_next(&self, method: &str, error_code: u16, description: &str) {
        lock(&self.inner.state)
            .scripted
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(Failure {
                code: error_code,
                description: description.to_string(),
                retry_after: None,
            });
    }

    /// Scripted failures of `method` not yet used.
    pub fn pending_failures(&self, method: &str) -> usize {
        lock(&self.inner.state)
            .scripted
            .get(&method.to_ascii_lowercase())
            .map_or(0, VecDeque::len)
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        // Ends waiting long polls and starts axum's graceful shutdown.
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Server internals

struct Inner {
    token: String,
    /// Further tokens answered as this bot (a token change, [`FakeTelegram::accept_token`]).
    also: Mutex<Vec<String>>,
    bot_id: i64,
    bot_user: Value,
    state: Mutex<St>,
    /// Woken when updates are queued, a newer `getUpdates` arrives, or the queue changes.
    updates_ready: Notify,
    /// Woken on every recorded change (calls, answers, sent messages).
    changed: Notify,
    shutdown: watch::Receiver<bool>,
}

impl Inner {
    fn wake(&self) {
        self.updates_ready.notify_waiters();
        self.changed.notify_waiters();
    }
}

struct Failure {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

/// A queued update, kept once for both the queue and the history, with its JSON text
/// rendered when it is queued: a poll hands out shared copies and joins their text
/// (no deep copy of each update per poll, no second rendering).
struct Queued {
    id: i64,
    /// The update's kind: its key besides `update_id` (`message`, `callback_query`…).
    kind: String,
    value: Value,
    json: String,
}

impl Queued {
    fn new(update: Value) -> Arc<Queued> {
        let id = update["update_id"].as_i64().unwrap_or(0);
        let kind = update
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
            .unwrap_or_default();
        let json = update.to_string();
        Arc::new(Queued {
            id,
            kind,
            value: update,
            json,
        })
    }
}

#[derive(Default)]
struct St {
    next_update_id: i64,
    queue: VecDeque<Arc<Queued>>,
    history: Vec<Arc<Queued>>,
    next_message_id: HashMap<i64, i64>,
    users: HashMap<i64, Value>,
    chats: HashMap<i64, Value>,
    messages: HashMap<(i64, i64), Value>,
    /// callback query id → answered
    callback_queries: HashMap<String, bool>,
    next_callback: u64,
    scripted: HashMap<String, VecDeque<Failure>>,
    calls: Vec<RecordedCall>,
    next_seq: u64,
    sent: Vec<SentMessage>,
    /// Calls are counted per method but not kept (`keep_calls(false)`, for load benches).
    skip_calls: bool,
    /// Calls per lower-cased method, kept or not.
    call_counts: std::collections::BTreeMap<String, usize>,
    /// How many of `sent` are `sendMessage`s (edits and drafts left out).
    sends: usize,
    last_commands: Option<Value>,
    /// `rewrite_next_updates`: (from, to) in the next `getUpdates` body holding `from`.
    rewrite_updates: Option<(String, String)>,
    /// scope + language → commands
    registered_commands: HashMap<String, Value>,
    highest_offset: i64,
    /// The `offset` of every `getUpdates`, in arrival order.
    poll_offsets: Vec<Option<i64>>,
    poll_generation: u64,
    allowed_updates: Vec<String>,
    webhook_url: String,
    /// `secret_token` of the last `setWebhook` (cleared by `deleteWebhook`).
    webhook_secret: Option<String>,
    /// `allowed_updates` of the last `setWebhook`.
    webhook_allowed_updates: Option<Value>,
    /// Files users sent, by `file_id` (`files`).
    files: HashMap<String, files::StoredFile>,
    next_file: u64,
    downloads: Vec<FileDownload>,
}

impl St {
    fn remember_user(&mut self, id: i64, username: &str) -> Value {
        let u = user(id, username);
        self.users.insert(id, u.clone());
        u
    }

    fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let next = self.next_message_id.entry(chat_id).or_insert(100);
        *next += 1;
        *next
    }

    fn push_update(&mut self, kind: &str, payload: Value) -> i64 {
        if self.next_update_id == 0 {
            self.next_update_id = 500_000_000;
        }
        self.next_update_id += 1;
        let id = self.next_update_id;
        let mut update = Map::new();
        update.insert("update_id".into(), json!(id));
        update.insert(kind.into(), payload);
        self.enqueue(Value::Object(update));
        id
    }

    fn enqueue(&mut self, update: Value) {
        let update = Queued::new(update);
        self.queue.push_back(update.clone());
        self.history.push(update);
    }

    fn store(&mut self, chat_id: i64, msg: &Value) {
        if let Some(id) = msg["message_id"].as_i64() {
            self.messages.insert((chat_id, id), msg.clone());
        }
    }

    /// A text message from a user, stored, with server-side entities.
    fn user_message(&mut self, chat: Value, from: Value, text: &str) -> Value {
        let chat_id = chat["id"].as_i64().unwrap_or(0);
        let mut msg = json!({
            "message_id": self.next_message_id(chat_id),
            "from": from,
            "chat": chat,
            "date": unix_now(),
            "text": text,
        });
        let entities = text_entities(text);
        if !entities.is_empty() {
            msg["entities"] = Value::Array(entities);
        }
        self.store(chat_id, &msg);
        msg
    }

    fn chat_or_default(&self, chat_id: i64) -> Value {
        self.chats
            .get(&chat_id)
            .cloned()
            .unwrap_or_else(|| objects::default_chat(chat_id))
    }

    /// The group's chat object, created or upgraded to a forum when `forum`.
    fn ensure_group(&mut self, chat_id: i64, forum: bool) -> Value {
        let chat = self
            .chats
            .entry(chat_id)
            .or_insert_with(|| objects::default_chat(chat_id));
        if forum && chat["is_forum"] != json!(true) {
            *chat = group_chat(chat_id, true, true);
        }
        chat.clone()
    }

    /// A stored message, or a bot message standing in for an unknown id.
    fn stored_or_stand_in(&self, bot_user: &Value, chat: &Value, message_id: i64) -> Value {
        let chat_id = chat["id"].as_i64().unwrap_or(0);
        match self.messages.get(&(chat_id, message_id)) {
            Some(m) => strip_reply(m),
            None => json!({
                "message_id": message_id,
                "from": bot_user,
                "chat": chat,
                "date": unix_now() - 60,
                "text": "(earlier bot message)",
            }),
        }
    }
}

/// The service message that created forum topic `thread_id`.
fn topic_root(chat: &Value, creator: &Value, thread_id: i64) -> Value {
    json!({
        "message_id": thread_id,
        "message_thread_id": thread_id,
        "from": creator,
        "chat": chat,
        "date": unix_now() - 3600,
        "forum_topic_created": {"name": format!("Topic {thread_id}"), "icon_color": 7_322_096},
        "is_topic_message": true,
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// HTTP status and JSON body of an answer.
type Reply = (u16, Value);

fn ok(result: Value) -> Reply {
    // Moved in, not through `json!` (which would copy the whole result once more).
    let mut body = serde_json::Map::new();
    body.insert("ok".into(), Value::Bool(true));
    body.insert("result".into(), result);
    (200, Value::Object(body))
}

fn fail(code: u16, description: impl Into<String>) -> Reply {
    (
        code,
        json!({"ok": false, "error_code": code, "description": description.into()}),
    )
}

fn bad_request(description: impl Into<String>) -> Reply {
    fail(400, description)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(rest) = uri.path().strip_prefix("/file/bot") {
        let (status, bytes) = files::download(&mut lock(&inner.state), &inner.token, rest);
        inner.changed.notify_waiters();
        let mut resp = Response::new(Body::from(bytes));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
        return resp;
    }
    let Some((token, name)) = uri
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, name)| !name.is_empty() && !name.contains('/'))
    else {
        return respond(fail(404, "Not Found"));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let params = objects::parse_params(content_type.as_deref(), uri.query(), &body);
    let authorized = token == inner.token || lock(&inner.also).iter().any(|t| t == token);
    let lc = name.to_ascii_lowercase();
    let (seq, scripted) = {
        let mut st = lock(&inner.state);
        st.next_seq += 1;
        let seq = st.next_seq;
        *st.call_counts.entry(lc.clone()).or_default() += 1;
        if !st.skip_calls {
            st.calls.push(RecordedCall {
                method: lc.clone(),
                raw_method: name.to_string(),
                body: Value::Object(params.clone()),
                raw_body: String::from_utf8_lossy(&body).into_owned(),
                content_type,
                authorized,
                token: token.to_string(),
                at: Instant::now(),
                status: 0,
                response: Value::Null,
                seq,
            });
        }
        let scripted = if authorized {
            st.scripted.get_mut(&lc).and_then(VecDeque::pop_front)
        } else {
            None
        };
        (seq, scripted)
    };
    inner.changed.notify_waiters();

    let reply = if !authorized {
        fail(401, "Unauthorized")
    } else if let Some(f) = scripted {
        let (code, mut body) = fail(f.code, f.description);
        if let Some(secs) = f.retry_after {
            body["parameters"] = json!({"retry_after": secs});
        }
        (code, body)
    } else if lc == "getupdates" {
        match methods::get_updates(&inner, &params).await {
            // A batch is answered as text (see `Queued`).
            Ok(batch) => return answer_batch(&inner, seq, batch),
            Err(reply) => reply,
        }
    } else {
        methods::dispatch(&inner, &lc, &params)
    };
    let mut body = reply.1.to_string();
    record(&inner, seq, reply.0, || reply.1);
    if lc == "getupdates" {
        body = rewritten(&inner, body);
    }
    respond_text(reply.0, body)
}

/// A `getUpdates` answer's text, rewritten once if a test asked
/// ([`FakeTelegram::rewrite_next_updates`]).
fn rewritten(inner: &Inner, body: String) -> String {
    let mut st = lock(&inner.state);
    match st
        .rewrite_updates
        .take_if(|(from, _)| body.contains(from.as_str()))
    {
        Some((from, to)) => body.replace(&from, &to),
        None => body,
    }
}

/// Keep a call's answer (unless calls are not kept) and tell the waiters.
fn record(inner: &Inner, seq: u64, status: u16, response: impl FnOnce() -> Value) {
    {
        let mut st = lock(&inner.state);
        if st.skip_calls {
        } else if let Some(call) = st.calls.iter_mut().rev().find(|c| c.seq == seq) {
            call.status = status;
            call.response = response();
        }
    }
    inner.changed.notify_waiters();
}

/// A successful `getUpdates`: the updates' text joined ([`rewritten`] if a test asked).
fn answer_batch(inner: &Inner, seq: u64, batch: Vec<Arc<Queued>>) -> Response {
    let mut body =
        String::with_capacity(32 + batch.iter().map(|u| u.json.len() + 1).sum::<usize>());
    body.push_str(r#"{"ok":true,"result":["#);
    for (i, u) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&u.json);
    }
    body.push_str("]}");
    record(
        inner,
        seq,
        200,
        || json!({"ok": true, "result": batch.iter().map(|u| u.value.clone()).collect::<Vec<_>>()}),
    );
    respond_text(200, rewritten(inner, body))
}

fn respond((status, body): Reply) -> Response {
    respond_text(status, body.to_string())
}

/// An answer whose JSON body is already text.
fn respond_text(status: u16, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
