//! What a session keeps durably (model choice, pin, history) and the `SessionStore`
//! trait every backend implements (`sqlite`, embedded; `redis`, shared by replicas).
//! The trait is async so that a networked backend never blocks a runtime thread.

use crate::providers::ChatMessage;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinSource {
    /// Set by a person with `/model <m>@<profile>`.
    User,
    /// Set by RemoteClaw itself (e.g. sticking to the credential that answered).
    Auto,
}

impl PinSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PinSource::User => "user",
            PinSource::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> PinSource {
        if s == "auto" {
            PinSource::Auto
        } else {
            PinSource::User
        }
    }
}

/// A pinned credential profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub profile: String,
    pub source: PinSource,
    /// Epoch milliseconds.
    pub since: i64,
}

/// One session as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRecord {
    pub key: String,
    /// `provider/model` chosen for this session; `None` = the configured default.
    pub model: Option<String>,
    pub pin: Option<Pin>,
    pub history: Vec<ChatMessage>,
    /// Bumped on every write; lets a process notice another one changed the session.
    pub rev: i64,
    /// Which incarnation of the session this is: an id the Redis backend gives a session
    /// when it creates (or `state migrate` rewrites) it; empty for SQLite and for sessions
    /// written before generations existed. A session removed and made again — as after
    /// Redis restarted empty — counts its `rev` from 1 again under a new generation, so
    /// (`generation`, `rev`) tells a cached copy from the stored one where `rev` cannot.
    pub generation: String,
    pub updated_at: i64,
}

/// A session in listings (no history bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub key: String,
    pub model: Option<String>,
    pub pin: Option<Pin>,
    pub history_len: usize,
    pub updated_at: i64,
}

pub use crate::state::StoreError;

pub use crate::state::StoreFuture;

/// The durable side of sessions. Every call is async and never blocks the calling
/// runtime thread: the SQLite backend runs its reads on tokio's blocking pool and its
/// writes on the state database's writer thread; the Redis backend awaits the network.
/// Each write bumps the session's `rev` atomically and returns the new value.
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// The session with its newest `history_limit` messages, if it exists.
    fn load(&self, key: &str, history_limit: usize) -> StoreFuture<Option<SessionRecord>>;
    /// The session's revision (0 when it does not exist): cheap staleness check.
    fn rev(&self, key: &str) -> StoreFuture<i64>;
    /// [`load`](Self::load) unless the session is still at `known_rev` of
    /// `known_generation` (see [`SessionRecord::generation`]; a session that does not
    /// exist is rev 0 of generation `""`): `None` when unchanged, `Some(None)` when it
    /// does not exist. What a turn does first, so a backend answers it in one trip where
    /// it can.
    fn load_if_changed(
        &self,
        key: &str,
        history_limit: usize,
        known_generation: &str,
        known_rev: i64,
    ) -> StoreFuture<Option<Option<SessionRecord>>>;
    /// Set model choice and pin (both, as given), committed before the future resolves.
    fn set_choice(
        &self,
        key: &str,
        model: Option<&str>,
        pin: Option<&Pin>,
        now_ms: i64,
    ) -> StoreFuture<i64>;
    /// Append messages and keep only the newest `keep` messages.
    fn append_history(
        &self,
        key: &str,
        messages: &[ChatMessage],
        keep: usize,
        now_ms: i64,
    ) -> StoreFuture<i64>;
    /// Forget the conversation; keep model and pin.
    fn clear_history(&self, key: &str, now_ms: i64) -> StoreFuture<i64>;
    /// Remove the session entirely. Resolves to whether it existed.
    fn delete(&self, key: &str) -> StoreFuture<bool>;
    /// Every session, most recently updated first.
    fn list(&self) -> StoreFuture<Vec<SessionSummary>>;
    /// One session's summary, if it exists.
    fn summary(&self, key: &str) -> StoreFuture<Option<SessionSummary>>;
}
