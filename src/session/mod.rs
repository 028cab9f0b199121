//! Sessions: keys (`key`), durable state behind the async `SessionStore` trait (`store`,
//! with the embedded `sqlite` backend and the shared `redis` one), and the `SessionManager` that runs turns of one session
//! one at a time, in arrival order, while sessions run concurrently — within this process
//! (a queue per session), across the processes sharing a `state.db` (a lock file per
//! session, `turn_lock`) and across the replicas sharing a Redis store (`state::lease`).
//!
//! The store is the source of truth: a turn starts by checking the session's revision
//! there, so changes made by another process (the CLI, another gateway) are seen.
//! Idle sessions leave memory (`evict_idle`) but never the store.

pub mod key;
pub mod redis;
pub mod sqlite;
pub mod store;
pub mod turn_lock;

pub use store::{Pin, PinSource, SessionRecord, SessionStore, SessionSummary, StoreError};

use crate::clock::Clock;
use crate::providers::ChatMessage;
use crate::state::lease::{Coordinator, TurnTicket};
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, OwnedMutexGuard};
use turn_lock::{HeldLock, OpenLock, TurnLocks};

/// Messages that may wait per session besides the one being answered (DESIGN §8); one
/// more is refused with a busy reply.
pub const DEFAULT_MAX_PENDING: usize = 8;

/// Reply when a session's queue is full.
pub const BUSY_REPLY: &str =
    "Still working on your previous message — please wait for its reply before sending more.";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{BUSY_REPLY}")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session's state as a turn sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub model: Option<String>,
    pub pin: Option<Pin>,
    pub history: Vec<ChatMessage>,
    /// Store revision this state reflects; `NOT_LOADED` before the first load.
    rev: i64,
    /// The generation of the stored session that `rev` counts in
    /// ([`SessionRecord::generation`]).
    generation: String,
}

const NOT_LOADED: i64 = -1;

impl Default for SessionState {
    fn default() -> Self {
        SessionState {
            model: None,
            pin: None,
            history: Vec::new(),
            rev: NOT_LOADED,
            generation: String::new(),
        }
    }
}

impl SessionState {
    /// A state holding only a model choice and pin (for views of stored sessions).
    pub fn with_choice(model: Option<String>, pin: Option<Pin>) -> SessionState {
        SessionState {
            model,
            pin,
            ..SessionState::default()
        }
    }

    fn from_record(rec: Option<SessionRecord>) -> SessionState {
        match rec {
            Some(r) => SessionState {
                model: r.model,
                pin: r.pin,
                history: r.history,
                rev: r.rev,
                generation: r.generation,
            },
            None => SessionState {
                rev: 0,
                ..SessionState::default()
            },
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    head: Arc<Mutex<Head>>,
    pending: AtomicUsize,
    last_used: AtomicI64,
}

/// What the turn at the head of a session's queue has: the session's cached state, and
/// its lock file's handle kept between turns (`turn_lock`).
#[derive(Debug, Default)]
struct Head {
    state: SessionState,
    lock_file: Option<OpenLock>,
}

#[derive(Debug)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    live: DashMap<String, Arc<Slot>>,
    history_turns: usize,
    max_pending: usize,
    clock: Arc<dyn Clock>,
    /// Orders turns of a session across replicas (a Redis store).
    coordinator: Option<Coordinator>,
    /// Orders turns of a session across the processes sharing a `state.db` (when there
    /// is no coordinator). `None` with neither: the in-memory queue alone.
    locks: Option<TurnLocks>,
}

impl SessionManager {
    pub fn new(
        store: Arc<dyn SessionStore>,
        history_turns: usize,
        clock: Arc<dyn Clock>,
    ) -> SessionManager {
        SessionManager {
            store,
            live: DashMap::new(),
            history_turns,
            max_pending: DEFAULT_MAX_PENDING,
            clock,
            coordinator: None,
            locks: None,
        }
    }

    /// Turns of a session also wait for the other replicas' (DESIGN §9).
    pub fn with_coordinator(mut self, coordinator: Option<Coordinator>) -> Self {
        self.coordinator = coordinator;
        self
    }

    /// Turns of a session also wait for the other processes' on the same state dir
    /// (DESIGN §4), through the lock files in `locks`; unused with a coordinator, which
    /// orders turns across every replica already.
    pub fn with_turn_locks(mut self, locks: Option<TurnLocks>) -> Self {
        self.locks = locks;
        self
    }

    /// How many messages may wait per session besides the one being answered.
    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    fn history_limit(&self) -> usize {
        self.history_turns.saturating_mul(2)
    }

    /// Start a turn: wait (in arrival order) until the session is free, then load its
    /// current state. Refuses with `Busy` when too many messages are already waiting.
    pub async fn begin(&self, key: &str) -> Result<SessionTurn, SessionError> {
        let slot = self.live.entry(key.to_string()).or_default().clone();
        // `pending` counts the running turn too: it may reach 1 + max_pending.
        if slot.pending.fetch_add(1, Ordering::SeqCst) > self.max_pending {
            slot.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(SessionError::Busy);
        }
        // From here on the slot counts us; `Pending` gives the place back even if this
        // future is dropped while waiting.
        let pending = Pending {
            slot: slot.clone(),
            clock: self.clock.clone(),
        };
        let mut guard = slot.head.clone().lock_owned().await;
        // Only the head of this process's queue gets here: at most one waiter per
        // process for the replicas' ticket or the other processes' lock.
        let (ticket, file_lock) = match (&self.coordinator, &self.locks) {
            (Some(c), _) => (Some(c.turn(key).await?), None),
            (None, Some(locks)) => (None, locks.acquire(key, &mut guard.lock_file).await),
            (None, None) => (None, None),
        };
        let mut turn = SessionTurn {
            _ticket: ticket,
            _file_lock: file_lock,
            guard,
            _pending: pending,
            key: key.to_string(),
            store: self.store.clone(),
            keep: self.history_limit(),
            clock: self.clock.clone(),
        };
        let fresh = self
            .store
            .load_if_changed(
                key,
                self.history_limit(),
                &turn.guard.state.generation,
                turn.guard.state.rev,
            )
            .await?;
        if let Some(rec) = fresh {
            turn.guard.state = SessionState::from_record(rec);
        }
        Ok(turn)
    }

    /// The session's model choice and pin, without waiting for its turn (history empty).
    pub async fn choice(&self, key: &str) -> Result<SessionState, StoreError> {
        Ok(SessionState::from_record(self.store.load(key, 0).await?))
    }

    /// Drop sessions idle for `max_idle_ms` with nothing queued. Returns how many left.
    pub fn evict_idle(&self, max_idle_ms: i64) -> usize {
        let cutoff = self.clock.now_ms() - max_idle_ms;
        let before = self.live.len();
        self.live.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.pending.load(Ordering::SeqCst) > 0
                || slot.last_used.load(Ordering::SeqCst) >= cutoff
        });
        before - self.live.len()
    }

    /// Sessions held in memory now.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }
}

/// Exclusive access to one session for one turn. Writes go to the store first, then to
/// the cached state; dropping it lets the next message of the session in.
#[derive(Debug)]
pub struct SessionTurn {
    /// The session's turn across replicas; dropped (ended) before the local guard.
    _ticket: Option<TurnTicket>,
    /// The session's turn across the processes on this state dir; released before the
    /// local guard, so the next turn here finds it free (or another process's).
    _file_lock: Option<HeldLock>,
    guard: OwnedMutexGuard<Head>,
    _pending: Pending,
    key: String,
    store: Arc<dyn SessionStore>,
    keep: usize,
    clock: Arc<dyn Clock>,
}

/// One place in a session's queue; released on drop.
#[derive(Debug)]
struct Pending {
    slot: Arc<Slot>,
    clock: Arc<dyn Clock>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.slot
            .last_used
            .store(self.clock.now_ms(), Ordering::SeqCst);
        self.slot.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SessionTurn {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Our write made the stored session `rev`. One more than the revision the turn
    /// began with: nobody else wrote in between, and the cached state (updated by the
    /// caller) is what the store holds. Anything else: another process (a CLI `sessions
    /// reset`, a replica) wrote meanwhile, so the next turn reads the session again
    /// instead of keeping a history the store no longer has. The cached generation stays
    /// as the turn began: when this write made the session anew (Redis had lost it) the
    /// store's generation differs, and the next turn reads the session again.
    fn wrote(&mut self, rev: i64) {
        let s = self.state_mut();
        s.rev = if rev == s.rev.saturating_add(1) {
            rev
        } else {
            NOT_LOADED
        };
    }

    fn state_mut(&mut self) -> &mut SessionState {
        &mut self.guard.state
    }

    pub fn state(&self) -> &SessionState {
        &self.guard.state
    }

    /// Set model and pin; committed to the store before this returns.
    pub async fn set_choice(
        &mut self,
        model: Option<String>,
        pin: Option<Pin>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let rev = self
            .store
            .set_choice(&self.key, model.as_deref(), pin.as_ref(), now)
            .await?;
        self.wrote(rev);
        let s = self.state_mut();
        s.model = model;
        s.pin = pin;
        Ok(())
    }

    /// Keep a finished exchange (bounded to `session.historyTurns`).
    pub async fn append_exchange(
        &mut self,
        user: ChatMessage,
        assistant: ChatMessage,
    ) -> Result<(), StoreError> {
        let (now, keep) = (self.clock.now_ms(), self.keep);
        let msgs = vec![user, assistant];
        let rev = self
            .store
            .append_history(&self.key, &msgs, keep, now)
            .await?;
        self.wrote(rev);
        let s = self.state_mut();
        s.history.extend(msgs);
        let excess = s.history.len().saturating_sub(keep);
        s.history.drain(..excess);
        Ok(())
    }

    /// Start a fresh conversation; keep model and pin.
    pub async fn clear_history(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let rev = self.store.clear_history(&self.key, now).await?;
        self.wrote(rev);
        self.state_mut().history.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn manager() -> (Arc<SessionManager>, Arc<ManualClock>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(sqlite::SqliteStore::open(&dir.path().join("state.db")).expect("open"));
        let clock = ManualClock::new(1_000);
        (
            Arc::new(SessionManager::new(store, 2, clock.clone()).with_max_pending(3)),
            clock,
            dir,
        )
    }

    /// Another process writes the session while a turn runs (a CLI `sessions reset`
    /// between the turn's read and its write): the next turn sees what the store holds,
    /// not the history the turn had cached.
    #[tokio::test]
    async fn a_write_from_elsewhere_during_a_turn_is_seen_by_the_next_turn() {
        let (m, _c, _d) = manager();
        {
            let mut t = m.begin("web:a").await.unwrap();
            t.append_exchange(ChatMessage::user("old q"), ChatMessage::assistant("old a"))
                .await
                .unwrap();
        }
        {
            let mut t = m.begin("web:a").await.unwrap();
            assert_eq!(t.state().history.len(), 2);
            // Elsewhere: the history is cleared and the model set, while this turn runs.
            let store = m.store().clone();
            store.clear_history("web:a", 2_000).await.unwrap();
            store
                .set_choice("web:a", Some("openai/gpt-4o"), None, 2_000)
                .await
                .unwrap();
            t.append_exchange(ChatMessage::user("new q"), ChatMessage::assistant("new a"))
                .await
                .unwrap();
        }
        let t = m.begin("web:a").await.unwrap();
        let texts: Vec<&str> = t
            .state()
            .history
            .iter()
            .map(|h| h.content.as_str())
            .collect();
        assert_eq!(
            texts,
            ["new q", "new a"],
            "the store's history, not the cached one"
        );
        assert_eq!(t.state().model.as_deref(), Some("openai/gpt-4o"));
        drop(t);
        // Our own writes alone keep the cache as it is (and it matches the store).
        {
            let mut t = m.begin("web:a").await.unwrap();
            t.set_choice(None, None).await.unwrap();
            assert_eq!(t.state().rev, m.store().rev("web:a").await.unwrap());
        }
        let t = m.begin("web:a").await.unwrap();
        assert_eq!(t.state().model, None);
        assert_eq!(t.state().history.len(), 2);
    }

    /// Two managers on one state dir stand for two processes (the gateway and a CLI
    /// `agent`): a turn of a session waits for the other's turn of it to end, and then
    /// sees what that turn wrote.
    #[tokio::test(start_paused = true)]
    async fn a_turn_waits_for_another_process_turn_of_the_same_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let process = || {
            let store =
                Arc::new(sqlite::SqliteStore::open(&dir.path().join("state.db")).expect("open"));
            Arc::new(
                SessionManager::new(store, 2, ManualClock::new(0))
                    .with_turn_locks(Some(TurnLocks::in_state_dir(dir.path()))),
            )
        };
        let (a, b) = (process(), process());
        let mut first = a.begin("web:x").await.unwrap();
        let b2 = b.clone();
        let second = tokio::spawn(async move {
            let t = b2.begin("web:x").await.unwrap();
            t.state().history.len()
        });
        for _ in 0..600 {
            tokio::time::advance(std::time::Duration::from_secs(1)).await;
            assert!(!second.is_finished(), "two turns of web:x ran at once");
        }
        // Other sessions of the other process go on.
        drop(b.begin("web:y").await.unwrap());
        first
            .append_exchange(ChatMessage::user("q"), ChatMessage::assistant("a"))
            .await
            .unwrap();
        drop(first);
        assert_eq!(
            second.await.unwrap(),
            2,
            "the second turn sees the first's exchange"
        );
    }

    #[tokio::test]
    async fn state_survives_in_the_store_and_history_is_bounded() {
        let (m, _c, _d) = manager();
        {
            let mut t = m.begin("web:a").await.unwrap();
            t.set_choice(
                Some("openai/gpt-4o".into()),
                Some(Pin {
                    profile: "openai:x".into(),
                    source: PinSource::User,
                    since: 1,
                }),
            )
            .await
            .unwrap();
            for i in 0..3 {
                t.append_exchange(
                    ChatMessage::user(format!("u{i}")),
                    ChatMessage::assistant(format!("a{i}")),
                )
                .await
                .unwrap();
            }
            assert_eq!(t.state().history.len(), 4);
        }
        let rec = m.store().load("web:a", 100).await.unwrap().unwrap();
        assert_eq!(rec.history.len(), 4);
        assert_eq!(rec.history[0].content, "u1");
        assert_eq!(
            m.choice("web:a").await.unwrap().pin.map(|p| p.profile),
            Some("openai:x".into())
        );
    }

    #[tokio::test]
    async fn changes_by_another_process_are_seen_at_the_next_turn() {
        let (m, _c, _d) = manager();
        drop(m.begin("k").await.unwrap());
        m.store()
            .set_choice("k", Some("google/gemini-2.5-flash"), None, 5)
            .await
            .unwrap();
        let t = m.begin("k").await.unwrap();
        assert_eq!(t.state().model.as_deref(), Some("google/gemini-2.5-flash"));
    }

    #[tokio::test]
    async fn turns_of_one_session_run_in_arrival_order() {
        let (m, _c, _d) = manager();
        let m = Arc::new(
            SessionManager::new(m.store().clone(), 2, ManualClock::new(0)).with_max_pending(100),
        );
        let first = m.begin("s").await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (m2, order) = (m.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = m2.begin("s").await.unwrap();
                order.lock().unwrap().push(i);
            }));
            // Let task i reach the queue before task i+1 is spawned.
            while m.live.get("s").map(|s| s.pending.load(Ordering::SeqCst)) != Some(i + 2) {
                tokio::task::yield_now().await;
            }
        }
        // Another session is not held up by this one.
        drop(m.begin("other").await.unwrap());
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_session_queue_holds_eight_waiting_messages_besides_the_one_being_answered() {
        let (m, _c, _d) = manager();
        let m = Arc::new(SessionManager::new(
            m.store().clone(),
            2,
            ManualClock::new(0),
        ));
        let running = m.begin("s").await.unwrap();
        let mut waiting = Vec::new();
        for i in 0..DEFAULT_MAX_PENDING {
            let m2 = m.clone();
            let w = tokio::spawn(async move { m2.begin("s").await.map(|_| ()) });
            while m.live.get("s").map(|s| s.pending.load(Ordering::SeqCst)) != Some(i + 2) {
                assert!(!w.is_finished(), "waiting message {} was refused", i + 1);
                tokio::task::yield_now().await;
            }
            waiting.push(w);
        }
        assert_eq!(DEFAULT_MAX_PENDING, 8);
        assert!(
            matches!(m.begin("s").await, Err(SessionError::Busy)),
            "a ninth waiting message finds the queue full"
        );
        drop(running);
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        drop(m.begin("s").await.unwrap());
    }

    #[tokio::test]
    async fn with_max_pending_zero_answers_only_one_at_a_time() {
        let (m, _c, _d) = manager();
        let m = SessionManager::new(m.store().clone(), 2, ManualClock::new(0)).with_max_pending(0);
        let _a = m.begin("s").await.unwrap();
        assert!(matches!(m.begin("s").await, Err(SessionError::Busy)));
    }

    #[tokio::test]
    async fn idle_sessions_leave_memory_but_not_the_store() {
        let (m, clock, _d) = manager();
        let mut t = m.begin("idle").await.unwrap();
        t.set_choice(Some("openai/gpt-4o".into()), None)
            .await
            .unwrap();
        drop(t);
        drop(m.begin("busy").await.unwrap());
        assert_eq!(m.evict_idle(60_000), 0, "nothing idle long enough yet");
        clock.advance_ms(61_000);
        let held = m.begin("busy").await.unwrap();
        assert_eq!(m.evict_idle(60_000), 1, "only the idle one goes");
        assert_eq!(m.live_count(), 1);
        drop(held);
        assert_eq!(
            m.begin("idle").await.unwrap().state().model.as_deref(),
            Some("openai/gpt-4o")
        );
    }
}
