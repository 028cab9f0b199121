//! What the chat channels received and answered (DESIGN §8 "nothing lost"): every
//! inbound platform message is recorded (with enough of it to answer it again) before
//! the platform is told it arrived, and marked answered once its reply is sent. After a
//! crash the channel answers what is still pending; a message already answered is
//! never answered twice, even when the platform delivers it again. Also the channels'
//! read positions (the Telegram update offset).
//!
//! No call blocks a runtime worker (a CLI holding `state.db` never stalls one): writes
//! go to the store's group-commit writer thread, reads to tokio's blocking pool. Storage is the `inbox` table of `state.db` (migration v4).

use crate::clock::Clock;
use crate::state::{StateDb, StoreError, StoreFuture, blocking};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

const PENDING: &str = "pending";
const ANSWERED: &str = "answered";

/// What [`Inbox::receive`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First time seen: answer it.
    New,
    /// Seen before and not answered yet (a redelivery, or a crash before the reply):
    /// whoever replays pending messages answers it.
    Pending,
    /// Already answered: never answer again.
    Answered,
}

/// A received message that has no answer yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    pub id: String,
    /// What the channel stored to answer it again (its own serialization).
    pub payload: String,
    pub received_at: i64,
}

/// Where the inbox is kept: `state.db` ([`SqliteInbox`]) or Redis, behind one
/// interface. `now_ms` comes from the caller's clock.
pub trait InboxStore: Send + Sync + std::fmt::Debug + 'static {
    /// Record an inbound message unless known; says what to do with it (atomic: of two
    /// replicas receiving the same id, exactly one gets [`Receipt::New`]).
    fn receive(&self, channel: &str, id: &str, payload: &str, now_ms: i64) -> StoreFuture<Receipt>;
    /// Mark answered (creating the mark when the message was never recorded).
    fn answered(&self, channel: &str, id: &str, now_ms: i64) -> StoreFuture<()>;
    /// Messages received and not answered, oldest first.
    fn pending(&self, channel: &str) -> StoreFuture<Vec<PendingMessage>>;
    /// Forget answered marks from before `cutoff_ms`; how many went.
    fn prune(&self, channel: &str, cutoff_ms: i64) -> StoreFuture<usize>;
    /// A channel's stored read position.
    fn offset(&self, key: &str) -> StoreFuture<Option<i64>>;
    fn set_offset(&self, key: &str, value: i64) -> StoreFuture<()>;
}

/// The inbox in `state.db` (table `inbox`, migration v4; offsets in `meta`).
#[derive(Debug, Clone)]
pub struct SqliteInbox {
    db: Arc<StateDb>,
}

impl SqliteInbox {
    pub fn new(db: Arc<StateDb>) -> SqliteInbox {
        SqliteInbox { db }
    }
}

#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn InboxStore>,
    clock: Arc<dyn Clock>,
    /// With replicas (a Redis store, DESIGN §9) the inbox claims the messages this
    /// replica answers: a lease with a TTL, renewed while it works, given back once the
    /// message is answered (held in the coordinator, one set per process). Replaying
    /// pending messages (at start, or on taking over the Telegram poller) leaves those
    /// claimed by a live replica alone; they are answered here only if their claim runs
    /// out (the replica died) while they are still pending.
    claims: Option<crate::state::lease::Coordinator>,
    /// Answered marks being tried again (one registry per process, see [`MarkRetries`]).
    retries: Arc<MarkRetries>,
}

/// Answered marks that could not be written and are being tried again: one registry per
/// process (the app's), whichever `Inbox` the failure happened in. A message whose mark
/// is being retried was answered: it is not pending for this process (no replay or
/// sweep here answers it again). At exit ([`MarkRetries::finish`]) each retry makes one
/// last try at once.
#[derive(Debug)]
pub struct MarkRetries {
    /// The claim names (`inbox:<channel>:<id>`) of the marks being retried.
    marking: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The retries, on the runtime the registry was made on (the gateway's): a retry
    /// outlives the runtime of the channel that failed to mark (the Telegram poller's).
    tasks: crate::tasks::Tasks,
    /// Set at exit: every retry tries once more now, then stops.
    last_call: tokio::sync::watch::Sender<bool>,
}

impl Default for MarkRetries {
    fn default() -> Self {
        MarkRetries {
            marking: Default::default(),
            tasks: crate::tasks::Tasks::on_current_runtime(),
            last_call: tokio::sync::watch::channel(false).0,
        }
    }
}

impl MarkRetries {
    fn is_marking(&self, name: &str) -> bool {
        self.marking.lock().is_ok_and(|m| m.contains(name))
    }

    fn set_marking(&self, name: &str, on: bool) {
        if let Ok(mut m) = self.marking.lock() {
            if on {
                m.insert(name.to_string());
            } else {
                m.remove(name);
            }
        }
    }

    /// Before exit: every retry tries once more at once; wait up to `limit` for them.
    pub async fn finish(&self, limit: std::time::Duration) {
        self.last_call.send_replace(true);
        if !self.tasks.wait(limit).await {
            tracing::warn!("some answered marks were not written before exit");
        }
    }
}

/// The claim name of a message: its channel and platform id (no secret in it).
fn claim_name(channel: &str, id: &str) -> String {
    format!("inbox:{channel}:{id}")
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// The inbox in `state.db`.
    pub fn new(db: Arc<StateDb>, clock: Arc<dyn Clock>) -> Inbox {
        Inbox::with_store(Arc::new(SqliteInbox::new(db)), clock)
    }

    pub fn with_store(store: Arc<dyn InboxStore>, clock: Arc<dyn Clock>) -> Inbox {
        Inbox {
            store,
            clock,
            claims: None,
            retries: Arc::default(),
        }
    }

    /// Use the process's registry of answered marks being retried (the app's).
    pub fn with_retries(mut self, retries: Arc<MarkRetries>) -> Inbox {
        self.retries = retries;
        self
    }

    /// Claim the messages this replica answers (replicas sharing a Redis store).
    pub fn with_claims(mut self, coordinator: Option<crate::state::lease::Coordinator>) -> Inbox {
        self.claims = coordinator;
        self
    }

    /// Claim a message for this replica: `true` when it is ours now (or there are no
    /// replicas, or the store cannot say: answering beats losing it).
    pub async fn claim(&self, channel: &str, id: &str) -> bool {
        let Some(c) = &self.claims else {
            return true;
        };
        match c.hold_claim(&claim_name(channel, id)).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(channel, id, "could not claim a message: {e}");
                true
            }
        }
    }

    /// Record an inbound message (`channel` e.g. `telegram:<botId>`, `id` its platform
    /// id) unless it is known already; says what to do with it.
    pub async fn receive(
        &self,
        channel: &str,
        id: &str,
        payload: &str,
    ) -> Result<Receipt, StoreError> {
        let receipt = self
            .store
            .receive(channel, id, payload, self.clock.now_ms())
            .await?;
        // New, but claimed by another replica already (a sweep there found it pending
        // between our record and our claim): that replica answers it.
        if receipt == Receipt::New && !self.claim(channel, id).await {
            return Ok(Receipt::Pending);
        }
        Ok(receipt)
    }

    /// The reply to this message was sent (or it needs none): never answer it again.
    /// The payload is dropped; only the mark stays.
    ///
    /// When the mark cannot be written (a store blip), it is tried again in the
    /// background, 1 s after and then doubling up to a minute, until it is written or
    /// the process exits (one last try then, [`MarkRetries::finish`]). Meanwhile the
    /// message is not pending for this process, and with replicas its claim stays held,
    /// so no replica answers it a second time. The first error is returned for the
    /// caller to log.
    pub async fn answered(&self, channel: &str, id: &str) -> Result<(), StoreError> {
        let done = self.store.answered(channel, id, self.clock.now_ms()).await;
        match &done {
            Ok(()) => {
                if let Some(c) = &self.claims {
                    c.release(&claim_name(channel, id));
                }
            }
            Err(_) => self.mark_later(channel, id),
        }
        done
    }

    /// Write the answered mark of `id` until it is written (or the last try at exit),
    /// then give its claim back.
    fn mark_later(&self, channel: &str, id: &str) {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let (claims, retries) = (self.claims.clone(), self.retries.clone());
        let name = claim_name(channel, id);
        let (channel, id) = (channel.to_string(), id.to_string());
        retries.set_marking(&name, true);
        let mut last_call = retries.last_call.subscribe();
        let registry = retries.clone();
        let retry = async move {
            let mut backoff = crate::clock::Backoff::new();
            loop {
                let last = tokio::select! {
                    _ = tokio::time::sleep(backoff.next()) => false,
                    _ = last_call.wait_for(|last| *last) => true,
                };
                match store.answered(&channel, &id, clock.now_ms()).await {
                    Ok(()) => {
                        tracing::info!(channel, id, "marked a message answered on a later try");
                        break;
                    }
                    Err(e) if last => {
                        tracing::warn!(
                            channel,
                            id,
                            "could not mark a message answered before exit; it may be answered again at the next start: {e}"
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(channel, id, "still cannot mark a message answered: {e}");
                    }
                }
            }
            registry.set_marking(&name, false);
            if let Some(c) = &claims {
                c.release(&name);
            }
        };
        retries.tasks.spawn(retry);
    }

    /// Messages of `channel` received but not answered, oldest first (those whose
    /// answered mark this process is still trying to write are answered: left out).
    pub async fn pending(&self, channel: &str) -> Result<Vec<PendingMessage>, StoreError> {
        let mut pending = self.store.pending(channel).await?;
        pending.retain(|p| !self.retries.is_marking(&claim_name(channel, &p.id)));
        Ok(pending)
    }

    /// The pending messages of `channel` to answer here, oldest first: those this
    /// replica claimed now (or held already), not those another live replica is
    /// answering. Without replicas, all of them.
    pub async fn pending_to_answer(
        &self,
        channel: &str,
    ) -> Result<Vec<PendingMessage>, StoreError> {
        let pending = self.pending(channel).await?;
        if self.claims.is_none() {
            return Ok(pending);
        }
        let mut mine = Vec::new();
        for p in pending {
            if self.claim(channel, &p.id).await {
                mine.push(p);
            }
        }
        Ok(mine)
    }

    /// Wait while another replica answers message `id`: `true` once it is this
    /// replica's to answer (the other's claim ran out and the message is still
    /// pending), `false` once it was answered.
    pub async fn wait_for_claim(&self, channel: &str, id: &str) -> bool {
        let Some(c) = &self.claims else {
            return true;
        };
        let every = c.ttl() / 3;
        loop {
            tokio::time::sleep(every).await;
            match self.pending(channel).await {
                Ok(p) if !p.iter().any(|m| m.id == id) => return false,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(
                        channel,
                        id,
                        "could not look at a message another replica answers: {e}"
                    );
                    continue;
                }
            }
            if self.claim(channel, id).await {
                return true;
            }
        }
    }

    /// Forget answered marks older than `keep_ms` (platforms do not redeliver after a
    /// day). Returns how many went.
    pub async fn prune(&self, channel: &str, keep_ms: i64) -> Result<usize, StoreError> {
        self.store
            .prune(channel, self.clock.now_ms().saturating_sub(keep_ms))
            .await
    }

    /// A channel's stored read position (e.g. `telegram:offset:<botId>`).
    pub async fn offset(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.store.offset(key).await
    }

    /// Store a channel's read position.
    pub async fn set_offset(&self, key: &str, value: i64) -> Result<(), StoreError> {
        self.store.set_offset(key, value).await
    }
}

impl InboxStore for SqliteInbox {
    fn receive(&self, channel: &str, id: &str, payload: &str, now: i64) -> StoreFuture<Receipt> {
        let db = self.db.clone();
        let (channel, id, payload) = (channel.to_string(), id.to_string(), payload.to_string());
        Box::pin(async move {
            db.write_async(false, move |c| {
                // Atomic without a savepoint here: every write runs in a transaction or savepoint of its own.
                let tx = &*c;
                let added = tx
                    .prepare_cached(
                        "INSERT INTO inbox (channel, id, seq, payload, status, received_at)
                         VALUES (?1, ?2,
                                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM inbox WHERE channel = ?1),
                                 ?3, ?4, ?5)
                         ON CONFLICT (channel, id) DO NOTHING",
                    )?
                    .execute(params![channel, id, payload, PENDING, now])?;
                if added == 1 {
                    return Ok(Receipt::New);
                }
                let known: Option<String> = tx
                    .prepare_cached("SELECT status FROM inbox WHERE channel = ?1 AND id = ?2")?
                    .query_row(params![channel, id], |r| r.get(0))
                    .optional()?;
                let receipt = match known.as_deref() {
                    Some(ANSWERED) => Receipt::Answered,
                    _ => Receipt::Pending,
                };
                Ok(receipt)
            })
            .await
        })
    }

    fn answered(&self, channel: &str, id: &str, now: i64) -> StoreFuture<()> {
        let db = self.db.clone();
        let (channel, id) = (channel.to_string(), id.to_string());
        Box::pin(async move {
            db
            .write_one_async(move |c| {
                c.prepare_cached("INSERT INTO inbox (channel, id, seq, payload, status, received_at, answered_at)
                     VALUES (?1, ?2, 0, '', ?3, ?4, ?4)
                     ON CONFLICT (channel, id) DO UPDATE SET
                       status = ?3, payload = '', answered_at = ?4")?.execute(params![channel, id, ANSWERED, now])
                .map(|_| ())
            })
            .await
        })
    }

    fn pending(&self, channel: &str) -> StoreFuture<Vec<PendingMessage>> {
        let db = self.db.clone();
        let channel = channel.to_string();
        Box::pin(async move {
            blocking(&db.clone(), move || {
                db.read(|c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT id, payload, received_at FROM inbox
                     WHERE channel = ?1 AND status = ?2 ORDER BY seq",
                    )?;
                    let rows = stmt.query_map(params![channel, PENDING], |r| {
                        Ok(PendingMessage {
                            id: r.get(0)?,
                            payload: r.get(1)?,
                            received_at: r.get(2)?,
                        })
                    })?;
                    rows.collect()
                })
            })
            .await
        })
    }

    fn prune(&self, channel: &str, cutoff: i64) -> StoreFuture<usize> {
        let db = self.db.clone();
        let channel = channel.to_string();
        Box::pin(async move {
            blocking(&db.clone(), move || {
                db.write(|c| {
                    c.prepare_cached(
                        "DELETE FROM inbox WHERE channel = ?1 AND status = ?2 AND answered_at < ?3",
                    )?
                    .execute(params![channel, ANSWERED, cutoff])
                })
            })
            .await
        })
    }

    fn offset(&self, key: &str) -> StoreFuture<Option<i64>> {
        let db = self.db.clone();
        let key = key.to_string();
        Box::pin(async move {
            blocking(&db.clone(), move || {
                db.read(|c| {
                    c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                        .query_row([&key], |r| r.get::<_, String>(0))
                        .optional()
                })
                .map(|v| v.and_then(|v| v.parse().ok()))
            })
            .await
        })
    }

    fn set_offset(&self, key: &str, value: i64) -> StoreFuture<()> {
        let db = self.db.clone();
        let key = key.to_string();
        Box::pin(async move {
            db.write_one_async(move |c| {
                c.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = ?2",
                )?
                .execute(params![key, value.to_string()])
                .map(|_| ())
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn inbox() -> (Inbox, Arc<ManualClock>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db")).unwrap();
        let clock = ManualClock::new(1_000);
        (Inbox::new(db, clock.clone()), clock, dir)
    }

    #[tokio::test]
    async fn a_message_is_answered_once_and_pending_ones_survive_a_restart() {
        let (inbox, clock, dir) = inbox();
        assert_eq!(inbox.receive("tg", "1", "a").await.unwrap(), Receipt::New);
        assert_eq!(inbox.receive("tg", "2", "b").await.unwrap(), Receipt::New);
        assert_eq!(
            inbox.receive("tg", "1", "a").await.unwrap(),
            Receipt::Pending
        );
        inbox.answered("tg", "1").await.unwrap();
        assert_eq!(
            inbox.receive("tg", "1", "a").await.unwrap(),
            Receipt::Answered
        );
        // Another channel's ids are its own.
        assert_eq!(inbox.receive("dc", "1", "x").await.unwrap(), Receipt::New);

        // "Restart": a fresh handle on the same file sees what is pending, in order.
        let again = Inbox::new(
            StateDb::open(&dir.path().join("state.db")).unwrap(),
            clock.clone(),
        );
        assert_eq!(inbox.receive("tg", "3", "c").await.unwrap(), Receipt::New);
        let pending: Vec<(String, String)> = again
            .pending("tg")
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.payload))
            .collect();
        assert_eq!(
            pending,
            [("2".into(), "b".into()), ("3".into(), "c".into())]
        );

        clock.advance_ms(10_000);
        assert_eq!(again.prune("tg", 5_000).await.unwrap(), 1);
        assert_eq!(again.prune("tg", 5_000).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn offsets_round_trip() {
        let (inbox, _c, _d) = inbox();
        assert_eq!(inbox.offset("telegram:offset:1").await.unwrap(), None);
        inbox.set_offset("telegram:offset:1", 42).await.unwrap();
        inbox.set_offset("telegram:offset:1", 43).await.unwrap();
        assert_eq!(inbox.offset("telegram:offset:1").await.unwrap(), Some(43));
    }
}
