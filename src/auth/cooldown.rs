//! Credential cooldowns and usage (DESIGN §5): rate limits cool a credential down per
//! (credential, model) for the provider's retry-after or 1 min / 5 min / 25 min / 1 h;
//! quota or billing exhaustion disables it for 5 h doubling to 24 h; an auth failure
//! disables it until its secret changes or an operator clears it; success resets.
//!
//! The math is pure (`rate_limit_until`, `billing_until`); `CooldownBook` keeps the
//! state in `state.db`, so it survives restarts and is shared by every process, with an
//! in-memory copy refreshed whenever anyone commits (`PRAGMA data_version`).
//!
//! The book is async over a [`CooldownStore`]: `state.db` (`sqlite`, the SQLite writes
//! on its writer thread and reads on the blocking pool) or Redis (`state::redis_stores`),
//! shared by every replica.

mod sqlite;

pub use sqlite::SqliteCooldowns;

use crate::config::CooldownConfig;
use crate::providers::{ErrorKind, ProviderError};
use crate::state::{RECHECK_EVERY, Recheck, StateDb, StoreError, StoreFuture};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Model wildcard for `standing`: a cooldown for any model counts (status views).
pub const ANY_MODEL: &str = "*";

/// "Until cleared": an auth failure has no natural end.
pub const FOREVER: i64 = i64::MAX;

/// Why a credential is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    RateLimit,
    Quota,
    Billing,
    Auth,
    /// The token endpoint refused to refresh an OAuth sign-in: disabled until the
    /// profile changes (a new sign-in).
    RefreshFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RateLimit => "rate_limit",
            Reason::Quota => "quota",
            Reason::Billing => "billing",
            Reason::Auth => "auth",
            Reason::RefreshFailed => "refresh_failed",
        }
    }

    pub fn parse(s: &str) -> Reason {
        match s {
            "quota" => Reason::Quota,
            "billing" => Reason::Billing,
            "auth" => Reason::Auth,
            "refresh_failed" => Reason::RefreshFailed,
            _ => Reason::RateLimit,
        }
    }

    /// Rate limits cool down (the credential may still be tried last); the others
    /// disable it.
    pub fn disables(self) -> bool {
        self != Reason::RateLimit
    }
}

/// Next rate-limit cooldown: `(new error count, until)`.
pub fn rate_limit_until(
    prev_count: u32,
    retry_after: Option<Duration>,
    backoff_secs: &[u64],
    now_ms: i64,
) -> (u32, i64) {
    let count = prev_count.saturating_add(1);
    let wait_ms = match retry_after {
        Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        None => {
            let i = (count as usize - 1).min(backoff_secs.len().saturating_sub(1));
            let secs = backoff_secs.get(i).copied().unwrap_or(60);
            i64::try_from(secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000)
        }
    };
    (count, now_ms.saturating_add(wait_ms))
}

/// Next quota/billing disable: base hours doubling per failure, capped.
pub fn billing_until(prev_count: u32, base_hours: u64, max_hours: u64, now_ms: i64) -> (u32, i64) {
    let count = prev_count.saturating_add(1);
    let factor = 1u64
        .checked_shl(count.saturating_sub(1).min(32))
        .unwrap_or(u64::MAX);
    let hours = base_hours.saturating_mul(factor).min(max_hours);
    let ms = i64::try_from(hours)
        .unwrap_or(i64::MAX)
        .saturating_mul(3_600_000);
    (count, now_ms.saturating_add(ms))
}

/// How a provider error affects the credential, if at all.
pub fn reason_for(err: &ProviderError) -> Option<Reason> {
    match err.kind {
        ErrorKind::RateLimit if err.is_quota() => Some(Reason::Quota),
        ErrorKind::RateLimit => Some(Reason::RateLimit),
        ErrorKind::Billing => Some(Reason::Billing),
        ErrorKind::Auth if err.code.as_deref() == Some(crate::oauth::refresh::REFRESH_FAILED) => {
            Some(Reason::RefreshFailed)
        }
        // A refresh that cannot be made now (no endpoints, a failed save) says nothing
        // about the credential.
        ErrorKind::Auth
            if err.code.as_deref() == Some(crate::oauth::refresh::REFRESH_UNAVAILABLE) =>
        {
            None
        }
        ErrorKind::Auth => Some(Reason::Auth),
        _ => None,
    }
}

/// A credential's standing for one model, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub reason: Reason,
    /// Usable again at this epoch-ms instant (`FOREVER` = until cleared).
    pub until: i64,
}

/// One credential's runtime state found in an imported auth-profiles.json.
#[derive(Debug, Clone, Default)]
pub struct ImportEntry {
    pub credential: String,
    /// Fingerprint of the credential's current secret (cooldowns need it).
    pub fingerprint: Option<String>,
    pub last_used: Option<i64>,
    pub error_count: Option<u32>,
    pub cooldown_until: Option<i64>,
    pub disabled_until: Option<i64>,
    pub disabled_reason: Option<String>,
}

impl ImportEntry {
    /// The disable and cooldown still in force at `now_ms`, as (reason, until,
    /// fingerprint) — only for an entry that knows its secret's fingerprint.
    pub fn active(&self, now_ms: i64) -> Vec<(Reason, i64, &str)> {
        let Some(fp) = self.fingerprint.as_deref() else {
            return Vec::new();
        };
        let disabled = self.disabled_until.filter(|u| *u > now_ms).map(|u| {
            (
                Reason::parse(self.disabled_reason.as_deref().unwrap_or("billing")),
                u,
                fp,
            )
        });
        let cooling = self
            .cooldown_until
            .filter(|u| *u > now_ms)
            .map(|u| (Reason::RateLimit, u, fp));
        [disabled, cooling].into_iter().flatten().collect()
    }
}

/// A row for listings (`models auth cooldown list`, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownEntry {
    pub credential: String,
    /// The fingerprint of the secret (or sign-in) the entry was recorded for.
    pub fingerprint: String,
    /// Empty for credential-wide states (quota, billing, auth).
    pub model: String,
    pub reason: Reason,
    pub until: i64,
    pub error_count: u32,
}

/// One stored cooldown or disable of a credential (for one model, or credential-wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownRow {
    /// The secret it applies to: a new secret is not cooled down by the old one's errors.
    pub fingerprint: String,
    pub reason: Reason,
    pub until: i64,
    pub count: u32,
}

/// Everything a cooldown store holds, as loaded.
#[derive(Debug, Clone, Default)]
pub struct CooldownState {
    /// (credential, model or `""`, row)
    pub rows: Vec<(String, String, CooldownRow)>,
    /// credential → when it was last tried (epoch ms)
    pub last_used: Vec<(String, i64)>,
}

/// Where cooldowns and last-use times are kept: `state.db` ([`SqliteCooldowns`]) or
/// Redis, behind one interface. Every write is atomic in its store.
pub trait CooldownStore: Send + Sync + std::fmt::Debug + 'static {
    /// Changes whenever anyone (this process or another) wrote: an unchanged version
    /// means the in-memory copy is current.
    fn version(&self) -> StoreFuture<i64>;
    fn load(&self) -> StoreFuture<CooldownState>;
    /// Store `row` for (`credential`, `scope`) and mark the credential used at `now_ms`.
    fn set(&self, credential: &str, scope: &str, row: CooldownRow, now_ms: i64) -> StoreFuture<()>;
    /// The credential was tried at `now_ms` (`good`: and answered).
    fn touch(&self, credential: &str, now_ms: i64, good: bool) -> StoreFuture<()>;
    /// Remove the credential's cooldown for `model` and its credential-wide disable,
    /// those rows only that carry one of `fingerprints`: another agent's credential of the
    /// same id (another secret) keeps its state.
    fn clear_standing(
        &self,
        credential: &str,
        model: &str,
        fingerprints: &[String],
    ) -> StoreFuture<()>;
    /// Import `entries` unless `marker` was imported before; whether it was imported now.
    fn import_once(
        &self,
        marker: &str,
        entries: Vec<ImportEntry>,
        now_ms: i64,
    ) -> StoreFuture<bool>;
    /// Remove one credential's entries (or all); how many went.
    fn clear(&self, credential: Option<&str>) -> StoreFuture<usize>;
    /// Remove exactly these rows, each named by (credential, model or `""`,
    /// fingerprint); how many went.
    fn clear_rows(&self, rows: Vec<(String, String, String)>) -> StoreFuture<usize>;
    /// Other gateways write this store too (Redis): a turn must not go on from a copy
    /// that could not be checked ([`CooldownBook::turn_view`]).
    fn shared(&self) -> bool {
        false
    }
}

/// credential → its rows as (model or `""` for credential-wide, row): one per model and
/// secret fingerprint (the same id in two agents, with two secrets, has a row each). A
/// credential has a handful at most, so they are searched in order.
type Rows = FxHashMap<String, Vec<(String, CooldownRow)>>;

/// Store `row` for (`scope`, its fingerprint), replacing the one it supersedes.
fn upsert(rows: &mut Vec<(String, CooldownRow)>, scope: &str, row: CooldownRow) {
    match rows
        .iter_mut()
        .find(|(m, r)| m == scope && r.fingerprint == row.fingerprint)
    {
        Some(slot) => slot.1 = row,
        None => rows.push((scope.to_string(), row)),
    }
}

#[derive(Debug, Default)]
struct Cache {
    version: Option<i64>,
    rows: Arc<Rows>,
    last_used: Arc<FxHashMap<String, i64>>,
}

/// A consistent snapshot of the book, cheap to take (two `Arc` clones) and to query:
/// one turn's ordering asks it about every candidate without touching the store.
#[derive(Debug, Clone, Default)]
pub struct CooldownView {
    rows: Arc<Rows>,
    last_used: Arc<FxHashMap<String, i64>>,
}

impl CooldownView {
    /// Whether `credential` (with this secret fingerprint) is set aside for `model` now
    /// (`ANY_MODEL`: for any model). The later of its model cooldown and its
    /// credential-wide disable wins.
    pub fn standing(
        &self,
        credential: &str,
        fingerprint: &str,
        model: &str,
        now_ms: i64,
    ) -> Option<Standing> {
        let live = |row: &CooldownRow| row.fingerprint == fingerprint && row.until > now_ms;
        let to_standing = |row: &CooldownRow| Standing {
            reason: row.reason,
            until: row.until,
        };
        self.rows
            .get(credential)?
            .iter()
            .filter(|(m, row)| (model == ANY_MODEL || m == model || m.is_empty()) && live(row))
            .map(|(_, row)| to_standing(row))
            .max_by_key(|s| s.until)
    }

    /// When the credential was last tried (for least-recently-used ordering).
    pub fn last_used(&self, credential: &str) -> Option<i64> {
        self.last_used.get(credential).copied()
    }

    /// How many credentials are cooling down or disabled at `now_ms` (any model).
    pub fn active_count(&self, now_ms: i64) -> usize {
        self.rows
            .values()
            .filter(|rows| rows.iter().any(|(_, r)| r.until > now_ms))
            .count()
    }

    /// Whether a success on `model` has a cooldown or disable of `credential` (with one
    /// of `fingerprints`) to clear.
    fn has_state(&self, credential: &str, model: &str, fingerprints: &[String]) -> bool {
        has_state(&self.rows, credential, model, fingerprints)
    }
}

fn has_state(rows: &Rows, credential: &str, model: &str, fingerprints: &[String]) -> bool {
    rows.get(credential)
        .is_some_and(|rows| rows.iter().any(|(m, r)| clears(m, r, model, fingerprints)))
}

/// Whether a success on `model` with one of `fingerprints` ends this row: its cooldown
/// for that model, or its credential-wide disable.
fn clears(scope: &str, row: &CooldownRow, model: &str, fingerprints: &[String]) -> bool {
    (scope == model || scope.is_empty()) && fingerprints.contains(&row.fingerprint)
}

/// The cooldown book: the store's state with an in-memory copy that a turn reads
/// without a store call, checked against the store's version at most every
/// [`RECHECK_EVERY`] (so another process's or replica's change is seen within it).
#[derive(Debug)]
pub struct CooldownBook {
    store: Arc<dyn CooldownStore>,
    /// `auth.cooldowns`, replaced by a config reload (`set_config`).
    config: arc_swap::ArcSwap<CooldownConfig>,
    /// The in-memory copy; held only for memory work, never across a store call.
    cache: Mutex<Cache>,
    /// One staleness check (and reload) at a time.
    reload: tokio::sync::Mutex<()>,
    recheck: Recheck,
    /// Poked when a failure disables a credential (quota, billing, auth, refused
    /// refresh), so the alerts task reports it at once instead of at its next poll.
    disabled: tokio::sync::Notify,
}

impl CooldownBook {
    /// The book in `state.db`.
    pub fn new(db: Arc<StateDb>, config: CooldownConfig) -> CooldownBook {
        CooldownBook::with_store(Arc::new(SqliteCooldowns::new(db)), config)
    }

    pub fn with_store(store: Arc<dyn CooldownStore>, config: CooldownConfig) -> CooldownBook {
        CooldownBook {
            store,
            config: arc_swap::ArcSwap::from_pointee(config),
            cache: Mutex::new(Cache::default()),
            reload: tokio::sync::Mutex::new(()),
            recheck: Recheck::new(RECHECK_EVERY),
            disabled: tokio::sync::Notify::new(),
        }
    }

    /// Put reloaded `auth.cooldowns` settings in force (for the next failure).
    pub fn set_config(&self, config: CooldownConfig) {
        self.config.store(Arc::new(config));
    }

    /// Check the store for other processes' changes at most every `every` (instead
    /// of [`RECHECK_EVERY`]) in turns.
    pub fn with_recheck(mut self, every: Duration) -> CooldownBook {
        self.recheck = Recheck::new(every);
        self
    }

    /// Notified (one stored permit) whenever this process records a failure that
    /// disables a credential: the alerts task waits on it between polls.
    pub fn disabled_signal(&self) -> &tokio::sync::Notify {
        &self.disabled
    }

    /// Memory work on the cache (a poisoned lock is taken over: the cache holds no
    /// invariant a panic could break half-way, and the next reload replaces it).
    fn with_cache<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        let mut guard = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The in-memory copy as it is, if it was ever loaded (no store call).
    fn snapshot(&self) -> Option<CooldownView> {
        self.with_cache(|cache| {
            cache.version.map(|_| CooldownView {
                rows: cache.rows.clone(),
                last_used: cache.last_used.clone(),
            })
        })
    }

    /// Reload the in-memory copy if anyone wrote since it was loaded.
    async fn refresh(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let _one = self.reload.lock().await;
        let version = self.store.version().await?;
        if self.with_cache(|c| c.version) != Some(version) {
            let loaded = self.store.load().await?;
            let mut rows: Rows = FxHashMap::default();
            for (cred, model, row) in loaded.rows {
                upsert(rows.entry(cred).or_default(), &model, row);
            }
            let last_used = loaded.last_used.into_iter().collect();
            self.with_cache(|cache| {
                cache.rows = Arc::new(rows);
                cache.last_used = Arc::new(last_used);
                cache.version = Some(version);
            });
        }
        self.recheck.done(started);
        Ok(())
    }

    /// Run `f` on a fresh view of the cache (reloaded if anyone wrote).
    async fn cached<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> Result<T, StoreError> {
        self.refresh().await?;
        Ok(self.with_cache(f))
    }

    /// A turn's view: from memory, checked against the store when the last check is
    /// [`RECHECK_EVERY`] old. A store that cannot be read leaves the last known state
    /// in force.
    pub async fn view(&self) -> CooldownView {
        self.checked_view().await.unwrap_or_else(|e| {
            tracing::warn!("cooldown state unavailable: {e}");
            self.snapshot().unwrap_or_default()
        })
    }

    /// From memory, checked against the store when the last check is [`RECHECK_EVERY`]
    /// old; `Err` when that check fails.
    async fn checked_view(&self) -> Result<CooldownView, StoreError> {
        if !self.recheck.due()
            && let Some(view) = self.snapshot()
        {
            return Ok(view);
        }
        self.refresh().await?;
        Ok(self.snapshot().unwrap_or_default())
    }

    /// [`view`](Self::view) for a turn. A shared store (Redis) that cannot be read when
    /// the copy is due for a check fails the turn ("state store unavailable", DESIGN §9):
    /// other replicas may have set a cooldown since, and going on from the old copy would
    /// be falling back to a private store. `state.db` keeps the last known state in force.
    pub async fn turn_view(&self) -> Result<CooldownView, StoreError> {
        if self.store.shared() {
            self.checked_view().await
        } else {
            Ok(self.view().await)
        }
    }

    /// A view checked against the store now (listings, status).
    pub async fn fresh_view(&self) -> Result<CooldownView, StoreError> {
        self.refresh().await?;
        Ok(self.snapshot().unwrap_or_default())
    }

    /// Record a failed attempt. Returns the new standing when the error sets the
    /// credential aside.
    pub async fn record_failure(
        &self,
        credential: &str,
        fingerprint: &str,
        model: &str,
        err: &ProviderError,
        now_ms: i64,
    ) -> Result<Option<Standing>, StoreError> {
        let Some(reason) = reason_for(err) else {
            self.touch(credential, now_ms, false).await?;
            return Ok(None);
        };
        let scope = if reason == Reason::RateLimit {
            model
        } else {
            ""
        };
        let prev = self
            .cached(|c| {
                c.rows
                    .get(credential)
                    .and_then(|rows| {
                        rows.iter().find(|(m, r)| {
                            m == scope && r.fingerprint == fingerprint && r.reason == reason
                        })
                    })
                    .map(|(_, r)| r.count)
            })
            .await?;
        let prev = prev.unwrap_or(0);
        let config = self.config.load();
        let (count, until) = match reason {
            Reason::RateLimit => rate_limit_until(
                prev,
                err.retry_after,
                &config.rate_limit_backoff_secs,
                now_ms,
            ),
            Reason::Quota | Reason::Billing => billing_until(
                prev,
                config.billing_backoff_hours,
                config.billing_max_hours,
                now_ms,
            ),
            Reason::Auth | Reason::RefreshFailed => (prev.saturating_add(1), FOREVER),
        };
        let row = CooldownRow {
            fingerprint: fingerprint.to_string(),
            reason,
            until,
            count,
        };
        self.store
            .set(credential, scope, row.clone(), now_ms)
            .await?;
        self.with_cache(|c| {
            upsert(
                Arc::make_mut(&mut c.rows)
                    .entry(credential.to_string())
                    .or_default(),
                scope,
                row,
            );
            Arc::make_mut(&mut c.last_used).insert(credential.to_string(), now_ms);
        });
        if reason.disables() {
            self.disabled.notify_one();
        }
        Ok(Some(Standing { reason, until }))
    }

    /// Record a success: the credential's cooldown for this model and any disable end.
    /// `fingerprints` are the ones its rows may carry (the secret's; an OAuth sign-in's):
    /// rows with another (the same id in another agent, a replaced secret) stay.
    pub async fn record_success(
        &self,
        credential: &str,
        fingerprints: &[String],
        model: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.clear_standing(credential, model, fingerprints).await?;
        self.touch(credential, now_ms, true).await
    }

    /// A success that needs no usage record (environment and config keys): clears a
    /// cooldown if there was one. When the view in memory has no cooldown for the
    /// credential there is nothing to clear, and no store call is made at all.
    pub async fn record_success_quiet(
        &self,
        credential: &str,
        fingerprints: &[String],
        model: &str,
    ) -> Result<(), StoreError> {
        if self
            .snapshot()
            .is_some_and(|v| !v.has_state(credential, model, fingerprints))
        {
            return Ok(());
        }
        self.clear_standing(credential, model, fingerprints).await
    }

    async fn clear_standing(
        &self,
        credential: &str,
        model: &str,
        fingerprints: &[String],
    ) -> Result<(), StoreError> {
        let had_state = self
            .cached(|c| has_state(&c.rows, credential, model, fingerprints))
            .await?;
        if had_state {
            self.store
                .clear_standing(credential, model, fingerprints)
                .await?;
            self.with_cache(|c| {
                if let Some(rows) = Arc::make_mut(&mut c.rows).get_mut(credential) {
                    rows.retain(|(m, r)| !clears(m, r, model, fingerprints));
                }
            });
        }
        Ok(())
    }

    async fn touch(&self, credential: &str, now_ms: i64, good: bool) -> Result<(), StoreError> {
        self.store.touch(credential, now_ms, good).await?;
        self.with_cache(|c| {
            Arc::make_mut(&mut c.last_used).insert(credential.to_string(), now_ms);
        });
        Ok(())
    }

    /// Read an imported file's `usageStats` into the book, once per `marker` (the file's
    /// path). Returns whether anything was imported.
    pub async fn import_once(
        &self,
        marker: &str,
        entries: &[ImportEntry],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let imported = self
            .store
            .import_once(marker, entries.to_vec(), now_ms)
            .await?;
        if imported {
            self.with_cache(|c| c.version = None);
            self.refresh().await?;
        }
        Ok(imported)
    }

    /// Entries in force at `now_ms` (`i64::MIN`: every entry, also those whose time has
    /// run out but which still count failures), soonest end first.
    pub async fn list(&self, now_ms: i64) -> Result<Vec<CooldownEntry>, StoreError> {
        let mut out = self
            .cached(|c| {
                c.rows
                    .iter()
                    .flat_map(|(cred, rows)| rows.iter().map(move |(model, r)| (cred, model, r)))
                    .filter(|(_, _, r)| r.until > now_ms)
                    .map(|(cred, model, r)| CooldownEntry {
                        credential: cred.clone(),
                        fingerprint: r.fingerprint.clone(),
                        model: model.clone(),
                        reason: r.reason,
                        until: r.until,
                        error_count: r.count,
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        out.sort_by(|a, b| {
            a.until
                .cmp(&b.until)
                .then_with(|| a.credential.cmp(&b.credential))
        });
        Ok(out)
    }

    /// Clear exactly `entries` (an agent's own, from [`list`](Self::list)): another
    /// agent's profile of the same id keeps its state. Returns how many were removed.
    pub async fn clear_entries(&self, entries: &[CooldownEntry]) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let rows = entries
            .iter()
            .map(|e| (e.credential.clone(), e.model.clone(), e.fingerprint.clone()))
            .collect::<Vec<_>>();
        let n = self.store.clear_rows(rows).await?;
        self.with_cache(|c| {
            let all = Arc::make_mut(&mut c.rows);
            for e in entries {
                if let Some(rows) = all.get_mut(&e.credential) {
                    rows.retain(|(m, r)| !(*m == e.model && r.fingerprint == e.fingerprint));
                }
            }
        });
        Ok(n)
    }

    /// Clear one credential's entries (or all). Returns how many were removed.
    pub async fn clear(&self, credential: Option<&str>) -> Result<usize, StoreError> {
        let n = self.store.clear(credential).await?;
        self.with_cache(|c| {
            Arc::make_mut(&mut c.rows).retain(|cred, _| credential.is_some_and(|id| id != cred))
        });
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
