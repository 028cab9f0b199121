//! The runtime state database `<state>/state.db` (DESIGN §2): SQLite (bundled), WAL
//! mode, numbered migrations tracked in `PRAGMA user_version`. Sessions
//! (`session::sqlite`), credential cooldowns and usage (`auth::cooldown`), pairing and
//! the channels' inbox keep their tables here, and so do the credential alerts already
//! reported (`alerts::store`).
//!
//! Connections: one writer (writes queue for it), a small pool of read connections and
//! one connection that watches `data_version`. While another process holds the write
//! lock, a writer here waits (up to the 5 s busy timeout) holding only the writer, and
//! reads go on: WAL lets readers see the last commit while someone writes.
//!
//! Writes from async code go to one writer thread ([`StateDb::write_async`]) that
//! commits whatever is queued together (group commit: under load one commit carries
//! hundreds of writes, and no write costs a thread hand-off of tokio's blocking pool).
//! Every other call blocks; async code runs it on tokio's blocking pool ([`blocking`]),
//! never on a runtime worker. [`Recheck`] lets a hot path serve from memory and look at the
//! disk again only now and then.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open; more are opened while many reads run at once.
/// Generous: opening one (and preparing its statements again) costs far more than the
/// query, and under a burst every turn reads its session's revision.
const MAX_IDLE_READERS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `path` names the store (a file, or `redis at host:port`); a message starting with
    /// `state store unavailable: ` means the store could not be reached (DESIGN §9).
    #[error("{}", backend_text(path, message))]
    Backend { path: String, message: String },
}

/// What the store calls return: a boxed future that owns what it needs (`'static`), so
/// callers can hold a `dyn` store and await it from any task.
pub type StoreFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send>>;

/// How a [`StoreError::Backend`] reads: the hint fits the kind of store.
fn backend_text(path: &str, message: &str) -> String {
    if message.starts_with("state store unavailable: ") {
        let lower = message.to_ascii_lowercase();
        let refused = ["authentication", "wrongpass", "noauth"]
            .iter()
            .any(|w| lower.contains(w));
        let hint = if refused {
            "Check the user name and password in session.redisUrl (or the secret redisUrlRef names)."
        } else {
            "Check that the server is running and reachable."
        };
        format!("{message} ({path}). {hint}")
    } else if path.starts_with("redis ") {
        format!("state store {path}: {message}")
    } else {
        format!(
            "state database {path}: {message}. Check the file and its permissions; `remoteclaw doctor` can help."
        )
    }
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
    // v6: credential alerts already reported, per target and subject (DESIGN §11).
    "CREATE TABLE alerts (
        key        TEXT PRIMARY KEY,
        state      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // v7: a cooldown belongs to a secret, not to an id: two agents' profiles of one id
    // (each its own auth-profiles.json, each its own key) keep a row each instead of
    // overwriting each other's.
    "CREATE TABLE credential_state_v7 (
        credential  TEXT NOT NULL,
        model       TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        reason      TEXT NOT NULL,
        until_ms    INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (credential, fingerprint, model)
    ) WITHOUT ROWID;
    INSERT INTO credential_state_v7
        SELECT credential, model, fingerprint, reason, until_ms, error_count, updated_at
        FROM credential_state;
    DROP TABLE credential_state;
    ALTER TABLE credential_state_v7 RENAME TO credential_state;",
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
    /// The queue of the group-commit writer thread ([`write_async`](Self::write_async)),
    /// started by the first async write.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

/// Most writes one group commit carries.
const MAX_BATCH: usize = 512;

/// What the writer thread hands back to a queued write once its batch is over: the
/// commit's outcome (`Err` = the batch did not commit).
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A queued write's body: given the connection (or why there is none), it runs and
/// says whether it succeeded, and how to report its result after the commit.
type Run = Box<dyn FnOnce(Result<&mut Connection, String>) -> (bool, Done) + Send>;

/// A write waiting for the writer thread: run on the connection (or told why it could
/// not run), it says whether it succeeded and how to report its result.
struct Queued {
    run: Run,
    /// Commit with `synchronous = FULL` (an acknowledged choice survives a power loss).
    durable: bool,
    /// The write is one SQL statement: SQLite undoes a failed statement by itself, so
    /// it needs no savepoint of its own.
    one_statement: bool,
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
            queue: OnceLock::new(),
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

    /// Run `f` on the write connection, after any write of this process before it,
    /// in one `BEGIN IMMEDIATE` transaction committed when `f` succeeds (rolled back
    /// when it fails): `f` is atomic without a transaction of its own. Never call
    /// `transaction()` inside `f` (one is open already); `savepoint()` nests. Blocking: from async code use
    /// [`write_async`](Self::write_async), or call this inside [`blocking`].
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| self.err("a previous write panicked"))?;
        exec_cached(&conn, "BEGIN IMMEDIATE")
            .and_then(|()| {
                let value = f(&mut conn).and_then(|v| exec_cached(&conn, "COMMIT").map(|()| v));
                if value.is_err() && !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                value
            })
            .map_err(|e| self.err(e))
    }

    /// Run `f` on the write connection from async code, without a thread of tokio's
    /// blocking pool: one writer thread takes every queued write, runs as many as are
    /// waiting in one transaction (each in a savepoint of its own, so one failing write
    /// rolls back only itself) and commits them together. The result comes back after
    /// that commit, so an acknowledged write is as durable as with [`write`](Self::write).
    /// Under load this turns a commit per write into a commit per batch. Same rules for
    /// `f` as [`write`](Self::write).
    pub async fn write_async<T: Send + 'static>(
        self: &Arc<Self>,
        durable: bool,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(durable, false, f).await
    }

    /// [`write_async`](Self::write_async) for a write that runs exactly one SQL
    /// statement, with SQLite's default conflict handling (`ABORT`; not `OR FAIL`, which
    /// keeps the rows written before the failure). A failing statement leaves nothing
    /// behind, so the writer runs it without the savepoint every other write gets: two
    /// statements fewer per write on the hot paths (answered marks, usage). If `f`
    /// panics, the whole batch it ran in is rolled back and every write of it fails.
    pub async fn write_one_async<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(false, true, move |c: &mut Connection| f(c))
            .await
    }

    async fn enqueue<T: Send + 'static>(
        self: &Arc<Self>,
        durable: bool,
        one_statement: bool,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, String>>();
        let run = Box::new(
            move |conn: Result<&mut Connection, String>| -> (bool, Done) {
                let result = match conn {
                    Ok(conn) => f(conn).map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                let ok = result.is_ok();
                let done: Done = Box::new(move |commit: Result<(), String>| {
                    let _ = tx.send(commit.and(result));
                });
                (ok, done)
            },
        );
        self.queue()
            .send(Queued {
                run,
                durable,
                one_statement,
            })
            .map_err(|_| self.err("the store's writer thread stopped"))?;
        match rx.await {
            Ok(result) => result.map_err(|e| self.err(e)),
            Err(_) => Err(self.err("the store's writer thread stopped")),
        }
    }

    /// The writer thread's queue (the thread starts on first use and ends with the
    /// database).
    fn queue(self: &Arc<Self>) -> &mpsc::Sender<Queued> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let db = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("remoteclaw-store".into())
                .spawn(move || writer_thread(db, rx));
            if let Err(e) = spawned {
                // The queue's receiver is gone with the closure: every write reports it.
                tracing::error!("cannot start the state database writer thread: {e}");
            }
            tx
        })
    }

    /// One group commit: `BEGIN IMMEDIATE`, each write in a savepoint (but one-statement
    /// writes), `COMMIT`. When
    /// the write lock cannot be had (another process held it past the busy timeout)
    /// every write of the batch is told so without running.
    fn commit_batch(&self, batch: Vec<Queued>) {
        let durable = batch.iter().any(|q| q.durable);
        let mut conn = match self.writer.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if durable {
            let _ = conn.pragma_update(None, "synchronous", "FULL");
        }
        let mut begun = exec_cached(&conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string());
        // Set when the batch had to be rolled back as a whole.
        let mut aborted: Option<String> = None;
        let mut done = Vec::with_capacity(batch.len());
        for q in batch {
            // A one-statement write needs no savepoint: SQLite undoes a failed statement.
            let savepoint = begun.is_ok() && !q.one_statement;
            let (ok, d) = match begun.clone() {
                Ok(()) => {
                    if savepoint && let Err(e) = exec_cached(&conn, "SAVEPOINT queued") {
                        done.push((q.run)(Err(e.to_string())).1);
                        continue;
                    }
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        (q.run)(Ok(&mut conn))
                    }));
                    match ran {
                        Ok(r) => r,
                        // A panicking write is dropped: its caller hears the thread stopped.
                        Err(_) => {
                            if savepoint {
                                let _ = exec_cached(&conn, "ROLLBACK TO queued");
                                let _ = exec_cached(&conn, "RELEASE queued");
                            } else {
                                // Its statement may have run, and only the whole batch can
                                // be undone: every write of it is told nothing was saved.
                                let _ = conn.execute_batch("ROLLBACK");
                                let why = "another write of the same batch failed unexpectedly; nothing was saved".to_string();
                                begun = Err(why.clone());
                                aborted = Some(why);
                            }
                            continue;
                        }
                    }
                }
                Err(e) => (q.run)(Err(e)),
            };
            if savepoint {
                if !ok {
                    let _ = exec_cached(&conn, "ROLLBACK TO queued");
                }
                let _ = exec_cached(&conn, "RELEASE queued");
            }
            done.push(d);
        }
        let commit = match (begun, aborted) {
            (_, Some(why)) => Err(why),
            (Ok(()), None) => exec_cached(&conn, "COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            }),
            // Each write was told why it did not run.
            (Err(_), None) => Ok(()),
        };
        if durable {
            let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        }
        drop(conn);
        for d in done {
            d(commit.clone());
        }
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
            let mut conn = self
                .writer
                .lock()
                .map_err(|_| self.err("a previous write panicked"))?;
            return f(&mut conn).map_err(|e| self.err(e));
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
        self.write(|tx| {
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
            Ok(())
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

/// Run a statement without parameters through the connection's statement cache (the
/// writer runs `SAVEPOINT`/`RELEASE` around every queued write: parsed once, not each time).
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The group-commit writer: waits for a write, takes every other one already queued
/// (up to [`MAX_BATCH`]) and commits them together. Ends when the database is dropped.
fn writer_thread(db: Weak<StateDb>, rx: mpsc::Receiver<Queued>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let Some(db) = db.upgrade() else { return };
        db.commit_batch(batch);
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

pub mod lease;
pub mod migrate;
pub mod redis;
pub mod redis_stores;
pub mod stores;

#[cfg(test)]
mod tests;
