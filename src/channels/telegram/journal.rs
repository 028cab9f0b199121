//! Nothing lost, nothing twice (DESIGN §8): every Telegram update that may need an
//! answer is recorded in the [`Inbox`] before the next `getUpdates` acknowledges it to
//! Telegram, and marked answered once its reply is sent. The update offset stored for
//! the next start is the lowest update not yet answered (or the next one after all of
//! them), so it only moves past an update after that update's reply was sent. At start
//! the updates still pending (received, never answered: a crash) are handed back to be
//! answered.
//!
//! [`Ledger`] is the pure bookkeeping; [`Journal`] ties it to the inbox.

use crate::inbox::{Inbox, Receipt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use teloxide::types::{CallbackQuery, Message};
use tokio::time::Instant;

/// Answered marks are kept this long: Telegram keeps an unacknowledged update for 24 h.
const KEEP_ANSWERED_MS: i64 = 48 * 3600 * 1000;
/// How often old answered marks are swept.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Which updates are open (received, not answered) and how far Telegram was read.
#[derive(Debug, Default)]
pub struct Ledger {
    open: BTreeSet<i64>,
    /// One past the highest update received (or the stored offset at start).
    next: i64,
}

impl Ledger {
    /// At start: the stored offset, and the pending updates being answered again.
    pub fn new(stored: Option<i64>, pending: impl IntoIterator<Item = i64>) -> Ledger {
        Ledger {
            open: pending.into_iter().collect(),
            next: stored.unwrap_or(0).max(0),
        }
    }

    /// An update was received (recorded, or needing no answer at all).
    pub fn seen(&mut self, id: i64) {
        self.next = self.next.max(id.saturating_add(1));
    }

    /// An update was received and waits for its answer.
    pub fn open(&mut self, id: i64) {
        self.seen(id);
        self.open.insert(id);
    }

    /// An update found pending again (a sweep): open, the poll offset left as it is.
    pub fn reopen(&mut self, id: i64) {
        self.open.insert(id);
    }

    /// The update was answered.
    pub fn close(&mut self, id: i64) {
        self.open.remove(&id);
    }

    /// The offset to poll with: every update below it is recorded.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The offset safe to store: every update below it was answered.
    pub fn safe(&self) -> i64 {
        // An update reopened by a sweep may lie above what this poller has read.
        self.open.first().map_or(self.next, |&o| o.min(self.next))
    }

    /// Updates still waiting for their answer.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn is_open(&self, id: i64) -> bool {
        self.open.contains(&id)
    }

    /// Their ids.
    pub fn open_ids(&self) -> Vec<i64> {
        self.open.iter().copied().collect()
    }
}

/// What the inbox keeps of an update to answer it again after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Message(Box<Message>),
    CallbackQuery(Box<CallbackQuery>),
}

/// How an update is written to the inbox (reads back as [`Stored`]).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredRef<'a> {
    Message(&'a Message),
    CallbackQuery(&'a CallbackQuery),
}

/// The inbox and ledger of one bot.
#[derive(Debug)]
pub struct Journal {
    inbox: Inbox,
    /// `telegram:<botId>`: the inbox channel.
    channel: String,
    /// `telegram:offset:<botId>`: where the update offset is stored.
    offset_key: String,
    ledger: Mutex<Ledger>,
    /// The offset last written (so an unchanged one is not written again).
    stored: Mutex<Option<i64>>,
    /// When answered marks were last swept.
    pruned: Mutex<Option<Instant>>,
}

impl Journal {
    /// The journal of bot `bot_id`. Nothing is read yet: [`Journal::resync`] reads the
    /// stored offset and the updates to answer again, when this process is the one to
    /// answer them (at start, or on taking over polling from another replica).
    pub fn open(inbox: Inbox, bot_id: u64) -> Journal {
        Journal {
            inbox,
            channel: format!("telegram:{bot_id}"),
            offset_key: format!("telegram:offset:{bot_id}"),
            ledger: Mutex::new(Ledger::new(None, [])),
            stored: Mutex::new(None),
            pruned: Mutex::new(None),
        }
    }

    /// Read the stored offset and the unanswered updates again: returns those to answer,
    /// oldest first — not the ones this process is answering already, nor (with
    /// replicas) those another live replica is answering ([`Journal::sweep`] finds
    /// those if that replica dies).
    pub async fn resync(&self) -> Vec<(i64, Stored)> {
        let (inbox, channel, offset_key) = (&self.inbox, &self.channel, &self.offset_key);
        let stored = match inbox.offset(offset_key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("could not read the stored Telegram update offset: {e}");
                None
            }
        };
        let pending = match inbox.pending_to_answer(channel).await {
            Ok(mine) => mine,
            Err(e) => {
                tracing::warn!("could not read the Telegram messages left unanswered: {e}");
                Vec::new()
            }
        };
        let mut replay = self.decode(pending).await;
        if !replay.is_empty() {
            tracing::info!(
                count = replay.len(),
                "answering Telegram messages received before the last stop but never answered"
            );
        }
        let (mine, polled) = self.ledger(|l| (l.open_ids(), l.next()));
        replay.retain(|(id, _)| !mine.contains(id));
        let mut ledger = Ledger::new(
            stored,
            replay.iter().map(|(id, _)| *id).chain(mine.iter().copied()),
        );
        if polled > 0 {
            ledger.seen(polled - 1);
        }
        self.ledger(|l| *l = ledger);
        *self
            .stored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stored;
        replay
    }

    /// With replicas: the pending updates no live replica is answering (one died with
    /// them) and this process is not answering either, now claimed here; opened in
    /// the ledger, oldest first.
    pub async fn sweep(&self) -> Vec<(i64, Stored)> {
        let pending = match self.inbox.pending_to_answer(&self.channel).await {
            Ok(mine) => mine,
            Err(e) => {
                tracing::debug!("could not look for Telegram messages left unanswered: {e}");
                return Vec::new();
            }
        };
        let mut found = self.decode(pending).await;
        // Opened without moving the poll offset: an update below the offset that was
        // never recorded (another poller's last batch) must still be fetched.
        self.ledger(|l| {
            found.retain(|(id, _)| !l.is_open(*id));
            for (id, _) in &found {
                l.reopen(*id);
            }
        });
        found
    }

    /// Pending inbox entries as updates, in arrival order (a poll's updates are
    /// recorded concurrently, so the inbox's own order may differ: Telegram's update
    /// ids increase). One that cannot be read back is logged and marked answered.
    async fn decode(&self, pending: Vec<crate::inbox::PendingMessage>) -> Vec<(i64, Stored)> {
        let mut out = Vec::new();
        for p in pending {
            match (
                p.id.parse::<i64>(),
                serde_json::from_str::<Stored>(&p.payload),
            ) {
                (Ok(id), Ok(update)) => out.push((id, update)),
                (_, Err(e)) => {
                    tracing::warn!(
                        update = %p.id,
                        "dropping an unanswered Telegram update that cannot be read back ({e})"
                    );
                    if let Err(e) = self.inbox.answered(&self.channel, &p.id).await {
                        tracing::warn!("could not mark Telegram update {} answered: {e}", p.id);
                    }
                }
                (Err(_), Ok(_)) => {
                    tracing::warn!(update = %p.id, "dropping an inbox entry with a malformed update id");
                }
            }
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }

    fn ledger<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        let mut guard = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// An update that needs no answer (not for the bot, or of a kind it ignores).
    pub fn skip(&self, id: i64) {
        self.ledger(|l| l.seen(id));
    }

    /// Record an update before it is acknowledged. `true` = first time seen: answer
    /// it. A known one (answered, or pending and so being answered) is not.
    pub async fn receive(&self, id: i64, update: StoredRef<'_>) -> bool {
        let payload = match serde_json::to_string(&update) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    update = id,
                    "could not encode a Telegram update for the inbox: {e}"
                );
                String::new()
            }
        };
        // Open before it is recorded: a sweep (replicas) that finds it pending then
        // knows this process answers it.
        let was_open = self.ledger(|l| {
            let was = l.is_open(id);
            l.open(id);
            was
        });
        match self
            .inbox
            .receive(&self.channel, &id.to_string(), &payload)
            .await
        {
            Ok(Receipt::New) => true,
            Ok(Receipt::Pending | Receipt::Answered) => {
                // A second delivery: the first one, if open here, stays open.
                if !was_open {
                    self.ledger(|l| l.close(id));
                }
                false
            }
            Err(e) => {
                // Answer it anyway: losing it is worse than a second answer after a crash.
                tracing::warn!(update = id, "could not record a Telegram update: {e}");
                self.ledger(|l| l.open(id));
                true
            }
        }
    }

    /// The update's reply was sent (or it needs none): never answer it again.
    pub async fn answered(&self, id: i64) {
        if let Err(e) = self.inbox.answered(&self.channel, &id.to_string()).await {
            tracing::warn!(
                update = id,
                "could not mark a Telegram update answered (trying again in the background): {e}"
            );
        }
        self.ledger(|l| l.close(id));
    }

    /// The offset for the next `getUpdates` (acknowledges everything recorded).
    pub fn poll_offset(&self) -> i32 {
        i32::try_from(self.ledger(|l| l.next())).unwrap_or(i32::MAX)
    }

    /// Updates received and not answered yet.
    pub fn open_count(&self) -> usize {
        self.ledger(|l| l.open_count())
    }

    /// Forget answered marks older than two days, at most once an hour.
    pub async fn prune_if_due(&self) {
        let now = Instant::now();
        {
            let mut last = self
                .pruned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| now.duration_since(t) < PRUNE_EVERY) {
                return;
            }
            *last = Some(now);
        }
        match self.inbox.prune(&self.channel, KEEP_ANSWERED_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(forgotten = n, "old Telegram answered marks swept"),
            Err(e) => tracing::warn!("could not sweep old Telegram answered marks: {e}"),
        }
    }

    /// Store the offset below which every update was answered, if it moved.
    pub async fn record_offset(&self) {
        let safe = self.ledger(|l| l.safe());
        let unchanged = *self
            .stored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            == Some(safe);
        if unchanged || safe == 0 {
            return;
        }
        match self.inbox.set_offset(&self.offset_key, safe).await {
            Ok(()) => {
                *self
                    .stored
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(safe);
            }
            Err(e) => tracing::warn!("could not store the Telegram update offset: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_safe_offset_never_passes_an_unanswered_update() {
        let mut l = Ledger::new(None, []);
        assert_eq!((l.next(), l.safe()), (0, 0));
        l.open(10);
        l.open(11);
        l.seen(12);
        assert_eq!(l.next(), 13, "everything received is acknowledged");
        assert_eq!(l.safe(), 10, "10 has no answer yet");
        l.close(11);
        assert_eq!(l.safe(), 10);
        l.close(10);
        assert_eq!(l.safe(), 13);

        // At start: pending 7 and 9 from before a crash, 12 stored.
        let mut l = Ledger::new(Some(12), [7, 9]);
        assert_eq!((l.next(), l.safe()), (12, 7));
        l.close(7);
        l.close(9);
        assert_eq!(l.safe(), 12);
        l.seen(5);
        assert_eq!(l.next(), 12, "an old update never moves the offset back");
    }

    fn text_message(text: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "a"},
            "from": {"id": 42, "is_bot": false, "first_name": "a"},
            "text": text,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn pending_updates_come_back_in_arrival_order_and_answered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::state::StateDb::open(&dir.path().join("state.db")).unwrap();
        let inbox = Inbox::new(db, crate::clock::ManualClock::new(1_000));
        let journal = Journal::open(inbox.clone(), 7);
        assert!(journal.resync().await.is_empty());
        // Recorded concurrently: the later update first.
        for (id, text) in [(12, "second"), (11, "first"), (13, "answered")] {
            let msg = text_message(text);
            assert!(journal.receive(id, StoredRef::Message(&msg)).await);
        }
        assert!(
            !journal
                .receive(11, StoredRef::Message(&text_message("first")))
                .await,
            "a second delivery is not answered again"
        );
        journal.answered(13).await;
        journal.record_offset().await;
        assert_eq!(inbox.offset("telegram:offset:7").await.unwrap(), Some(11));

        let again = Journal::open(inbox.clone(), 7);
        let replay = again.resync().await;
        let texts: Vec<(i64, String)> = replay
            .into_iter()
            .map(|(id, u)| match u {
                Stored::Message(m) => (id, m.text().unwrap().to_string()),
                Stored::CallbackQuery(_) => panic!("a message was stored"),
            })
            .collect();
        assert_eq!(texts, [(11, "first".into()), (12, "second".into())]);
        assert_eq!(
            again.poll_offset(),
            11,
            "polling resumes at the stored offset"
        );
    }

    #[test]
    fn an_update_found_pending_again_leaves_the_poll_offset_alone() {
        // A new poller at offset 10 sweeps update 15 (left by a dead replica): updates
        // 10..15 may never have been recorded, so polling still starts at 10.
        let mut l = Ledger::new(Some(10), []);
        l.reopen(15);
        assert_eq!(l.next(), 10);
        assert_eq!(l.safe(), 10);
        assert!(l.is_open(15));
        l.close(15);
        assert_eq!(l.open_count(), 0);
    }

    #[test]
    fn a_stored_update_reads_back_as_it_was() {
        let json = serde_json::json!({
            "message_id": 101,
            "message_thread_id": 7,
            "is_topic_message": true,
            "date": 1_700_000_000,
            "chat": {"id": -1_001_234, "type": "supergroup", "title": "G", "is_forum": true},
            "from": {"id": 42, "is_bot": false, "first_name": "alice", "username": "alice"},
            "text": "@Bot  line one\n    indented",
            "entities": [{"type": "mention", "offset": 0, "length": 4}],
            "reply_to_message": {
                "message_id": 7, "message_thread_id": 7, "date": 1_699_990_000,
                "chat": {"id": -1_001_234, "type": "supergroup", "title": "G", "is_forum": true},
                "from": {"id": 42, "is_bot": false, "first_name": "alice"},
                "forum_topic_created": {"name": "T", "icon_color": 7_322_096},
                "is_topic_message": true
            }
        });
        let msg: Message = serde_json::from_value(json).unwrap();
        let text = serde_json::to_string(&StoredRef::Message(&msg)).unwrap();
        match serde_json::from_str::<Stored>(&text).unwrap() {
            Stored::Message(back) => assert_eq!(*back, msg),
            other => panic!("{other:?}"),
        }
    }
}
