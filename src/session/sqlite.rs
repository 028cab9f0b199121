//! The embedded session store, in the state database (`crate::state`): reads on its
//! read connections, writes on its writer (from async code, through its group-commit
//! writer thread). Every commit survives a process crash; a `/model` change is also synced to disk
//! (`synchronous = FULL` for that transaction) so an acknowledged choice survives a
//! power loss too, while history appends skip the fsync.

use super::store::{
    Pin, PinSource, SessionRecord, SessionStore, SessionSummary, StoreError, StoreFuture,
};
use crate::providers::{ChatMessage, Role};
use crate::state::StateDb;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;

/// Sessions in the state database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<StateDb>,
}

impl SqliteStore {
    pub fn new(db: Arc<StateDb>) -> SqliteStore {
        SqliteStore { db }
    }

    /// Open (creating and migrating) the state database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            db: StateDb::open(path)?,
        })
    }
}

/// The pin stored in columns `at`, `at+1`, `at+2` (profile, source, since).
pub(crate) fn read_pin(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Pin>> {
    Ok(match r.get::<_, Option<String>>(at)? {
        Some(profile) => Some(Pin {
            profile,
            source: PinSource::parse(&r.get::<_, Option<String>>(at + 1)?.unwrap_or_default()),
            since: r.get::<_, Option<i64>>(at + 2)?.unwrap_or(0),
        }),
        None => None,
    })
}

fn upsert_bump(tx: &Connection, key: &str, now: i64) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO sessions (key, created_at, updated_at) VALUES (?1, ?2, ?2)
         ON CONFLICT(key) DO UPDATE SET rev = rev + 1, updated_at = ?2
         RETURNING rev",
    )?
    .query_row(params![key, now], |r| r.get(0))
}

fn set_choice_tx(
    c: &mut Connection,
    key: &str,
    model: Option<&str>,
    pin: Option<&Pin>,
    now: i64,
) -> rusqlite::Result<i64> {
    // Atomic without a savepoint here: every write runs in a transaction or savepoint of its own.
    let tx = &*c;
    let rev = upsert_bump(tx, key, now)?;
    tx.prepare_cached("UPDATE sessions SET model = ?2, pin_profile = ?3, pin_source = ?4, pin_since = ?5 WHERE key = ?1")?.execute(params![key, model, pin.map(|p| &p.profile), pin.map(|p| p.source.as_str()), pin.map(|p| p.since)])?;
    Ok(rev)
}

fn append_tx(
    c: &mut Connection,
    key: &str,
    messages: &[ChatMessage],
    keep: usize,
    now: i64,
) -> rusqlite::Result<i64> {
    // Atomic without a savepoint here: every write runs in a transaction or savepoint of its own.
    let tx = &*c;
    let rev = upsert_bump(tx, key, now)?;
    let next: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM history WHERE session_key = ?1")?
        .query_row([key], |r| r.get(0))?;
    for (i, m) in messages.iter().enumerate() {
        tx.prepare_cached("INSERT INTO history (session_key, seq, role, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![key, next + i as i64, m.role.as_str(), m.content, now])?;
    }
    // The newest message is now `next + len - 1`; everything more than `keep` below it goes.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let newest = next.saturating_add(i64::try_from(messages.len()).unwrap_or(i64::MAX)) - 1;
    tx.prepare_cached("DELETE FROM history WHERE session_key = ?1 AND seq <= ?2")?
        .execute(params![key, newest.saturating_sub(keep)])?;
    Ok(rev)
}

fn clear_tx(c: &mut Connection, key: &str, now: i64) -> rusqlite::Result<i64> {
    // Atomic without a savepoint here: every write runs in a transaction or savepoint of its own.
    let tx = &*c;
    let rev = upsert_bump(tx, key, now)?;
    tx.prepare_cached("DELETE FROM history WHERE session_key = ?1")?
        .execute([key])?;
    Ok(rev)
}

fn load_tx(
    c: &mut Connection,
    key: &str,
    history_limit: usize,
) -> rusqlite::Result<Option<SessionRecord>> {
    // One read transaction: the revision and the history belong together.
    let tx = c.savepoint()?;
    let row = tx
        .prepare_cached("SELECT model, pin_profile, pin_source, pin_since, rev, updated_at FROM sessions WHERE key = ?1")?.query_row([key],
            |r| {
                let pin = read_pin(r, 1)?;
                Ok(SessionRecord { key: key.to_string(), model: r.get(0)?, pin, history: Vec::new(), rev: r.get(4)?, generation: String::new(), updated_at: r.get(5)? })
            })
        .optional()?;
    let Some(mut rec) = row else { return Ok(None) };
    let limit = i64::try_from(history_limit).unwrap_or(i64::MAX);
    let mut msgs: Vec<ChatMessage> = tx
        .prepare_cached(
            "SELECT role, content FROM history WHERE session_key = ?1 ORDER BY seq DESC LIMIT ?2",
        )?
        .query_map(params![key, limit], |r| {
            Ok(ChatMessage {
                role: Role::from_stored(&r.get::<_, String>(0)?),
                content: r.get(1)?,
                images: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    msgs.reverse();
    rec.history = msgs;
    Ok(Some(rec))
}

fn delete_tx(c: &mut Connection, key: &str) -> rusqlite::Result<bool> {
    let tx = c.savepoint()?;
    tx.prepare_cached("DELETE FROM history WHERE session_key = ?1")?
        .execute([key])?;
    let n = tx
        .prepare_cached("DELETE FROM sessions WHERE key = ?1")?
        .execute([key])?;
    tx.commit()?;
    Ok(n > 0)
}

/// Summaries of every session, or of the one named.
fn summaries_tx(c: &mut Connection, only: Option<&str>) -> rusqlite::Result<Vec<SessionSummary>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.key, s.model, s.pin_profile, s.pin_source, s.pin_since, s.updated_at,
                (SELECT COUNT(*) FROM history h WHERE h.session_key = s.key)
         FROM sessions s WHERE ?1 IS NULL OR s.key = ?1 ORDER BY s.updated_at DESC, s.key",
    )?;
    let rows = stmt.query_map([only], |r| {
        let pin = read_pin(r, 2)?;
        Ok(SessionSummary {
            key: r.get(0)?,
            model: r.get(1)?,
            pin,
            updated_at: r.get(5)?,
            history_len: usize::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        })
    })?;
    rows.collect()
}

impl SqliteStore {
    /// `f` on a read connection, on the blocking pool.
    fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            let reader = db.clone();
            crate::state::blocking(&db, move || reader.read(f)).await
        })
    }

    /// `f` on the writer thread (group commit); `durable` syncs the commit to disk.
    fn write_async<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<T> {
        let db = self.db.clone();
        Box::pin(async move { db.write_async(durable, f).await })
    }
}

impl SessionStore for SqliteStore {
    fn load(&self, key: &str, history_limit: usize) -> StoreFuture<Option<SessionRecord>> {
        let key = key.to_string();
        self.read_async(move |c| load_tx(c, &key, history_limit))
    }

    fn rev(&self, key: &str) -> StoreFuture<i64> {
        let key = key.to_string();
        self.read_async(move |c| {
            c.prepare_cached("SELECT rev FROM sessions WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()
                .map(|v| v.unwrap_or(0))
        })
    }

    fn load_if_changed(
        &self,
        key: &str,
        history_limit: usize,
        known_generation: &str,
        known_rev: i64,
    ) -> StoreFuture<Option<Option<SessionRecord>>> {
        // SQLite sessions have no generation: state.db does not lose a session under a
        // running process.
        let known_generation = known_generation.to_string();
        let key = key.to_string();
        self.read_async(move |c| {
            let rev: i64 = c
                .prepare_cached("SELECT rev FROM sessions WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            if rev == known_rev && known_generation.is_empty() {
                return Ok(None);
            }
            Ok(Some(load_tx(c, &key, history_limit)?))
        })
    }

    fn set_choice(
        &self,
        key: &str,
        model: Option<&str>,
        pin: Option<&Pin>,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        let (key, model, pin) = (key.to_string(), model.map(str::to_string), pin.cloned());
        self.write_async(true, move |c| {
            set_choice_tx(c, &key, model.as_deref(), pin.as_ref(), now_ms)
        })
    }

    fn append_history(
        &self,
        key: &str,
        messages: &[ChatMessage],
        keep: usize,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        let (key, messages) = (key.to_string(), messages.to_vec());
        self.write_async(false, move |c| append_tx(c, &key, &messages, keep, now_ms))
    }

    fn clear_history(&self, key: &str, now_ms: i64) -> StoreFuture<i64> {
        let key = key.to_string();
        self.write_async(false, move |c| clear_tx(c, &key, now_ms))
    }

    fn delete(&self, key: &str) -> StoreFuture<bool> {
        let key = key.to_string();
        self.write_async(false, move |c| delete_tx(c, &key))
    }

    fn list(&self) -> StoreFuture<Vec<SessionSummary>> {
        self.read_async(|c| summaries_tx(c, None))
    }

    fn summary(&self, key: &str) -> StoreFuture<Option<SessionSummary>> {
        let key = key.to_string();
        self.read_async(move |c| Ok(summaries_tx(c, Some(&key))?.pop()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        (
            SqliteStore::open(&dir.path().join("state.db")).expect("open"),
            dir,
        )
    }

    #[tokio::test]
    async fn choice_history_and_revisions() {
        let (s, _d) = store();
        assert_eq!(s.rev("web:a").await.unwrap(), 0);
        assert!(s.load("web:a", 10).await.unwrap().is_none());
        let pin = Pin {
            profile: "anthropic:work".into(),
            source: PinSource::User,
            since: 5,
        };
        let r1 = s
            .set_choice("web:a", Some("anthropic/claude-opus-4-5"), Some(&pin), 10)
            .await
            .unwrap();
        let r2 = s
            .append_history(
                "web:a",
                &[ChatMessage::user("q1"), ChatMessage::assistant("a1")],
                100,
                11,
            )
            .await
            .unwrap();
        assert!(r2 > r1);
        let rec = s.load("web:a", 100).await.unwrap().unwrap();
        assert_eq!(rec.model.as_deref(), Some("anthropic/claude-opus-4-5"));
        assert_eq!(rec.pin, Some(pin));
        assert_eq!(
            rec.history,
            vec![ChatMessage::user("q1"), ChatMessage::assistant("a1")]
        );
        assert_eq!(s.rev("web:a").await.unwrap(), rec.rev);

        s.clear_history("web:a", 12).await.unwrap();
        let rec = s.load("web:a", 100).await.unwrap().unwrap();
        assert!(rec.history.is_empty());
        assert!(rec.pin.is_some(), "clearing history keeps the pin");
        s.set_choice("web:a", None, None, 13).await.unwrap();
        assert_eq!(s.load("web:a", 100).await.unwrap().unwrap().pin, None);
        assert!(s.delete("web:a").await.unwrap());
        assert!(!s.delete("web:a").await.unwrap());
    }

    #[tokio::test]
    async fn history_is_trimmed_to_keep() {
        let (s, _d) = store();
        for i in 0..6 {
            s.append_history(
                "k",
                &[
                    ChatMessage::user(format!("u{i}")),
                    ChatMessage::assistant(format!("a{i}")),
                ],
                4,
                i,
            )
            .await
            .unwrap();
        }
        let rec = s.load("k", 100).await.unwrap().unwrap();
        let texts: Vec<&str> = rec.history.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["u4", "a4", "u5", "a5"]);
        assert_eq!(s.load("k", 2).await.unwrap().unwrap().history.len(), 2);
        assert_eq!(s.list().await.unwrap()[0].history_len, 4);
        assert_eq!(s.summary("k").await.unwrap().unwrap().history_len, 4);
        assert!(s.summary("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn migrations_are_versioned_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.db.schema_version().unwrap(), crate::state::SCHEMA_VERSION);
        s.set_choice("k", Some("m/x"), None, 1).await.unwrap();
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.load("k", 1).await.unwrap().unwrap().model.as_deref(),
            Some("m/x")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
