//! The runtime state database `<state>/state.db` (DESIGN §2): SQLite (bundled), WAL
//! mode, one connection per process behind a mutex, numbered migrations tracked in
//! `PRAGMA user_version`. Sessions (`session::sqlite`) and credential cooldowns and
//! usage (`auth::cooldown`) keep their tables here.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state database {path}: {message}. Check the file and its permissions; `remoteclaw doctor` can help."
    )]
    Backend { path: String, message: String },
}

/// Migrations, in order; index + 1 is the schema version they produce.
const MIGRATIONS: &[&str] = &[
    // v1: sessions and their history.
    "CREATE TABLE sessions (
        key         TEXT PRIMARY KEY,
        model       TEXT,
        pin_profile TEXT,
        pin_source  TEXT,
        pin_since   INTEGER,
        rev         INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE history (
        session_key TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        role        TEXT NOT NULL,
        content     TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (session_key, seq)
    ) WITHOUT ROWID;",
    // v2: credential cooldowns and usage, and small key/value facts (imports done).
    "CREATE TABLE credential_state (
        credential  TEXT NOT NULL,
        model       TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        reason      TEXT NOT NULL,
        until_ms    INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (credential, model)
    ) WITHOUT ROWID;
    CREATE TABLE credential_usage (
        credential  TEXT PRIMARY KEY,
        last_used   INTEGER,
        last_good   INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;",
    // v3: pairing requests and approvals (who may talk to the bot).
    "CREATE TABLE pairing (
        channel     TEXT NOT NULL,
        sender      TEXT NOT NULL,
        code        TEXT NOT NULL,
        label       TEXT,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        approved_at INTEGER,
        PRIMARY KEY (channel, sender)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX pairing_code ON pairing (channel, code);",
    // v4: what the chat channels received and answered (crash recovery, no double answers).
    "CREATE TABLE inbox (
        channel     TEXT NOT NULL,
        id          TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        payload     TEXT NOT NULL,
        status      TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        answered_at INTEGER,
        PRIMARY KEY (channel, id)
    ) WITHOUT ROWID;
    CREATE INDEX inbox_pending ON inbox (channel, status, seq);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateDb {
    /// Open (creating 0600 if needed, in a 0700 directory) and migrate.
    pub fn open(path: &Path) -> Result<std::sync::Arc<StateDb>, StoreError> {
        let fail = |message: String| StoreError::Backend {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent() {
            crate::config::paths::ensure_private_dir(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        }
        let existed = path.exists();
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        #[cfg(unix)]
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let setup = |c: &Connection| -> rusqlite::Result<()> {
            c.busy_timeout(Duration::from_secs(5))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")
        };
        setup(&conn).map_err(|e| fail(e.to_string()))?;
        let db = StateDb {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        db.migrate()?;
        Ok(std::sync::Arc::new(db))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Run `f` on the connection (blocking; call from a blocking context in async code).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| self.err("a previous operation panicked"))?;
        f(&mut conn).map_err(|e| self.err(e))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let path = self.path.display().to_string();
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(rusqlite::Error::InvalidParameterName(format!(
                    "{path} has schema version {version}, newer than this RemoteClaw understands ({SCHEMA_VERSION}); upgrade RemoteClaw"
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            }
            tx.commit()
        })
    }

    /// Current schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    /// Changes whenever another connection (another process) commits: a cheap way to
    /// know cached state is stale.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))
        })
    }
}

/// Run a blocking store call on tokio's blocking pool, so a slow disk or another
/// process holding the database never stalls an async worker thread.
pub async fn blocking<T: Send + 'static>(
    db: &StateDb,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(db.err(format!("store task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_to_current_version_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        drop(db);
        assert_eq!(
            StateDb::open(&path).unwrap().schema_version().unwrap(),
            SCHEMA_VERSION,
            "reopening is a no-op"
        );
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(
            StateDb::open(&path)
                .unwrap_err()
                .to_string()
                .contains("upgrade RemoteClaw")
        );
    }

    #[test]
    fn data_version_moves_when_another_connection_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = StateDb::open(&path).unwrap();
        let b = StateDb::open(&path).unwrap();
        let v = a.data_version().unwrap();
        b.with(|c| c.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", []))
            .unwrap();
        assert_ne!(a.data_version().unwrap(), v);
    }
}
