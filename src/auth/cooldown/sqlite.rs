//! Cooldowns in `state.db` (tables `credential_state`, one row per credential, secret
//! fingerprint and model (migration v7), and `credential_usage`, migration v2; import
//! markers in `meta`). Reads and writes run on the blocking pool; `version` is SQLite's `data_version`, which moves
//! whenever any connection or process commits.

use super::{CooldownRow, CooldownState, CooldownStore, ImportEntry, Reason};
use crate::state::{StateDb, StoreError, StoreFuture, blocking};
use rusqlite::params;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SqliteCooldowns {
    db: Arc<StateDb>,
}

impl SqliteCooldowns {
    pub fn new(db: Arc<StateDb>) -> SqliteCooldowns {
        SqliteCooldowns { db }
    }

    /// Runs a blocking call on the blocking pool.
    fn off_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateDb) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            let d = db.clone();
            blocking(&d, move || f(&db)).await
        })
    }

    /// A write, on the blocking pool (each in its own transaction). Not through the
    /// group-commit writer thread: cooldown writes are few, and a tokio blocking task
    /// keeps a paused test clock from jumping past a turn's deadline while it runs.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<T> {
        self.off_thread(move |db| db.write(f))
    }
}

fn load_rows(c: &mut rusqlite::Connection) -> rusqlite::Result<CooldownState> {
    let mut out = CooldownState::default();
    let mut stmt = c.prepare_cached(
        "SELECT credential, model, fingerprint, reason, until_ms, error_count FROM credential_state",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let reason: String = r.get(3)?;
        out.rows.push((
            r.get(0)?,
            r.get(1)?,
            CooldownRow {
                fingerprint: r.get(2)?,
                reason: Reason::parse(&reason),
                until: r.get(4)?,
                count: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
            },
        ));
    }
    let mut stmt = c.prepare_cached(
        "SELECT credential, last_used FROM credential_usage WHERE last_used IS NOT NULL",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        out.last_used.push((r.get(0)?, r.get(1)?));
    }
    Ok(out)
}

impl CooldownStore for SqliteCooldowns {
    fn version(&self) -> StoreFuture<i64> {
        self.off_thread(|db| db.data_version())
    }

    fn load(&self) -> StoreFuture<CooldownState> {
        self.off_thread(|db| db.read(load_rows))
    }

    fn set(&self, credential: &str, scope: &str, row: CooldownRow, now_ms: i64) -> StoreFuture<()> {
        let (credential, scope) = (credential.to_string(), scope.to_string());
        self.write(move |c| {
            let tx = c.savepoint()?;
            tx.prepare_cached("INSERT INTO credential_state (credential, model, fingerprint, reason, until_ms, error_count, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(credential, fingerprint, model) DO UPDATE SET reason = ?4, until_ms = ?5, error_count = ?6, updated_at = ?7")?
                .execute(params![credential, scope, row.fingerprint, row.reason.as_str(), row.until, row.count, now_ms])?;
            tx.prepare_cached("INSERT INTO credential_usage (credential, last_used) VALUES (?1, ?2) ON CONFLICT(credential) DO UPDATE SET last_used = ?2")?
                .execute(params![credential, now_ms])?;
            tx.commit()
        })
    }

    fn touch(&self, credential: &str, now_ms: i64, good: bool) -> StoreFuture<()> {
        let credential = credential.to_string();
        self.write(move |c| {
            c.prepare_cached("INSERT INTO credential_usage (credential, last_used, last_good) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END)
                 ON CONFLICT(credential) DO UPDATE SET last_used = ?2, last_good = CASE WHEN ?3 THEN ?2 ELSE last_good END")?
                .execute(params![credential, now_ms, good])
                .map(|_| ())
        })
    }

    fn clear_standing(
        &self,
        credential: &str,
        model: &str,
        fingerprints: &[String],
    ) -> StoreFuture<()> {
        let (credential, model) = (credential.to_string(), model.to_string());
        let fingerprints = fingerprints.to_vec();
        self.write(move |c| {
            let tx = c.savepoint()?;
            for fp in &fingerprints {
                tx.prepare_cached(
                    "DELETE FROM credential_state WHERE credential = ?1 AND model IN (?2, '') AND fingerprint = ?3",
                )?
                .execute(params![credential, model, fp])?;
            }
            tx.commit()
        })
    }

    fn import_once(
        &self,
        marker: &str,
        entries: Vec<ImportEntry>,
        now_ms: i64,
    ) -> StoreFuture<bool> {
        let key = format!("usage_import:{marker}");
        self.write(move |c| {
            let tx = c.savepoint()?;
            let done: bool = tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM meta WHERE key = ?1)")?.query_row([&key], |r| r.get(0))?;
            if done {
                return Ok(false);
            }
            for e in &entries {
                if let Some(t) = e.last_used {
                    tx.prepare_cached("INSERT INTO credential_usage (credential, last_used) VALUES (?1, ?2) ON CONFLICT(credential) DO UPDATE SET last_used = MAX(COALESCE(last_used, 0), ?2)")?.execute(params![e.credential, t])?;
                }
                for (reason, until, fp) in e.active(now_ms) {
                    tx.prepare_cached("INSERT OR IGNORE INTO credential_state (credential, model, fingerprint, reason, until_ms, error_count, updated_at) VALUES (?1, '', ?2, ?3, ?4, ?5, ?6)")?.execute(params![e.credential, fp, reason.as_str(), until, e.error_count.unwrap_or(1), now_ms])?;
                }
            }
            tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2)")?.execute(params![key, now_ms.to_string()])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn clear_rows(&self, rows: Vec<(String, String, String)>) -> StoreFuture<usize> {
        self.write(move |c| {
            let tx = c.savepoint()?;
            let mut n = 0;
            for (credential, model, fingerprint) in &rows {
                n += tx
                    .prepare_cached(
                        "DELETE FROM credential_state WHERE credential = ?1 AND model = ?2 AND fingerprint = ?3",
                    )?
                    .execute(params![credential, model, fingerprint])?;
            }
            tx.commit()?;
            Ok(n)
        })
    }

    fn clear(&self, credential: Option<&str>) -> StoreFuture<usize> {
        let credential = credential.map(str::to_string);
        self.write(move |c| match credential {
            Some(id) => c
                .prepare_cached("DELETE FROM credential_state WHERE credential = ?1")?
                .execute([id]),
            None => c
                .prepare_cached("DELETE FROM credential_state")?
                .execute([]),
        })
    }
}
