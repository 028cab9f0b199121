//! What a session keeps durably (model choice, pin, history) and the `SessionStore`
//! trait every backend implements. Backends are synchronous; the session manager calls
//! them off the async threads.

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
use std::sync::Arc;

/// What the async store calls return.
pub type StoreFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send>>;

/// Runs a blocking store call on tokio's blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Backend {
            path: "session store".into(),
            message: format!("store task failed: {e}"),
        })
    })
}

pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// The session with its newest `history_limit` messages, if it exists.
    fn load(&self, key: &str, history_limit: usize) -> Result<Option<SessionRecord>, StoreError>;
    /// The session's revision (0 when it does not exist): cheap staleness check.
    fn rev(&self, key: &str) -> Result<i64, StoreError>;
    /// Set model choice and pin (both, as given), committed before returning.
    fn set_choice(
        &self,
        key: &str,
        model: Option<&str>,
        pin: Option<&Pin>,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    /// Append messages and keep only the newest `keep` messages.
    fn append_history(
        &self,
        key: &str,
        messages: &[ChatMessage],
        keep: usize,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    /// Forget the conversation; keep model and pin.
    fn clear_history(&self, key: &str, now_ms: i64) -> Result<i64, StoreError>;
    /// Remove the session entirely. Returns whether it existed.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    fn list(&self) -> Result<Vec<SessionSummary>, StoreError>;
    /// One session's summary, if it exists.
    fn summary(&self, key: &str) -> Result<Option<SessionSummary>, StoreError>;

    /// [`set_choice`](Self::set_choice) for async callers (by default on the blocking
    /// pool; a backend with its own writer overrides it).
    fn set_choice_async(
        self: Arc<Self>,
        key: String,
        model: Option<String>,
        pin: Option<Pin>,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        Box::pin(on_blocking_pool(move || {
            self.set_choice(&key, model.as_deref(), pin.as_ref(), now_ms)
        }))
    }

    /// [`append_history`](Self::append_history) for async callers.
    fn append_history_async(
        self: Arc<Self>,
        key: String,
        messages: Vec<ChatMessage>,
        keep: usize,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        Box::pin(on_blocking_pool(move || {
            self.append_history(&key, &messages, keep, now_ms)
        }))
    }

    /// [`clear_history`](Self::clear_history) for async callers.
    fn clear_history_async(self: Arc<Self>, key: String, now_ms: i64) -> StoreFuture<i64> {
        Box::pin(on_blocking_pool(move || self.clear_history(&key, now_ms)))
    }
}
