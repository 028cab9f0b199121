//! Pairing (DESIGN §4): how an unknown sender on a chat channel becomes someone who may
//! talk to the bot. The channel asks the store for a code and shows it to the sender; the
//! operator approves the code with `remoteclaw pairing approve <channel> <code>`.
//!
//! Rules:
//! - a code is 8 characters from an alphabet without look-alikes (no `0`/`O`, `1`/`I`),
//!   unique per channel, and expires one hour after it was issued;
//! - a sender gets at most one new code per hour: while their code is pending, asking
//!   again returns the same code (`fresh: false`);
//! - codes are matched case-insensitively (spaces and dashes are ignored), so
//!   `abcd-efgh` approves `ABCDEFGH`;
//! - an approval lasts until it is revoked.
//!
//! Rows live in the `pairing` table of `state.db` (migration v3), so approvals survive
//! restarts and are shared by every process using the same state directory.
//!
//! Randomness: codes come from the operating system. The store reads bytes from
//! `/dev/urandom`; where that is unavailable it falls back to std's `RandomState`, whose
//! SipHash keys are seeded from the OS random source (a keyed PRF over a counter and the
//! time, so still unpredictable). No extra crate is needed for 40 bits per code.

use crate::clock::Clock;
use crate::state::{StateDb, StoreError, StoreFuture, blocking};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

/// Characters a code is made of: upper-case letters and digits without look-alikes
/// (no `0`, `O`, `1`, `I`).
pub const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Length of a code.
pub const CODE_LEN: usize = 8;

/// How long a code is valid (and how long a sender waits for a new one): one hour.
pub const CODE_TTL_MS: i64 = 3_600_000;

/// Expired requests are kept this long (so approving a stale code says "expired" rather
/// than "unknown"), then removed.
const EXPIRED_KEEP_MS: i64 = 7 * 24 * 3_600_000;

/// How many random codes to try before giving up on finding an unused one.
const MAX_ATTEMPTS: usize = 16;

const PENDING: &str = "pending";
const APPROVED: &str = "approved";

/// Produces candidate codes (random ones in production).
pub type CodeGenerator = Arc<dyn Fn() -> String + Send + Sync>;

/// The answer to a sender who asked to talk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRequest {
    /// The code to show to the sender (the operator approves it).
    pub code: String,
    /// True when this call issued the code; false when the pending one was returned again.
    pub fresh: bool,
    /// When the code stops working (epoch ms).
    pub expires_at: i64,
    /// The sender is already approved: let them through (`code` is their old code).
    pub approved: bool,
}

/// A sender the operator just approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub channel: String,
    pub sender: String,
    pub label: Option<String>,
    pub approved_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingStatus {
    Pending,
    Approved,
}

/// One row as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingEntry {
    pub channel: String,
    pub sender: String,
    /// A human-readable name the channel gave (e.g. `@alice`), if any.
    pub label: Option<String>,
    pub status: PairingStatus,
    /// The code to approve (pending requests only).
    pub code: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "no pending {channel} pairing request has code \"{code}\". `remoteclaw pairing list` shows the pending codes."
    )]
    UnknownCode { channel: String, code: String },
    #[error(
        "the {channel} pairing code \"{code}\" (from {}) has expired: codes are valid for one hour. Ask them to message the bot again for a new code.",
        who(sender, label.as_deref())
    )]
    Expired {
        channel: String,
        code: String,
        sender: String,
        label: Option<String>,
    },
    #[error(
        "{} is already approved on {channel}; they can message the bot. (`remoteclaw pairing revoke {channel} {sender}` undoes it.)",
        who(sender, label.as_deref())
    )]
    AlreadyApproved {
        channel: String,
        sender: String,
        label: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `123 (@alice)` or `123`, safe to print (see [`printable`]).
pub fn who(sender: &str, label: Option<&str>) -> String {
    match label.filter(|l| !l.trim().is_empty()) {
        Some(l) => format!("{} ({})", printable(sender), printable(l)),
        None => printable(sender),
    }
}

/// A name from a chat platform (first name, username) as the CLI prints it: control
/// characters — C0, DEL and C1, which a terminal may take as escape sequences — are
/// written as `\u{..}` escapes, so a hostile display name cannot move the cursor,
/// retitle the window or hide text (DESIGN §8).
pub fn printable(name: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Canonical form of a code as typed by an operator: upper case, without spaces or dashes.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Where pairing requests and approvals are kept: `state.db` ([`SqlitePairing`]) or
/// Redis, behind one interface. Every call is atomic in its store.
pub trait PairingBackend: Send + Sync + std::fmt::Debug + 'static {
    /// See [`PairingStore::request`]; `codes` supplies candidate codes (label trimmed,
    /// non-empty).
    fn request(
        &self,
        channel: &str,
        sender: &str,
        label: Option<&str>,
        now_ms: i64,
        codes: CodeGenerator,
    ) -> StoreFuture<PairingRequest>;
    fn is_approved(&self, channel: &str, sender: &str) -> StoreFuture<bool>;
    /// `code` is normalized already. The outer error is the store's; the inner one says
    /// why this code cannot be approved.
    fn approve(
        &self,
        channel: &str,
        code: &str,
        now_ms: i64,
    ) -> StoreFuture<Result<Approved, PairingError>>;
    fn list(&self, now_ms: i64) -> StoreFuture<Vec<PairingEntry>>;
    fn revoke(&self, channel: &str, sender: &str) -> StoreFuture<bool>;
}

/// Pairing requests and approvals, in whichever store the gateway uses.
#[derive(Clone)]
pub struct PairingStore {
    backend: Arc<dyn PairingBackend>,
    clock: Arc<dyn Clock>,
    codes: CodeGenerator,
}

impl std::fmt::Debug for PairingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl PairingStore {
    /// The pairing table of `state.db`.
    pub fn new(db: Arc<StateDb>, clock: Arc<dyn Clock>) -> Self {
        PairingStore::with_backend(Arc::new(SqlitePairing::new(db)), clock)
    }

    pub fn with_backend(backend: Arc<dyn PairingBackend>, clock: Arc<dyn Clock>) -> Self {
        PairingStore {
            backend,
            clock,
            codes: Arc::new(random_code),
        }
    }

    /// Use another source of candidate codes (tests: collisions, fixed codes).
    pub fn with_code_generator(mut self, codes: CodeGenerator) -> Self {
        self.codes = codes;
        self
    }

    /// An unknown sender asked to talk: the code to show them. Within an hour of issuing
    /// a code the same pending code is returned (`fresh: false`); after that a new one.
    /// `label` (a display name) is stored or refreshed when given.
    pub async fn request(
        &self,
        channel: &str,
        sender: &str,
        label: Option<&str>,
    ) -> Result<PairingRequest, StoreError> {
        let label = label.map(str::trim).filter(|l| !l.is_empty());
        self.backend
            .request(
                channel,
                sender,
                label,
                self.clock.now_ms(),
                self.codes.clone(),
            )
            .await
    }

    /// Whether the operator approved this sender on this channel.
    pub async fn is_approved(&self, channel: &str, sender: &str) -> Result<bool, StoreError> {
        self.backend.is_approved(channel, sender).await
    }

    /// Approve the pending request with this code (case-insensitive).
    pub async fn approve(&self, channel: &str, code: &str) -> Result<Approved, PairingError> {
        self.backend
            .approve(channel, &normalize_code(code), self.clock.now_ms())
            .await?
    }

    /// Pending requests that have not expired (oldest first), then approved senders
    /// (most recently approved first).
    pub async fn list(&self) -> Result<Vec<PairingEntry>, StoreError> {
        self.backend.list(self.clock.now_ms()).await
    }

    /// Forget a sender: an approval is withdrawn, a pending request dropped. Returns
    /// whether there was anything to forget.
    pub async fn revoke(&self, channel: &str, sender: &str) -> Result<bool, StoreError> {
        self.backend.revoke(channel, sender).await
    }
}

/// Runs a blocking `SqlitePairing` call on the blocking pool.
fn off_thread<T: Send + 'static>(
    me: &SqlitePairing,
    f: impl FnOnce(SqlitePairing) -> Result<T, StoreError> + Send + 'static,
) -> StoreFuture<T> {
    let me = me.clone();
    Box::pin(async move {
        let db = me.db.clone();
        blocking(&db, move || f(me)).await
    })
}

impl PairingBackend for SqlitePairing {
    fn request(
        &self,
        channel: &str,
        sender: &str,
        label: Option<&str>,
        now_ms: i64,
        codes: CodeGenerator,
    ) -> StoreFuture<PairingRequest> {
        let (channel, sender, label) = (
            channel.to_string(),
            sender.to_string(),
            label.map(str::to_string),
        );
        off_thread(self, move |me| {
            me.request_now(&channel, &sender, label.as_deref(), now_ms, codes)
        })
    }

    fn is_approved(&self, channel: &str, sender: &str) -> StoreFuture<bool> {
        let (channel, sender) = (channel.to_string(), sender.to_string());
        off_thread(self, move |me| me.is_approved_now(&channel, &sender))
    }

    fn approve(
        &self,
        channel: &str,
        code: &str,
        now_ms: i64,
    ) -> StoreFuture<Result<Approved, PairingError>> {
        let (channel, code) = (channel.to_string(), code.to_string());
        off_thread(self, move |me| {
            match me.approve_now(&channel, code, now_ms) {
                Err(PairingError::Store(e)) => Err(e),
                other => Ok(other),
            }
        })
    }

    fn list(&self, now_ms: i64) -> StoreFuture<Vec<PairingEntry>> {
        off_thread(self, move |me| me.list_now(now_ms))
    }

    fn revoke(&self, channel: &str, sender: &str) -> StoreFuture<bool> {
        let (channel, sender) = (channel.to_string(), sender.to_string());
        off_thread(self, move |me| me.revoke_now(&channel, &sender))
    }
}

/// The pairing table of `state.db` (migration v3).
#[derive(Debug, Clone)]
pub struct SqlitePairing {
    db: Arc<StateDb>,
}

impl SqlitePairing {
    pub fn new(db: Arc<StateDb>) -> SqlitePairing {
        SqlitePairing { db }
    }

    fn request_now(
        &self,
        channel: &str,
        sender: &str,
        label: Option<&str>,
        now: i64,
        codes: CodeGenerator,
    ) -> Result<PairingRequest, StoreError> {
        let result = self.db.write(|conn| {
            let tx = conn.savepoint()?;
            tx.prepare_cached("DELETE FROM pairing WHERE status = ?1 AND expires_at <= ?2")?.execute(params![PENDING, now - EXPIRED_KEEP_MS])?;
            let existing: Option<(String, String, i64)> = tx
                .prepare_cached("SELECT code, status, expires_at FROM pairing WHERE channel = ?1 AND sender = ?2")?.query_row(params![channel, sender],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((code, status, expires_at)) = existing {
                let approved = status == APPROVED;
                if approved || expires_at > now {
                    if let Some(l) = label {
                        tx.prepare_cached("UPDATE pairing SET label = ?3 WHERE channel = ?1 AND sender = ?2")?.execute(params![channel, sender, l])?;
                    }
                    tx.commit()?;
                    return Ok(Some(PairingRequest {
                        code,
                        fresh: false,
                        expires_at,
                        approved,
                    }));
                }
            }
            let mut code = None;
            for _ in 0..MAX_ATTEMPTS {
                let candidate = codes();
                let taken: bool = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM pairing WHERE channel = ?1 AND code = ?2 AND sender <> ?3)")?.query_row(params![channel, candidate, sender],
                    |r| r.get(0))?;
                if !taken {
                    code = Some(candidate);
                    break;
                }
            }
            let Some(code) = code else {
                return Ok(None);
            };
            let expires_at = now + CODE_TTL_MS;
            tx.prepare_cached("INSERT INTO pairing (channel, sender, code, label, status, created_at, expires_at, approved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
                 ON CONFLICT (channel, sender) DO UPDATE SET
                   code = excluded.code, label = COALESCE(excluded.label, pairing.label),
                   status = excluded.status, created_at = excluded.created_at,
                   expires_at = excluded.expires_at, approved_at = NULL")?.execute(params![channel, sender, code, label, PENDING, now, expires_at])?;
            tx.commit()?;
            Ok(Some(PairingRequest {
                code,
                fresh: true,
                expires_at,
                approved: false,
            }))
        })?;
        result.ok_or_else(|| {
            self.db.err(format!(
                "could not find an unused pairing code for {channel} after {MAX_ATTEMPTS} attempts"
            ))
        })
    }

    fn is_approved_now(&self, channel: &str, sender: &str) -> Result<bool, StoreError> {
        self.db.read(|conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pairing WHERE channel = ?1 AND sender = ?2 AND status = ?3)",
            )?
            .query_row(params![channel, sender, APPROVED], |r| r.get(0))
        })
    }

    fn approve_now(&self, channel: &str, code: String, now: i64) -> Result<Approved, PairingError> {
        type Row = (String, Option<String>, String, i64);
        let outcome: Result<Approved, PairingError> = self
            .db
            .write(|conn| {
                let tx =
                    conn.savepoint()?;
                let row: Option<Row> = tx
                    .prepare_cached("SELECT sender, label, status, expires_at FROM pairing WHERE channel = ?1 AND code = ?2")?.query_row(params![channel, code],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                let Some((sender, label, status, expires_at)) = row else {
                    return Ok(Err(PairingError::UnknownCode {
                        channel: channel.to_string(),
                        code: code.clone(),
                    }));
                };
                if status == APPROVED {
                    return Ok(Err(PairingError::AlreadyApproved {
                        channel: channel.to_string(),
                        sender,
                        label,
                    }));
                }
                if expires_at <= now {
                    return Ok(Err(PairingError::Expired {
                        channel: channel.to_string(),
                        code: code.clone(),
                        sender,
                        label,
                    }));
                }
                tx.prepare_cached("UPDATE pairing SET status = ?3, approved_at = ?4 WHERE channel = ?1 AND sender = ?2")?.execute(params![channel, sender, APPROVED, now])?;
                tx.commit()?;
                Ok(Ok(Approved {
                    channel: channel.to_string(),
                    sender,
                    label,
                    approved_at: now,
                }))
            })?;
        outcome
    }

    fn list_now(&self, now: i64) -> Result<Vec<PairingEntry>, StoreError> {
        self.db.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT channel, sender, code, label, status, created_at, expires_at, approved_at
                 FROM pairing
                 WHERE status = ?1 OR (status = ?2 AND expires_at > ?3)
                 ORDER BY status = ?1, CASE WHEN status = ?1 THEN -approved_at ELSE created_at END, channel, sender",
            )?;
            let rows = stmt.query_map(params![APPROVED, PENDING, now], |r| {
                let status: String = r.get(4)?;
                let approved = status == APPROVED;
                Ok(PairingEntry {
                    channel: r.get(0)?,
                    sender: r.get(1)?,
                    code: if approved { None } else { Some(r.get(2)?) },
                    label: r.get(3)?,
                    status: if approved {
                        PairingStatus::Approved
                    } else {
                        PairingStatus::Pending
                    },
                    created_at: r.get(5)?,
                    expires_at: r.get(6)?,
                    approved_at: r.get(7)?,
                })
            })?;
            rows.collect()
        })
    }

    fn revoke_now(&self, channel: &str, sender: &str) -> Result<bool, StoreError> {
        self.db
            .write(|conn| {
                conn.prepare_cached("DELETE FROM pairing WHERE channel = ?1 AND sender = ?2")?
                    .execute(params![channel, sender])
            })
            .map(|n| n > 0)
    }
}

/// A random code: `CODE_LEN` characters of `CODE_ALPHABET`. The alphabet has 32 symbols,
/// so each byte modulo 32 is uniform.
pub fn random_code() -> String {
    let bytes = os_random_bytes();
    bytes
        .iter()
        .take(CODE_LEN)
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect()
}

fn os_random_bytes() -> [u8; 16] {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_ok() {
        return buf;
    }
    // Fallback: SipHash keyed from the OS random source (std seeds `RandomState` from it),
    // over a process-wide counter and the time.
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for half in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(nanos);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    buf
}

#[cfg(test)]
mod printable_tests {
    use super::*;

    /// Regression: pairing labels (first names, usernames) were printed raw, terminal
    /// escapes included.
    #[test]
    fn pairing_labels_with_terminal_escapes_are_printed_escaped() {
        let hostile = "Eve\u{1b}]0;pwned\u{7}\u{1b}[2J\u{7f}\u{9b}31m\nroot";
        let shown = who("42", Some(hostile));
        assert_eq!(
            shown,
            "42 (Eve\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{7f}\\u{9b}31m\\u{a}root)"
        );
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(printable("Zoë 🌍 @alice"), "Zoë 🌍 @alice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Mutex;

    const T0: i64 = 1_767_225_600_000;

    fn store() -> (tempfile::TempDir, Arc<ManualClock>, PairingStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db")).unwrap();
        let clock = ManualClock::new(T0);
        let s = PairingStore::new(db, clock.clone());
        (dir, clock, s)
    }

    /// Hands out the given codes in order, then repeats the last one.
    fn scripted(codes: &[&str]) -> CodeGenerator {
        let list: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        let next = Mutex::new(0usize);
        Arc::new(move || {
            let mut i = next.lock().unwrap();
            let c = list[(*i).min(list.len() - 1)].clone();
            *i += 1;
            c
        })
    }

    #[tokio::test]
    async fn codes_use_the_alphabet_and_differ() {
        let a = random_code();
        let b = random_code();
        assert_eq!(a.len(), CODE_LEN);
        assert!(a.bytes().all(|c| CODE_ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
        for ambiguous in ['0', 'O', '1', 'I'] {
            assert!(!CODE_ALPHABET.contains(&(ambiguous as u8)), "{ambiguous}");
        }
    }

    #[tokio::test]
    async fn one_code_per_sender_per_hour_then_a_new_one() {
        let (_d, clock, s) = store();
        let first = s.request("telegram", "42", Some("@alice")).await.unwrap();
        assert!(first.fresh && !first.approved);
        assert_eq!(first.expires_at, T0 + CODE_TTL_MS);
        clock.advance_ms(59 * 60_000);
        let again = s.request("telegram", "42", None).await.unwrap();
        assert_eq!(again.code, first.code);
        assert!(!again.fresh);
        assert_eq!(
            s.list().await.unwrap()[0].label.as_deref(),
            Some("@alice"),
            "label kept"
        );
        clock.advance_ms(60_000);
        let third = s.request("telegram", "42", None).await.unwrap();
        assert!(third.fresh, "expired after an hour: a new code");
        assert_ne!(third.code, first.code);
        assert_eq!(third.expires_at, T0 + 60 * 60_000 + CODE_TTL_MS);
        assert_eq!(s.list().await.unwrap()[0].label.as_deref(), Some("@alice"));
    }

    #[tokio::test]
    async fn approve_is_case_insensitive_and_lets_the_sender_in() {
        let (_d, clock, s) = store();
        let r = s.request("discord", "222", Some("bob")).await.unwrap();
        assert!(!s.is_approved("discord", "222").await.unwrap());
        clock.advance_ms(1000);
        let lower = r.code.to_lowercase();
        let typed = format!(" {}-{} ", &lower[..4], &lower[4..]);
        let a = s.approve("discord", &typed).await.unwrap();
        assert_eq!(
            a,
            Approved {
                channel: "discord".into(),
                sender: "222".into(),
                label: Some("bob".into()),
                approved_at: T0 + 1000
            }
        );
        assert!(s.is_approved("discord", "222").await.unwrap());
        assert!(
            !s.is_approved("telegram", "222").await.unwrap(),
            "per channel"
        );
        let e = s.approve("discord", &r.code).await.unwrap_err();
        assert!(matches!(e, PairingError::AlreadyApproved { .. }), "{e}");
        // An approved sender asking again is told so (and keeps the approval).
        clock.advance_ms(10 * CODE_TTL_MS);
        let again = s.request("discord", "222", None).await.unwrap();
        assert!(again.approved && !again.fresh);
        assert!(s.is_approved("discord", "222").await.unwrap());
    }

    #[tokio::test]
    async fn unknown_and_expired_codes_are_clear_errors() {
        let (_d, clock, s) = store();
        let e = s.approve("telegram", "ZZZZZZZZ").await.unwrap_err();
        assert!(matches!(e, PairingError::UnknownCode { .. }));
        assert!(e.to_string().contains("remoteclaw pairing list"), "{e}");

        let r = s.request("telegram", "7", None).await.unwrap();
        let e = s.approve("discord", &r.code).await.unwrap_err();
        assert!(
            matches!(e, PairingError::UnknownCode { .. }),
            "codes are per channel"
        );
        clock.advance_ms(CODE_TTL_MS);
        let e = s.approve("telegram", &r.code).await.unwrap_err();
        assert!(matches!(e, PairingError::Expired { .. }), "{e}");
        assert!(e.to_string().contains("message the bot again"), "{e}");
        assert!(!s.is_approved("telegram", "7").await.unwrap());
        assert!(
            s.list().await.unwrap().is_empty(),
            "expired requests are not listed"
        );
        // Long-expired requests are swept on the next request.
        clock.advance_ms(EXPIRED_KEEP_MS);
        s.request("telegram", "8", None).await.unwrap();
        let e = s.approve("telegram", &r.code).await.unwrap_err();
        assert!(matches!(e, PairingError::UnknownCode { .. }), "{e}");
    }

    #[tokio::test]
    async fn codes_are_unique_per_channel() {
        let (_d, _clock, s) = store();
        let s = s.with_code_generator(scripted(&["AAAAAAAA", "AAAAAAAA", "BBBBBBBB"]));
        let a = s.request("telegram", "1", None).await.unwrap();
        let b = s.request("telegram", "2", None).await.unwrap();
        assert_eq!(a.code, "AAAAAAAA");
        assert_eq!(b.code, "BBBBBBBB", "a taken code is drawn again");
        let s = s.with_code_generator(scripted(&["AAAAAAAA"]));
        assert_eq!(
            s.request("discord", "1", None).await.unwrap().code,
            "AAAAAAAA",
            "another channel may reuse it"
        );
        let e = s.request("telegram", "3", None).await.unwrap_err();
        assert!(e.to_string().contains("unused pairing code"), "{e}");
    }

    #[tokio::test]
    async fn list_and_revoke() {
        let (_d, clock, s) = store();
        let a = s.request("telegram", "1", Some("@a")).await.unwrap();
        clock.advance_ms(1000);
        s.request("discord", "2", None).await.unwrap();
        s.approve("telegram", &a.code).await.unwrap();
        let l = s.list().await.unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].status, PairingStatus::Pending);
        assert_eq!(l[0].sender, "2");
        assert!(l[0].code.is_some());
        assert_eq!(l[1].status, PairingStatus::Approved);
        assert_eq!(l[1].code, None, "an approved code is no longer shown");
        assert_eq!(l[1].approved_at, Some(T0 + 1000));

        assert!(s.revoke("telegram", "1").await.unwrap());
        assert!(!s.is_approved("telegram", "1").await.unwrap());
        assert!(!s.revoke("telegram", "1").await.unwrap());
        let fresh = s.request("telegram", "1", None).await.unwrap();
        assert!(fresh.fresh && !fresh.approved);
    }

    #[tokio::test]
    async fn normalizes_codes() {
        assert_eq!(normalize_code(" abcd-ef gh "), "ABCDEFGH");
        assert_eq!(who("1", Some("@x")), "1 (@x)");
        assert_eq!(who("1", Some(" ")), "1");
    }
}
