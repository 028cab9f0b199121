//! What the alerts task has reported, so a state is reported once (DESIGN §11): one
//! entry per alert key (`<target>|<subject>`) holding the state last reported there.
//! A subject that is fine has no entry. `state.db` keeps them in the `alerts` table
//! (migration v6); Redis in one hash (`alerts::redis`).
//!
//! The only write is [`AlertStore::set`]: atomic "set the state, say whether it changed",
//! so of two replicas that see the same change at once exactly one reports it.

use crate::state::{StateDb, StoreFuture, blocking};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

/// Where reported alert states are kept: `state.db` ([`SqliteAlerts`]) or Redis
/// ([`super::redis::RedisAlerts`]).
pub trait AlertStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every entry: (key, state), in no particular order.
    fn load(&self) -> StoreFuture<Vec<(String, String)>>;
    /// Set `key` to `state` (`None`: remove it) at once; whether that changed anything
    /// (`false`: it already held `state`, e.g. another replica set it first).
    fn set(&self, key: &str, state: Option<&str>, now_ms: i64) -> StoreFuture<bool>;
}

/// Alert states in `state.db`. Reads and writes run on the blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteAlerts {
    db: Arc<StateDb>,
}

impl SqliteAlerts {
    pub fn new(db: Arc<StateDb>) -> SqliteAlerts {
        SqliteAlerts { db }
    }
}

/// Set or remove one entry in the open transaction; whether it changed.
fn set_tx(
    c: &mut rusqlite::Connection,
    key: &str,
    state: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    match state {
        None => Ok(c
            .prepare_cached("DELETE FROM alerts WHERE key = ?1")?
            .execute([key])?
            > 0),
        Some(state) => {
            let current: Option<String> = c
                .prepare_cached("SELECT state FROM alerts WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?;
            if current.as_deref() == Some(state) {
                return Ok(false);
            }
            c.prepare_cached(
                "INSERT INTO alerts (key, state, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET state = ?2, updated_at = ?3",
            )?
            .execute(params![key, state, now_ms])?;
            Ok(true)
        }
    }
}

impl AlertStore for SqliteAlerts {
    fn load(&self) -> StoreFuture<Vec<(String, String)>> {
        let db = self.db.clone();
        Box::pin(async move {
            let d = db.clone();
            blocking(&d, move || {
                db.read(|c| {
                    let mut stmt = c.prepare_cached("SELECT key, state FROM alerts")?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
            })
            .await
        })
    }

    fn set(&self, key: &str, state: Option<&str>, now_ms: i64) -> StoreFuture<bool> {
        let (db, key, state) = (self.db.clone(), key.to_string(), state.map(str::to_string));
        Box::pin(async move {
            let d = db.clone();
            // `write` runs it in one BEGIN IMMEDIATE transaction: the read and the write
            // are atomic against every other process on the file.
            blocking(&d, move || {
                db.write(move |c| set_tx(c, &key, state.as_deref(), now_ms))
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn set_says_whether_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAlerts::new(StateDb::open(&dir.path().join("state.db")).unwrap());
        assert!(store.set("k", Some("expired"), 1).await.unwrap());
        assert!(!store.set("k", Some("expired"), 2).await.unwrap());
        assert!(store.set("k", Some("disabled:auth"), 3).await.unwrap());
        assert_eq!(
            store.load().await.unwrap(),
            vec![("k".to_string(), "disabled:auth".to_string())]
        );
        assert!(store.set("k", None, 4).await.unwrap());
        assert!(!store.set("k", None, 5).await.unwrap());
        assert!(store.load().await.unwrap().is_empty());
    }
}
