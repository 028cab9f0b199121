//! Loopback fake of Discord (REST API v10 + gateway) for integration tests.
//!
//! One axum server on `127.0.0.1:0` answers REST calls under `/api/v10/...`
//! and accepts gateway websockets on any other path (serenity connects to
//! `ws://127.0.0.1:PORT/?v=10&encoding=json`, the URL `GET /api/v10/gateway`
//! hands out). Point serenity's HTTP base (its `proxy` setting) at
//! [`FakeDiscord::api_base`] and turn its ratelimiter off.
//!
//! Tests queue gateway events ([`FakeDiscord::send_message`],
//! [`FakeDiscord::send_slash_command`], [`FakeDiscord::send_autocomplete`],
//! [`FakeDiscord::send_raw_dispatch`], messages with attachments:
//! [`FakeDiscord::send_message_with_attachments`]), script failures
//! ([`FakeDiscord::rate_limit_next`], [`FakeDiscord::fail_next`],
//! [`FakeDiscord::drop_connection`]) and inspect every REST call
//! ([`FakeDiscord::calls`]) and every gateway frame the client sent.
//!
//! Behaviour that mirrors the real service (and that tests may trip over):
//! - Gateway: Hello (op 10) on connect; Identify (op 2) starts a new session
//!   and is answered with READY (`s` = 1); Heartbeat (op 1) gets an ACK
//!   (op 11); Resume (op 6) of the current session replays the dispatches the
//!   client missed (`s` > its `seq`) and then sends RESUMED, otherwise Invalid
//!   Session (op 9, `d` = false). A wrong token closes with 4004, a second
//!   Identify on one connection with 4005, anything but heartbeat / identify /
//!   resume before authentication with 4003.
//! - Events queued while no authenticated connection exists are held and
//!   dispatched, in order, once one exists. An event written to a connection
//!   that then drops is only recovered by a Resume.
//! - Sharding: each connection runs the shard its Identify names (`shard:
//!   [id, num_shards]`, `[0, 1]` without one; an id >= num closes with 4010)
//!   and has a session of its own. An event goes to the shard Discord routes
//!   it to ([`shard_of`]): a guild's events to `(guild_id >> 22) % num_shards`,
//!   DMs (and DM interactions) to shard 0 only. [`FakeDiscord::identify_log`]
//!   holds every Identify's `shard` field, [`FakeDiscord::dispatched_on`] what
//!   each shard was sent. `GET /gateway/bot` answers a complete object whose
//!   `session_start_limit.max_concurrency` is [`FakeDiscord::set_max_concurrency`]
//!   (default 1).
//! - REST needs `Authorization: Bot <token>` (401 otherwise) except
//!   `GET /gateway` and the interaction routes (`/interactions/...`,
//!   `/webhooks/{app}/{token}...`), which carry their own token (a present
//!   but wrong `Authorization` is still 401 there).
//! - Interactions must be acknowledged (callback) within 3 s of being
//!   dispatched, else 404 `Unknown interaction` (10062), and only once (400,
//!   40060). Follow-ups and edits of `@original` before the callback fail with
//!   404 `Unknown Webhook` (10015). Autocomplete interactions only accept
//!   callback type 8, commands never do.
//! - Message content over 2000 characters fails with 400 Invalid Form Body
//!   (50035), an empty message with 400 (50006).
//! - Command registration validates names (1-32 chars, lower case, no
//!   spaces), descriptions (1-100 chars), option counts and that required
//!   options come first; the application id in the path must be
//!   [`APPLICATION_ID`] (403 Missing Access otherwise). The bot user id
//!   ([`BOT_USER_ID`]) deliberately differs from the application id.
//! - `send_message(.., mentions_bot = true, ..)` puts the bot in `mentions`
//!   and prefixes the content with `<@BOT_USER_ID> ` unless it already
//!   contains that mention (as real clients do).
//! - Posting to a channel the fake never saw is accepted, but
//!   `GET /channels/{id}` only knows channels seen in `send_*` calls,
//!   [`FakeDiscord::register_channel`] or `POST /users/@me/channels`
//!   (404 Unknown Channel otherwise).
//! - [`FakeDiscord::channel_messages`] holds what the bot posted with
//!   `POST /channels/{id}/messages`; interaction responses are seen through
//!   [`FakeDiscord::interaction_responses`] / [`FakeDiscord::interaction_original`].
//! - Attachments a user sends are served by the fake's CDN route
//!   (`GET /attachments/{channel}/{id}/{filename}`, no token needed, 404 otherwise);
//!   every download is recorded ([`FakeDiscord::cdn_downloads`]).

mod cdn;
mod gateway;
mod objects;
mod rest;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use cdn::{CdnDownload, FakeAttachment};
pub use objects::UploadedFile;

/// User id of the fake bot.
pub const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;
/// Application id of the fake bot (differs from the bot user id on purpose).
pub const APPLICATION_ID: u64 = 1_100_000_000_000_000_002;
/// Username of the fake bot.
pub const BOT_USERNAME: &str = "RemoteClawTestBot";
/// Default Hello `heartbeat_interval` in milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 41_250;
/// Ephemeral message flag.
pub const EPHEMERAL: u64 = 64;

/// The shard Discord delivers dispatch `d` on, out of `num_shards`: a guild's
/// events on `(guild_id >> 22) % num_shards`, everything else (DMs) on shard 0.
pub fn shard_of(d: &Value, num_shards: u64) -> u64 {
    let guild = d["guild_id"]
        .as_str()
        .and_then(|g| g.parse::<u64>().ok())
        .or_else(|| d["guild_id"].as_u64());
    match guild {
        Some(g) if num_shards > 0 => (g >> 22) % num_shards,
        _ => 0,
    }
}

/// One Identify (op 2) the fake received.
#[derive(Clone, Debug)]
pub struct IdentifyRecord {
    /// Its `shard` field as sent (`Null` when absent).
    pub shard: Value,
    pub at: Instant,
}

/// One REST request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// Upper-case HTTP method, e.g. `POST`.
    pub method: String,
    /// Full path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    pub query: Option<String>,
    /// Request headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`payload_json` of a multipart body); `Null` if none.
    pub body: Value,
    /// The raw request body (lossy UTF-8).
    pub raw_body: String,
    /// Files of a multipart body.
    pub files: Vec<UploadedFile>,
    /// HTTP status of the answer.
    pub status: u16,
    /// JSON answer (`Null` for 204).
    pub response: Value,
    /// The interaction this call answers (callback, webhook edit, follow-up).
    pub interaction_id: Option<u64>,
    pub at: Instant,
    seq: u64,
}

impl RecordedCall {
    /// A header value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// Path without the `/api/v10` prefix, e.g. `/channels/1/messages`.
    pub fn route(&self) -> &str {
        self.path.strip_prefix("/api/v10").unwrap_or(&self.path)
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Interaction callback type (`body.type`) for `/callback` calls.
    pub fn callback_type(&self) -> Option<u64> {
        if self.path.ends_with("/callback") {
            self.body.get("type").and_then(Value::as_u64)
        } else {
            None
        }
    }

    /// The message payload: `body.data` of a callback, else the body.
    pub fn payload(&self) -> &Value {
        if self.path.ends_with("/callback") {
            &self.body["data"]
        } else {
            &self.body
        }
    }

    /// `content` of the message payload.
    pub fn content(&self) -> Option<&str> {
        self.payload().get("content").and_then(Value::as_str)
    }

    /// `flags` of the message payload (0 when absent).
    pub fn flags(&self) -> u64 {
        self.payload()
            .get("flags")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    pub fn is_ephemeral(&self) -> bool {
        self.flags() & EPHEMERAL != 0
    }

    /// `"callback"`, `"edit_original"`, `"followup"`, `"delete_original"`,
    /// `"edit_followup"`, ... for interaction calls, else `"other"`.
    pub fn interaction_kind(&self) -> &'static str {
        let r = self.route();
        match self.method.as_str() {
            "POST" if r.starts_with("/interactions/") => "callback",
            "PATCH" if r.ends_with("/messages/@original") => "edit_original",
            "DELETE" if r.ends_with("/messages/@original") => "delete_original",
            "GET" if r.ends_with("/messages/@original") => "get_original",
            "POST" if r.starts_with("/webhooks/") => "followup",
            "PATCH" if r.starts_with("/webhooks/") => "edit_followup",
            "DELETE" if r.starts_with("/webhooks/") => "delete_followup",
            _ => "other",
        }
    }
}

/// A running fake Discord. Dropping it shuts the server and every gateway
/// connection down.
pub struct FakeDiscord {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeDiscord {
    /// Binds `127.0.0.1:0` and serves REST + gateway on the current tokio runtime.
    pub async fn start(token: &str) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake discord: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake discord: local_addr");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            token: token.to_string(),
            addr,
            bot_user: objects::current_user(BOT_USER_ID, BOT_USERNAME),
            state: Mutex::new(St {
                heartbeat_interval_ms: DEFAULT_HEARTBEAT_MS,
                resume_allowed: true,
                ack_deadline: Some(Duration::from_secs(3)),
                max_concurrency: 1,
                ..St::default()
            }),
            changed: Notify::new(),
        });
        let app = Router::new()
            .fallback(rest::handle)
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
        FakeDiscord {
            addr,
            inner,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (what goes in `channels.discord.apiBase`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/api/v10` + `route` (for driving the fake by hand).
    pub fn api_url(&self, route: &str) -> String {
        format!("http://{}/api/v10{}", self.addr, route)
    }

    /// `ws://127.0.0.1:PORT` (what `GET /gateway` returns).
    pub fn gateway_url(&self) -> String {
        self.inner.ws_url()
    }

    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn bot_user_id(&self) -> u64 {
        BOT_USER_ID
    }

    pub fn application_id(&self) -> u64 {
        APPLICATION_ID
    }

    pub fn bot_username(&self) -> &str {
        BOT_USERNAME
    }

    /// The bot's user object.
    pub fn bot_user(&self) -> Value {
        self.inner.bot_user.clone()
    }

    // --- configuration ----------------------------------------------------

    /// `heartbeat_interval` of the Hello sent on later connections.
    pub fn set_heartbeat_interval(&self, ms: u64) {
        lock(&self.inner.state).heartbeat_interval_ms = ms;
    }

    /// `session_start_limit.max_concurrency` of `GET /gateway/bot` (default 1).
    pub fn set_max_concurrency(&self, n: u64) {
        lock(&self.inner.state).max_concurrency = n;
    }

    /// Whether a Resume of the current session is honoured (default true);
    /// when false every Resume gets Invalid Session (`d` = false).
    pub fn set_resume_allowed(&self, allowed: bool) {
        lock(&self.inner.state).resume_allowed = allowed;
    }

    /// How long after dispatch an interaction may be acknowledged (default
    /// 3 s; `None` = forever).
    pub fn set_interaction_ack_deadline(&self, deadline: Option<Duration>) {
        lock(&self.inner.state).ack_deadline = deadline;
    }

    /// Makes a user known (username used in later events and `GET /users/{id}`).
    pub fn register_user(&self, user_id: u64, username: &str) -> Value {
        lock(&self.inner.state).remember_user(user_id, username)
    }

    /// Makes a channel known to `GET /channels/{id}`: a guild text channel,
    /// or (`guild_id` None) the DM channel with `dm_user_id`.
    pub fn register_channel(&self, channel_id: u64, guild_id: Option<u64>, dm_user_id: u64) {
        let mut st = lock(&self.inner.state);
        st.user_or_default(dm_user_id);
        st.note_channel(channel_id, guild_id, dm_user_id);
    }

    // --- incoming gateway events -----------------------------------------

    /// Queues a MESSAGE_CREATE from a user; a DM when `guild_id` is None.
    /// Returns the message id.
    pub fn send_message(
        &self,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        username: &str,
        content: &str,
        mentions_bot: bool,
    ) -> u64 {
        self.queue_message(
            channel_id,
            guild_id,
            author_id,
            username,
            content,
            mentions_bot,
            &[],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_message(
        &self,
        channel_id: u64,
        guild_id: Option<u64>,
        author_id: u64,
        username: &str,
        content: &str,
        mentions_bot: bool,
        files: &[FakeAttachment],
    ) -> u64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let author = st.remember_user(author_id, username);
            st.note_channel(channel_id, guild_id, author_id);
            let id = st.snowflake();
            let mention = format!("<@{BOT_USER_ID}>");
            let content = if mentions_bot && !content.contains(&mention) {
                format!("{mention} {content}")
            } else {
                content.to_string()
            };
            let mut msg = objects::message(id, channel_id, &author, &content);
            let base = format!("http://{}", self.addr);
            msg["attachments"] = json!(st.attachments_of(&base, channel_id, files));
            if mentions_bot {
                let mut bot = self.inner.bot_user.clone();
                if let Some(g) = guild_id {
                    bot["member"] = objects::member(&bot, g, false, false);
                }
                msg["mentions"] = json!([bot]);
            }
            msg["nonce"] = json!(id.to_string());
            if let Some(g) = guild_id {
                msg["guild_id"] = json!(g.to_string());
                msg["member"] = objects::member(&author, g, false, false);
            }
            st.all_messages.insert(id, msg.clone());
            st.pending.push_back(("MESSAGE_CREATE".into(), msg));
            id
        };
        self.inner.flush_connections();
        id
    }

    /// Queues a MESSAGE_CREATE from a guild member that replies to message
    /// `replied_to` (a message the fake knows: the bot's or a user's), with
    /// `message_reference` and the full `referenced_message`, as Discord sends it.
    pub fn send_reply(
        &self,
        channel_id: u64,
        guild_id: u64,
        author_id: u64,
        username: &str,
        content: &str,
        replied_to: u64,
    ) -> u64 {
        let id = {
            let mut st = lock(&self.inner.state);
            let author = st.remember_user(author_id, username);
            st.note_channel(channel_id, Some(guild_id), author_id);
            let id = st.snowflake();
            let mut msg = objects::message(id, channel_id, &author, content);
            msg["nonce"] = json!(id.to_string());
            msg["guild_id"] = json!(guild_id.to_string());
            msg["member"] = objects::member(&author, guild_id, false, false);
            msg["type"] = json!(19);
            msg["message_reference"] = json!({
                "type": 0,
                "message_id": replied_to.to_string(),
                "channel_id": channel_id.to_string(),
                "guild_id": guild_id.to_string(),
            });
            if let Some(referenced) = st.all_messages.get(&replied_to).cloned() {
                msg["referenced_message"] = referenced;
            }
            st.all_messages.insert(id, msg.clone());
            st.pending.push_back(("MESSAGE_CREATE".into(), msg));
            id
        };
        self.inner.flush_connections();
        id
    }

    /// Queues an INTERACTION_CREATE for a slash command (type 2). `options`
    /// is the Discord `data.options` array (`Null` = none). Returns the
    /// interaction id and token.
    pub fn send_slash_command(
        &self,
        guild_id: Option<u64>,
        channel_id: u64,
        user_id: u64,
        name: &str,
        options: Value,
    ) -> (u64, String) {
        self.send_interaction(2, guild_id, channel_id, user_id, name, options)
    }

    /// Queues an INTERACTION_CREATE of type 4 (autocomplete). Mark the option
    /// being typed with `"focused": true` in `options`.
    pub fn send_autocomplete(
        &self,
        guild_id: Option<u64>,
        channel_id: u64,
        user_id: u64,
        name: &str,
        options: Value,
    ) -> (u64, String) {
        self.send_interaction(4, guild_id, channel_id, user_id, name, options)
    }

    fn send_interaction(
        &self,
        kind: u64,
        guild_id: Option<u64>,
        channel_id: u64,
        user_id: u64,
        name: &str,
        options: Value,
    ) -> (u64, String) {
        let out = {
            let mut st = lock(&self.inner.state);
            let user = st.user_or_default(user_id);
            st.note_channel(channel_id, guild_id, user_id);
            let id = st.snowflake();
            let token = format!("aW50ZXJhY3Rpb246{id}OmZha2UtZGlzY29yZC10b2tlbg");
            let command_id = st.command_id(guild_id, name);
            let options = match options {
                Value::Null => json!([]),
                other => other,
            };
            let mut data = json!({
                "id": command_id.to_string(),
                "name": name,
                "type": 1,
                "options": options,
            });
            let mut i = json!({
                "id": id.to_string(),
                "application_id": APPLICATION_ID.to_string(),
                "type": kind,
                "channel_id": channel_id.to_string(),
                "token": token,
                "version": 1,
                "app_permissions": objects::ALL_PERMISSIONS,
                "locale": "en-US",
                "entitlements": [],
                "attachment_size_limit": 10_485_760,
            });
            match guild_id {
                Some(g) => {
                    data["guild_id"] = json!(g.to_string());
                    i["guild_id"] = json!(g.to_string());
                    i["guild_locale"] = json!("en-US");
                    i["member"] = objects::member(&user, g, true, true);
                    let mut ch = objects::guild_text_channel(channel_id, g);
                    ch["permissions"] = json!(objects::ALL_PERMISSIONS);
                    i["channel"] = ch;
                    i["authorizing_integration_owners"] = json!({"0": g.to_string()});
                    i["context"] = json!(0);
                }
                None => {
                    i["user"] = user.clone();
                    i["channel"] = objects::dm_channel(channel_id, &user);
                    i["authorizing_integration_owners"] = json!({"0": "0"});
                    i["context"] = json!(1);
                }
            }
            i["data"] = data;
            st.interactions.insert(
                id,
                InteractionRec {
                    token: token.clone(),
                    kind,
                    channel_id,
                    guild_id,
                    dispatched_at: None,
                    acknowledged: false,
                    original: None,
                },
            );
            st.tokens.insert(token.clone(), id);
            st.pending.push_back(("INTERACTION_CREATE".into(), i));
            (id, token)
        };
        self.inner.flush_connections();
        out
    }

    /// Queues any dispatch event (`t`, `d`) as is.
    pub fn send_raw_dispatch(&self, event_name: &str, data: Value) {
        lock(&self.inner.state)
            .pending
            .push_back((event_name.to_string(), data));
        self.inner.flush_connections();
    }

    /// Closes every gateway connection abruptly (TCP close, no close frame).
    pub fn drop_connection(&self) {
        self.inner.control_all(|| Ctl::Drop);
    }

    /// Closes every gateway connection with a close frame (e.g. 4000, 4009).
    pub fn close_connection(&self, code: u16, reason: &str) {
        let reason = reason.to_string();
        self.inner.control_all(|| Ctl::Close(code, reason.clone()));
    }

    /// Sends op 7 Reconnect on every connection.
    pub fn request_reconnect(&self) {
        self.inner
            .control_all(|| Ctl::Raw(json!({"op": 7, "d": null, "s": null, "t": null})));
    }

    /// Sends op 9 Invalid Session (`d` = resumable) on every connection.
    pub fn invalidate_session(&self, resumable: bool) {
        self.inner
            .control_all(|| Ctl::Raw(json!({"op": 9, "d": resumable, "s": null, "t": null})));
    }

    // --- scripted REST failures -------------------------------------------

    /// The next `times` requests whose path contains `route` answer 429
    /// (`retry-after`, `x-ratelimit-*` headers and the JSON body).
    pub fn rate_limit_next(&self, route: &str, times: usize, retry_after_secs: f64) {
        lock(&self.inner.state).scripted.push(Scripted {
            route: route.to_string(),
            remaining: times,
            failure: Failure::RateLimit(retry_after_secs),
        });
    }

    /// The next request whose path contains `route` answers `status` with `body`.
    pub fn fail_next(&self, route: &str, status: u16, body: Value) {
        lock(&self.inner.state).scripted.push(Scripted {
            route: route.to_string(),
            remaining: 1,
            failure: Failure::Status(status, body),
        });
    }

    // --- gateway inspection -----------------------------------------------

    /// Websocket connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.inner.state).connections
    }

    /// Websocket connections currently open.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.state).conns.len()
    }

    pub fn identifies(&self) -> usize {
        lock(&self.inner.state).identifies
    }

    pub fn resumes(&self) -> usize {
        lock(&self.inner.state).resumes
    }

    /// Resumes that were honoured (answered with RESUMED).
    pub fn successful_resumes(&self) -> usize {
        lock(&self.inner.state).resumed
    }

    pub fn heartbeats(&self) -> usize {
        lock(&self.inner.state).heartbeats
    }

    /// READY dispatches sent.
    pub fn readies(&self) -> usize {
        lock(&self.inner.state).readies
    }

    /// `d` of the last Identify (token, intents, properties, shard, ...).
    pub fn last_identify(&self) -> Option<Value> {
        lock(&self.inner.state).last_identify.clone()
    }

    /// Every Identify received (answered or refused), in order: its `shard`
    /// field and when it came.
    pub fn identify_log(&self) -> Vec<IdentifyRecord> {
        lock(&self.inner.state).identify_log.clone()
    }

    /// The `shard` field of every Identify, in order (`Null` when absent).
    pub fn identify_shards(&self) -> Vec<Value> {
        self.identify_log().into_iter().map(|r| r.shard).collect()
    }

    /// Every frame the clients sent, parsed, in order.
    pub fn gateway_frames(&self) -> Vec<Value> {
        lock(&self.inner.state).frames.clone()
    }

    /// Every dispatch written to a socket (`{"op":0,"t":..,"s":..,"d":..}`), replays included.
    pub fn dispatched(&self) -> Vec<Value> {
        lock(&self.inner.state)
            .dispatched
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// The dispatches written on connections of shard `[id, num_shards]`.
    pub fn dispatched_on(&self, shard: [u64; 2]) -> Vec<Value> {
        lock(&self.inner.state)
            .dispatched
            .iter()
            .filter(|(s, _)| *s == shard)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Events queued and not yet written to any connection.
    pub fn pending_events(&self) -> usize {
        lock(&self.inner.state).pending.len()
    }

    /// Waits until an Identify was answered with READY (since start).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.readies > 0).await
    }

    /// Waits until at least `n` READY dispatches were sent.
    pub async fn wait_readies(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.readies >= n).await
    }

    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.connections >= n).await
    }

    /// Waits until at least `n` Resumes were received.
    pub async fn wait_for_resumes(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.resumes >= n).await
    }

    /// Waits until every queued event was written to a connection.
    pub async fn wait_delivered(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.pending.is_empty()).await
    }

    // --- REST inspection --------------------------------------------------

    /// Every REST request, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.inner.state).calls.clone()
    }

    /// Requests with this method (case-insensitive; `""` or `"*"` = any) whose
    /// path contains `path_substring`.
    pub fn calls_matching(&self, method: &str, path_substring: &str) -> Vec<RecordedCall> {
        lock(&self.inner.state)
            .calls
            .iter()
            .filter(|c| call_matches(c, method, path_substring))
            .cloned()
            .collect()
    }

    pub async fn wait_for_calls(
        &self,
        method: &str,
        path_substring: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedCall> {
        self.wait_until(timeout, |st| {
            st.calls
                .iter()
                .filter(|c| call_matches(c, method, path_substring))
                .count()
                >= n
        })
        .await;
        self.calls_matching(method, path_substring)
    }

    pub fn clear_calls(&self) {
        lock(&self.inner.state).calls.clear();
    }

    /// Messages the bot posted successfully in a channel (current state after
    /// edits; deleted ones removed), oldest first.
    pub fn channel_messages(&self, channel_id: u64) -> Vec<Value> {
        lock(&self.inner.state).bot_messages_in(channel_id)
    }

    /// Waits until the bot posted at least `n` messages in the channel.
    pub async fn wait_for_channel_messages(
        &self,
        channel_id: u64,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        self.wait_until(timeout, |st| st.bot_messages_in(channel_id).len() >= n)
            .await;
        self.channel_messages(channel_id)
    }

    /// Any stored message (user or bot) by id.
    pub fn message(&self, message_id: u64) -> Option<Value> {
        lock(&self.inner.state)
            .all_messages
            .get(&message_id)
            .cloned()
    }

    /// Callback, `@original` edits and follow-ups of an interaction, in order
    /// (failed ones included; see `status`).
    pub fn interaction_responses(&self, interaction_id: u64) -> Vec<RecordedCall> {
        lock(&self.inner.state)
            .calls
            .iter()
            .filter(|c| c.interaction_id == Some(interaction_id))
            .cloned()
            .collect()
    }

    pub async fn wait_for_interaction(
        &self,
        interaction_id: u64,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedCall> {
        self.wait_until(timeout, |st| {
            st.calls
                .iter()
                .filter(|c| c.interaction_id == Some(interaction_id))
                .count()
                >= n
        })
        .await;
        self.interaction_responses(interaction_id)
    }

    /// The interaction's original response message (after edits), if any.
    pub fn interaction_original(&self, interaction_id: u64) -> Option<Value> {
        lock(&self.inner.state)
            .interactions
            .get(&interaction_id)
            .and_then(|i| i.original.clone())
    }

    /// Registered commands (global for `None`), as returned by Discord.
    pub fn registered_commands(&self, guild_id: Option<u64>) -> Value {
        Value::Array(
            lock(&self.inner.state)
                .commands
                .get(&guild_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    async fn wait_until(&self, timeout: Duration, pred: impl Fn(&St) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.inner.changed.notified());
            notified.as_mut().enable();
            if pred(&lock(&self.inner.state)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&lock(&self.inner.state));
            }
        }
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.inner.control_all(|| Ctl::Drop);
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

fn call_matches(c: &RecordedCall, method: &str, path_substring: &str) -> bool {
    (method.is_empty() || method == "*" || c.method.eq_ignore_ascii_case(method))
        && c.path.contains(path_substring)
}

// ---------------------------------------------------------------------------
// Shared state

pub(super) struct Inner {
    token: String,
    addr: SocketAddr,
    bot_user: Value,
    state: Mutex<St>,
    /// Woken on every recorded change.
    changed: Notify,
}

impl Inner {
    fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Accepts `token` or `Bot token`.
    fn token_matches(&self, token: &str) -> bool {
        token.strip_prefix("Bot ").unwrap_or(token) == self.token
    }

    fn notify(&self) {
        self.changed.notify_waiters();
    }

    fn flush_connections(&self) {
        self.control_all(|| Ctl::Flush);
        self.notify();
    }

    fn control_all(&self, ctl: impl Fn() -> Ctl) {
        for (_, tx) in &lock(&self.state).conns {
            let _ = tx.send(ctl());
        }
    }
}

/// Instructions to a gateway connection task.
enum Ctl {
    /// Write pending events (if authenticated).
    Flush,
    /// Drop the socket without a close frame.
    Drop,
    /// Send a close frame and end.
    Close(u16, String),
    /// Write a raw payload.
    Raw(Value),
}

enum Failure {
    RateLimit(f64),
    Status(u16, Value),
}

struct Scripted {
    route: String,
    remaining: usize,
    failure: Failure,
}

struct InteractionRec {
    token: String,
    /// 2 command, 4 autocomplete.
    kind: u64,
    channel_id: u64,
    guild_id: Option<u64>,
    dispatched_at: Option<tokio::time::Instant>,
    acknowledged: bool,
    /// Original response message (callback type 4 or 5).
    original: Option<Value>,
}

#[derive(Clone, Copy)]
struct ChannelInfo {
    guild_id: Option<u64>,
    /// DM recipient.
    recipient: Option<u64>,
}

struct Session {
    id: String,
    seq: u64,
    /// Dispatches written in this session (for Resume replay).
    log: Vec<Value>,
    /// `[shard_id, num_shards]` it was identified with.
    shard: [u64; 2],
}

#[derive(Default)]
struct St {
    last_snowflake: u64,
    // gateway
    heartbeat_interval_ms: u64,
    resume_allowed: bool,
    connections: usize,
    next_conn_id: u64,
    conns: Vec<(u64, mpsc::UnboundedSender<Ctl>)>,
    identifies: usize,
    resumes: usize,
    resumed: usize,
    readies: usize,
    heartbeats: usize,
    last_identify: Option<Value>,
    identify_log: Vec<IdentifyRecord>,
    frames: Vec<Value>,
    /// Every dispatch written, with the shard of the connection it went to.
    dispatched: Vec<([u64; 2], Value)>,
    /// One session per shard.
    sessions: Vec<Session>,
    /// `session_start_limit.max_concurrency` of `GET /gateway/bot`.
    max_concurrency: u64,
    pending: VecDeque<(String, Value)>,
    // REST
    calls: Vec<RecordedCall>,
    next_seq: u64,
    scripted: Vec<Scripted>,
    users: HashMap<u64, Value>,
    channels: HashMap<u64, ChannelInfo>,
    dm_by_user: HashMap<u64, u64>,
    /// Bot message ids per channel, in posting order.
    bot_messages: HashMap<u64, Vec<u64>>,
    all_messages: HashMap<u64, Value>,
    commands: HashMap<Option<u64>, Vec<Value>>,
    /// Ids handed out for command names never registered: (guild, name) → id.
    adhoc_command_ids: HashMap<(Option<u64>, String), u64>,
    interactions: HashMap<u64, InteractionRec>,
    tokens: HashMap<String, u64>,
    ack_deadline: Option<Duration>,
    // CDN (`cdn`): bytes by path, and every download.
    cdn: HashMap<String, Vec<u8>>,
    cdn_downloads: Vec<CdnDownload>,
}

impl St {
    fn snowflake(&mut self) -> u64 {
        objects::next_snowflake(&mut self.last_snowflake)
    }

    fn remember_user(&mut self, id: u64, username: &str) -> Value {
        let u = objects::user(id, username, false);
        self.users.insert(id, u.clone());
        u
    }

    fn user_or_default(&mut self, id: u64) -> Value {
        if let Some(u) = self.users.get(&id) {
            return u.clone();
        }
        self.remember_user(id, &format!("user{id}"))
    }

    fn note_channel(&mut self, channel_id: u64, guild_id: Option<u64>, user_id: u64) {
        let info = ChannelInfo {
            guild_id,
            recipient: guild_id.is_none().then_some(user_id),
        };
        self.channels.insert(channel_id, info);
        if guild_id.is_none() {
            self.dm_by_user.insert(user_id, channel_id);
        }
    }

    /// Id of the registered command `name` (guild first, then global), or a
    /// stable made-up id.
    fn command_id(&mut self, guild_id: Option<u64>, name: &str) -> u64 {
        let lists = [guild_id, None];
        for key in lists.iter().filter(|k| guild_id.is_some() || k.is_none()) {
            if let Some(id) = self
                .commands
                .get(key)
                .into_iter()
                .flatten()
                .find(|c| c["name"] == json!(name))
                .and_then(|c| objects::id_of(&c["id"]))
            {
                return id;
            }
        }
        let key = (guild_id, name.to_string());
        if let Some(id) = self.adhoc_command_ids.get(&key) {
            return *id;
        }
        let id = self.snowflake();
        self.adhoc_command_ids.insert(key, id);
        id
    }

    fn bot_messages_in(&self, channel_id: u64) -> Vec<Value> {
        self.bot_messages
            .get(&channel_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.all_messages.get(id).cloned())
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
