//! Turns of one session across the processes that share a state dir and its `state.db`
//! (DESIGN §4): the gateway, `remoteclaw agent` and `remoteclaw chat`. Each session has a
//! lock file, `<state>/locks/sessions/<first 32 hex digits of sha256(key)>.lock` (the key
//! itself never becomes a file name); a turn holds an exclusive `flock` on it from the
//! moment it leaves the session's queue in this process until it ends ([`HeldLock`] is
//! dropped with the turn, on an error or a cancellation too). The kernel frees the lock of
//! a process that exits, one killed mid-turn included: there is no lease to expire.
//!
//! Not owned here: the order of turns within one process (the session's queue in
//! `SessionManager`: only the turn at its head asks for the file lock, so at most one
//! waiter per process and session contends for it), and the Redis store, where the
//! cross-replica ticket (`state::lease`) orders turns and no file lock is taken.
//!
//! `flock` locks belong to an open file description: two handles opened separately
//! conflict even within one process. So a process keeps one handle per session — in the
//! session's slot, behind its queue — and never takes a lock on a second one while the
//! first is held. Rust opens files close-on-exec, so a child process (an `exec` SecretRef)
//! never inherits a handle that would keep the lock past our turn.
//!
//! Cost of a turn: the lock file is opened once per live session (on the blocking pool)
//! and kept open, so a turn pays one non-blocking `flock` to take the lock and one to
//! give it back, on its worker, with no thread hand-off. Open handles are bounded (a
//! quarter of the process's open-file limit): past that, a session's file is opened for
//! each turn and closed at its end.
//!
//! A busy lock is polled (`try_lock`, 2 ms doubling to 25 ms) rather than waited for by
//! a blocking `flock` on the blocking pool: a waiting turn that is dropped (a cancelled
//! request) then leaves nothing behind that could take the lock later with nobody to
//! give it back, and waiting sessions hold no threads. The price is fairness between
//! processes: a process whose own queue for the session stays full can keep the lock
//! from a poller until that queue drains.
//!
//! A lock file that cannot be opened (a `locks` directory this user cannot write) does
//! not stop turns: they go on without the cross-process lock, and the process warns once.
//! The lock only matters when a second process works on the same session; refusing every
//! turn over an odd permission would turn that rare risk into an outage, while a state
//! dir that is really read-only already fails at `state.db`, with its own error.

use sha2::{Digest, Sha256};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The first pause before a busy lock is tried again; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(2);

/// The longest pause between two tries of a busy lock.
const MAX_POLL: Duration = Duration::from_millis(25);

/// Bounds of the number of lock files kept open between turns.
const MIN_KEEP_OPEN: usize = 64;
const MAX_KEEP_OPEN: usize = 65_536;

/// Why a session's lock could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TurnLockError {
    #[error("cannot create the session lock directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the session lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock the session lock file {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another RemoteClaw process has held the session lock {} for over {} s, longer than a turn may last (stopped or suspended?)",
        path.display(),
        waited.as_secs()
    )]
    Stuck { path: PathBuf, waited: Duration },
}

/// The session lock files of one state dir, as one process uses them.
#[derive(Debug)]
pub struct TurnLocks {
    dir: PathBuf,
    /// How many handles may stay open between turns.
    keep_open: usize,
    /// How many do ([`OpenLock`]s alive).
    open: Arc<AtomicUsize>,
    /// Whether the lock-less fallback was reported (once per process).
    warned: AtomicBool,
    /// The longest wait for another process's turn: past it, the holder is taken to be
    /// stuck (a `chat` suspended with Ctrl-Z keeps its lock) and the turn goes on
    /// without the lock, so a session is never left busy (DESIGN §8).
    max_wait: Duration,
}

/// [`TurnLocks::max_wait`] unless set: the default turn timeout (600 s) and a margin.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(630);

impl TurnLocks {
    /// Lock files in `dir` (created 0700 on first use).
    pub fn new(dir: PathBuf) -> TurnLocks {
        TurnLocks {
            dir,
            keep_open: default_keep_open(),
            open: Arc::default(),
            warned: AtomicBool::new(false),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// Wait at most `wait` for another process's turn (the turn timeout and a margin).
    pub fn with_max_wait(mut self, wait: Duration) -> TurnLocks {
        self.max_wait = wait;
        self
    }

    /// The lock files of the state dir `state_dir`: `<state>/locks/sessions`.
    pub fn in_state_dir(state_dir: &Path) -> TurnLocks {
        TurnLocks::new(state_dir.join("locks").join("sessions"))
    }

    /// Keep at most `n` handles open between turns (tests).
    pub fn with_keep_open(mut self, n: usize) -> TurnLocks {
        self.keep_open = n;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file of `session`.
    pub fn path_of(&self, session: &str) -> PathBuf {
        use std::fmt::Write;
        let digest = Sha256::digest(session.as_bytes());
        let mut name = String::with_capacity(37);
        for b in &digest[..16] {
            let _ = write!(name, "{b:02x}");
        }
        name.push_str(".lock");
        self.dir.join(name)
    }

    /// Wait until this process holds `session`'s lock. `cache` is the session's handle
    /// kept between turns (filled here when there is room). `None` when the lock file
    /// cannot be used: the turn goes on without it, and the first time it happens the
    /// process warns (see the module documentation).
    pub async fn acquire(&self, session: &str, cache: &mut Option<OpenLock>) -> Option<HeldLock> {
        match self.try_acquire(session, cache).await {
            Ok(held) => Some(held),
            Err(e @ TurnLockError::Stuck { .. }) => {
                tracing::warn!(
                    session,
                    "{e}: this turn goes on without waiting for it. Look for a stopped `remoteclaw chat` or `agent` (`fg` it, or end it)."
                );
                None
            }
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{e}. Until it can be, turns of one session are not kept apart from those of other RemoteClaw processes on this state dir (a `remoteclaw agent` or `chat` beside the gateway). Make {} writable by the user running RemoteClaw.",
                        self.dir.display()
                    );
                }
                None
            }
        }
    }

    /// [`acquire`](Self::acquire), with the reason when the lock file cannot be used.
    pub async fn try_acquire(
        &self,
        session: &str,
        cache: &mut Option<OpenLock>,
    ) -> Result<HeldLock, TurnLockError> {
        let file = match cache {
            Some(c) => c.file.clone(),
            None => {
                let file = Arc::new(self.open(session).await?);
                *cache = self.keep(&file);
                file
            }
        };
        let mut pause = FIRST_POLL;
        let mut told = false;
        let started = tokio::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(HeldLock { file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => {
                    return Err(TurnLockError::Lock {
                        path: self.path_of(session),
                        source,
                    });
                }
            }
            if !told {
                told = true;
                tracing::info!(
                    session,
                    "another RemoteClaw process on this state dir is running a turn of this session: waiting for it to end"
                );
            }
            if started.elapsed() >= self.max_wait {
                return Err(TurnLockError::Stuck {
                    path: self.path_of(session),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Open (or create) `session`'s lock file on the blocking pool.
    async fn open(&self, session: &str) -> Result<File, TurnLockError> {
        let (dir, path) = (self.dir.clone(), self.path_of(session));
        let task_path = path.clone();
        match tokio::task::spawn_blocking(move || open_in(&dir, &task_path)).await {
            Ok(r) => r,
            Err(e) => Err(TurnLockError::Open {
                path,
                source: std::io::Error::other(e),
            }),
        }
    }

    /// A handle to keep between turns, when there is room for one more.
    fn keep(&self, file: &Arc<File>) -> Option<OpenLock> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.keep_open {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(OpenLock {
            file: file.clone(),
            open: self.open.clone(),
        })
    }
}

/// Open `path` in `dir` for locking, creating the directory (0700) and the file (0600)
/// when missing. Blocking.
fn open_in(dir: &Path, path: &Path) -> Result<File, TurnLockError> {
    let open = || {
        crate::config::paths::open_lock_file(path).map_err(|(_, source)| TurnLockError::Open {
            path: path.to_path_buf(),
            source,
        })
    };
    match open() {
        Err(TurnLockError::Open { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    crate::config::paths::ensure_private_dir(dir).map_err(|source| TurnLockError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    open()
}

/// A quarter of the open-file limit, within [`MIN_KEEP_OPEN`]..=[`MAX_KEEP_OPEN`]: the
/// lock files never crowd out sockets and the database.
fn default_keep_open() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit
        .map_or(MAX_KEEP_OPEN, |n| {
            usize::try_from(n / 4).unwrap_or(MAX_KEEP_OPEN)
        })
        .clamp(MIN_KEEP_OPEN, MAX_KEEP_OPEN)
}

/// A session's lock file kept open between its turns (one per live session, up to the
/// bound); closing it is dropping it.
#[derive(Debug)]
pub struct OpenLock {
    file: Arc<File>,
    open: Arc<AtomicUsize>,
}

impl Drop for OpenLock {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A session's lock, held by this process until dropped.
#[derive(Debug)]
pub struct HeldLock {
    file: Arc<File>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        // Closing the last handle would release it too, but a kept handle stays open.
        if let Err(e) = self.file.unlock() {
            tracing::warn!("could not release a session lock: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks(dir: &tempfile::TempDir) -> Arc<TurnLocks> {
        Arc::new(TurnLocks::in_state_dir(dir.path()))
    }

    /// A handle of `session`'s lock file opened now (as a session's first turn would), so
    /// that acquiring with it goes straight to the lock.
    fn opened(locks: &TurnLocks, session: &str) -> Option<OpenLock> {
        let file = Arc::new(open_in(locks.dir(), &locks.path_of(session)).unwrap());
        locks.keep(&file)
    }

    /// Two handles on one lock file in one process behave as two processes would: the
    /// second waits until the first is released, however long that takes.
    #[tokio::test(start_paused = true)]
    async fn a_second_handle_waits_until_the_first_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        // (Longer than the hour below: a holder is not taken to be stuck here.)
        let locks =
            Arc::new(TurnLocks::in_state_dir(dir.path()).with_max_wait(Duration::from_secs(7200)));
        let mut first_handle = None;
        let first = locks.acquire("web:x", &mut first_handle).await.unwrap();
        assert!(first_handle.is_some(), "the handle is kept between turns");

        let (locks2, got) = (locks.clone(), Arc::new(AtomicBool::new(false)));
        let got2 = got.clone();
        let mut handle = opened(&locks, "web:x");
        let second = tokio::spawn(async move {
            let held = locks2.acquire("web:x", &mut handle).await;
            got2.store(true, Ordering::SeqCst);
            (held, handle)
        });
        // An hour of (paused) time: the second keeps polling and never gets it.
        for _ in 0..3600 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(!got.load(Ordering::SeqCst), "the lock was taken twice");
        }
        // Another session is not held up by it.
        let mut other = None;
        drop(locks.acquire("web:y", &mut other).await.unwrap());

        drop(first);
        let (held, handle) = second.await.unwrap();
        assert!(held.is_some() && handle.is_some());
        // While the second holds it, the first handle (kept open) cannot take it.
        let kept = first_handle.as_ref().unwrap();
        assert!(matches!(
            kept.file.try_lock(),
            Err(TryLockError::WouldBlock)
        ));
        drop(held);
        kept.file.try_lock().unwrap();
    }

    /// A holder that never lets go (a `chat` suspended with Ctrl-Z): past the longest
    /// wait, the turn goes on without the lock rather than leaving the session busy.
    #[tokio::test(start_paused = true)]
    async fn a_holder_stuck_past_a_turns_life_is_waited_for_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let locks =
            Arc::new(TurnLocks::in_state_dir(dir.path()).with_max_wait(Duration::from_secs(60)));
        let mut first_handle = None;
        let _stuck = locks.acquire("web:x", &mut first_handle).await.unwrap();
        let (locks2, done) = (locks.clone(), Arc::new(AtomicBool::new(false)));
        let done2 = done.clone();
        let mut handle = opened(&locks, "web:x");
        let second = tokio::spawn(async move {
            let r = locks2.try_acquire("web:x", &mut handle).await;
            done2.store(true, Ordering::SeqCst);
            r
        });
        for _ in 0..59 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(
                !done.load(Ordering::SeqCst),
                "gave up before the longest wait"
            );
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let err = tokio::time::timeout(Duration::from_secs(3600), second)
            .await
            .expect("gave up waiting at last")
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, TurnLockError::Stuck { .. }), "{err}");
        assert!(err.to_string().contains("for over 60 s"), "{err}");
    }

    #[tokio::test]
    async fn lock_files_are_named_by_a_hash_of_the_key_in_a_private_dir() {
        let dir = tempfile::tempdir().unwrap();
        let locks = locks(&dir);
        let key = "telegram:dm:12345";
        let path = locks.path_of(key);
        assert_eq!(
            path.parent(),
            Some(dir.path().join("locks/sessions").as_path())
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 32 + ".lock".len());
        assert!(!name.contains("12345"), "{name}");
        assert_ne!(path, locks.path_of("telegram:dm:12346"));

        drop(locks.acquire(key, &mut None).await.unwrap());
        assert!(path.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("locks")), 0o700);
            assert_eq!(mode(locks.dir()), 0o700);
            assert_eq!(mode(&path), 0o600);
        }
    }

    /// Past the bound, a session's handle is opened for its turn and closed after it;
    /// handles kept give their place back when their session leaves memory.
    #[tokio::test]
    async fn handles_kept_between_turns_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Arc::new(TurnLocks::in_state_dir(dir.path()).with_keep_open(1));
        let (mut a, mut b) = (None, None);
        drop(locks.acquire("a", &mut a).await.unwrap());
        drop(locks.acquire("b", &mut b).await.unwrap());
        assert!(a.is_some() && b.is_none());
        let held_b = locks.acquire("b", &mut b).await.unwrap();
        // The one-turn handle holds the lock as a kept one would.
        let other = File::open(locks.path_of("b")).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(held_b);
        other.try_lock().unwrap();
        other.unlock().unwrap();
        drop(a);
        drop(locks.acquire("b", &mut b).await.unwrap());
        assert!(b.is_some(), "a's place went to b");
    }

    /// A lock dir that cannot be created or used: the turn goes on without the lock, and
    /// the reason names the path.
    #[tokio::test]
    async fn an_unusable_lock_dir_is_reported_and_turns_go_on() {
        // `locks` is a link to nowhere: the directory cannot be created.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone/locks"), dir.path().join("locks"))
            .unwrap();
        let locks = locks(&dir);
        let err = locks.try_acquire("web:x", &mut None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot create the session lock directory {}: File exists (os error 17)",
                locks.dir().display()
            )
        );
        assert!(locks.acquire("web:x", &mut None).await.is_none());
        assert!(locks.acquire("web:x", &mut None).await.is_none());

        // `locks` is a file: the lock file cannot be opened.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("locks"), "").unwrap();
        let locks = TurnLocks::in_state_dir(dir.path());
        let err = locks.try_acquire("web:x", &mut None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot open the session lock file {}: Not a directory (os error 20)",
                locks.path_of("web:x").display()
            )
        );
        assert!(locks.acquire("web:x", &mut None).await.is_none());
    }
}
