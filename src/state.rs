//! The runtime state database `<state>/state.db` (DESIGN §2): SQLite (bundled), WAL
//! mode, numbered migrations tracked in `PRAGMA user_version`. Sessions
//! (`session::sqlite`), credential cooldowns and usage (`auth::cooldown`), pairing and
//! the channels' inbox keep their tables here.
//!
//! Connections: one writer (writes queue for it), a small pool of read connections and
//! one connection that watches `data_version`. While another process holds the write
//! lock, a writer here waits (up to the 5 s busy timeout) holding only the writer, and
//! reads go on: WAL lets readers see the last commit while someone writes.
//!
//! Every call blocks; async code runs it on tokio's blocking pool ([`blocking`]), never
//! on a runtime worker. [`Recheck`] lets a hot path serve from memory and look at the
//! disk again only now and then.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open; more are opened while many reads run at once.
const MAX_IDLE_READERS: usize = 8;

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
    CREATE INDEX inbox_pending ON inbox (channel, status, seq);
    CREATE INDEX inbox_seq ON inbox (channel, seq);",
    // v5: tokens used, per session and credential (DESIGN §10 "Usage").
    "CREATE TABLE usage (
        session       TEXT NOT NULL,
        credential    TEXT NOT NULL,
        input_tokens  INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        turns         INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (session, credential)
    ) WITHOUT ROWID;
    CREATE INDEX usage_credential ON usage (credential);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    /// Writes, one at a time.
    writer: Mutex<Connection>,
    /// Idle read connections (`query_only`): a reader takes one, or opens one, and puts
    /// it back.
    readers: Mutex<Vec<Connection>>,
    /// Where `data_version` is asked: the counter is per connection, so always this one.
    watcher: Mutex<Connection>,
}

/// Open a connection to `path` with our settings (busy timeout, WAL, NORMAL sync).
/// Prepared statements kept per connection: every query of the hot paths (inbox,
/// sessions, usage, cooldowns) is parsed once, not once per message.
const STATEMENT_CACHE: usize = 64;

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(c)
}

/// A read connection: refuses to write, so a read never takes the write lock (the
/// journal mode is the file's, set by the writer).
fn connect_reader(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "query_only", true)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(c)
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
        let writer = connect(path).map_err(|e| fail(e.to_string()))?;
        #[cfg(unix)]
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let watcher = connect_reader(path).map_err(|e| fail(e.to_string()))?;
        let db = StateDb {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            watcher: Mutex::new(watcher),
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

    /// Run `f` on the write connection, after any write of this process before it
    /// (blocking: from async code, call it inside [`blocking`]).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| self.err("a previous write panicked"))?;
        f(&mut conn).map_err(|e| self.err(e))
    }

    /// Same as [`write`](Self::write) (for callers that read and write in one go).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.write(f)
    }

    /// Run `f` on a read connection: it sees the last commit and never waits for a
    /// writer, ours or another process's. `f` cannot write (`query_only`). Blocking.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        if self.path == Path::new(":memory:") {
            // Every connection to ":memory:" is a database of its own: use the one.
            return self.write(f);
        }
        let idle = self
            .readers
            .lock()
            .map_err(|_| self.err("the reader pool was poisoned"))?
            .pop();
        let mut conn = match idle {
            Some(c) => c,
            None => connect_reader(&self.path).map_err(|e| self.err(e))?,
        };
        let result = f(&mut conn).map_err(|e| self.err(e));
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
        result
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let path = self.path.display().to_string();
        self.write(|conn| {
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
        self.read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    /// Changes whenever anyone commits (this process's writer or another process): a
    /// cheap way to know cached state is stale. Never waits for a writer.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        let conn = self
            .watcher
            .lock()
            .map_err(|_| self.err("the data_version watcher was poisoned"))?;
        conn.prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }
}

/// How stale a turn's view of what other processes change (cooldowns in this database,
/// auth-profiles.json) may be; this process's own changes are seen at once.
pub const RECHECK_EVERY: Duration = Duration::from_millis(250);

/// When a hot path should look at the disk again: at most once per `every`. Between
/// checks it serves what it has in memory, so a turn pays no file or database call;
/// a change made by another process is seen by turns that start `every` later at most.
#[derive(Debug)]
pub struct Recheck {
    every: Duration,
    /// When the last completed check started.
    last: Mutex<Option<Instant>>,
}

impl Recheck {
    pub fn new(every: Duration) -> Recheck {
        Recheck {
            every,
            last: Mutex::new(None),
        }
    }

    /// Whether a check is due: none yet, or the last one started `every` ago or more.
    pub fn due(&self) -> bool {
        self.last
            .lock()
            .map(|l| l.is_none_or(|t| t.elapsed() >= self.every))
            .unwrap_or(true)
    }

    /// A check that started at `started` has finished.
    pub fn done(&self, started: Instant) {
        if let Ok(mut l) = self.last.lock()
            && l.is_none_or(|t| t < started)
        {
            *l = Some(started);
        }
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
mod tests;
