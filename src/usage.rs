//! Tokens used (DESIGN §10 "Usage"): every answered turn adds the provider's input and
//! output token counts to its session's and its credential's totals, kept in `state.db`
//! (migration v5, one row per session and credential). Read by `agent --json` (the turn's
//! own figures), `sessions show --json`, `/usage` in chat and `models status`.
//!
//! Counts are saturating: a provider's strange usage figure cannot wrap a total. Every
//! call from async code runs on the blocking pool.

use crate::providers::Usage;
use crate::state::{StateDb, StoreError, StoreFuture, blocking};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Input and output tokens (the `usage` objects of the JSON outputs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Totals {
    /// Add a row's tokens, saturating.
    pub fn add(&mut self, input: u64, output: u64) {
        self.input_tokens = self.input_tokens.saturating_add(input);
        self.output_tokens = self.output_tokens.saturating_add(output);
    }
}

impl From<Usage> for Totals {
    fn from(u: Usage) -> Totals {
        Totals {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

/// SQLite integers are signed: a total is stored capped at `i64::MAX`.
pub(crate) fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Add one turn's usage to the `session` × `credential` row.
fn add_tx(
    c: &rusqlite::Connection,
    session: &str,
    credential: &str,
    usage: Usage,
    now_ms: i64,
) -> rusqlite::Result<()> {
    // One statement, added up saturating at i64::MAX (SQLite's `+` would turn an overflow
    // into a float). The added counts are never negative (`to_db`).
    c.prepare_cached(
        "INSERT INTO usage (session, credential, input_tokens, output_tokens, turns, updated_at)
         VALUES (?1, ?2, ?3, ?4, 1, ?5)
         ON CONFLICT(session, credential) DO UPDATE SET
           input_tokens = CASE WHEN input_tokens > 9223372036854775807 - excluded.input_tokens
                          THEN 9223372036854775807 ELSE input_tokens + excluded.input_tokens END,
           output_tokens = CASE WHEN output_tokens > 9223372036854775807 - excluded.output_tokens
                           THEN 9223372036854775807 ELSE output_tokens + excluded.output_tokens END,
           turns = CASE WHEN turns >= 9223372036854775807 THEN turns ELSE turns + 1 END,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        session,
        credential,
        to_db(usage.input_tokens),
        to_db(usage.output_tokens),
        now_ms
    ])?;
    Ok(())
}

/// Where usage totals are kept: `state.db` ([`SqliteUsage`]) or Redis
/// (`state::redis_stores::RedisUsage`), behind one interface.
pub trait UsageStore: Send + Sync + std::fmt::Debug + 'static {
    /// Add one turn's usage to `session` × `credential`.
    fn record(&self, session: &str, credential: &str, usage: Usage, now_ms: i64)
    -> StoreFuture<()>;
    /// A session's totals over every credential, and its number of answered turns.
    fn session(&self, session: &str) -> StoreFuture<(Totals, u64)>;
    /// Totals per credential id, over every session.
    fn by_credential(&self) -> StoreFuture<BTreeMap<String, Totals>>;
}

/// Usage totals in `state.db`: writes through its group-commit writer, reads on the
/// blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteUsage {
    db: Arc<StateDb>,
}

impl SqliteUsage {
    pub fn new(db: Arc<StateDb>) -> SqliteUsage {
        SqliteUsage { db }
    }
}

impl UsageStore for SqliteUsage {
    fn record(
        &self,
        session: &str,
        credential: &str,
        usage: Usage,
        now_ms: i64,
    ) -> StoreFuture<()> {
        let (db, session, credential) =
            (self.db.clone(), session.to_string(), credential.to_string());
        Box::pin(async move {
            db.write_one_async(move |c| add_tx(c, &session, &credential, usage, now_ms))
                .await
        })
    }

    fn session(&self, session: &str) -> StoreFuture<(Totals, u64)> {
        let (db, session) = (self.db.clone(), session.to_string());
        Box::pin(async move {
            let d = db.clone();
            blocking(&d, move || {
                db.read(|c| {
                    // Added here, saturating (DESIGN §8: counters saturate): SQLite's SUM
                    // fails with "integer overflow" past i64::MAX.
                    let mut stmt = c.prepare_cached(
                        "SELECT input_tokens, output_tokens, turns FROM usage WHERE session = ?1",
                    )?;
                    let mut rows = stmt.query(params![session])?;
                    let (mut total, mut turns) = (Totals::default(), 0u64);
                    while let Some(r) = rows.next()? {
                        total.add(from_db(r.get(0)?), from_db(r.get(1)?));
                        turns = turns.saturating_add(from_db(r.get(2)?));
                    }
                    Ok((total, turns))
                })
            })
            .await
        })
    }

    fn by_credential(&self) -> StoreFuture<BTreeMap<String, Totals>> {
        let db = self.db.clone();
        Box::pin(async move {
            let d = db.clone();
            blocking(&d, move || {
                db.read(|c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT credential, input_tokens, output_tokens FROM usage",
                    )?;
                    let mut rows = stmt.query([])?;
                    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
                    while let Some(r) = rows.next()? {
                        out.entry(r.get(0)?)
                            .or_default()
                            .add(from_db(r.get(1)?), from_db(r.get(2)?));
                    }
                    Ok(out)
                })
            })
            .await
        })
    }
}

/// The usage totals, in whichever store the gateway uses.
#[derive(Debug, Clone)]
pub struct UsageBook {
    store: Arc<dyn UsageStore>,
}

impl UsageBook {
    /// Totals in `state.db`.
    pub fn new(db: Arc<StateDb>) -> UsageBook {
        UsageBook::with_store(Arc::new(SqliteUsage::new(db)))
    }

    pub fn with_store(store: Arc<dyn UsageStore>) -> UsageBook {
        UsageBook { store }
    }

    /// Add one turn's usage to `session` × `credential`.
    pub async fn record(
        &self,
        session: &str,
        credential: &str,
        usage: Usage,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.store.record(session, credential, usage, now_ms).await
    }

    /// A session's totals over every credential, and its number of answered turns.
    pub async fn session(&self, session: &str) -> Result<(Totals, u64), StoreError> {
        self.store.session(session).await
    }

    /// Totals per credential id, over every session.
    pub async fn by_credential(&self) -> Result<BTreeMap<String, Totals>, StoreError> {
        self.store.by_credential().await
    }
}

// Tested over both stores in tests/state_stores.rs (`usage_totals_add_up_and_saturate`).
