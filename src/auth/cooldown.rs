//! Credential cooldowns and usage (DESIGN §5): rate limits cool a credential down per
//! (credential, model) for the provider's retry-after or 1 min / 5 min / 25 min / 1 h;
//! quota or billing exhaustion disables it for 5 h doubling to 24 h; an auth failure
//! disables it until its secret changes or an operator clears it; success resets.
//!
//! The math is pure (`rate_limit_until`, `billing_until`); `CooldownBook` keeps the
//! state in `state.db`, so it survives restarts and is shared by every process, with an
//! in-memory copy refreshed whenever anyone commits (`PRAGMA data_version`).
//!
//! The plain methods block (the CLI uses them); a turn uses the `_async` ones (`turn`).

mod turn;

use crate::config::CooldownConfig;
use crate::providers::{ErrorKind, ProviderError};
use crate::state::{RECHECK_EVERY, Recheck, StateDb, StoreError};
use rusqlite::params;
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

    fn parse(s: &str) -> Reason {
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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    fingerprint: String,
    reason: Reason,
    until: i64,
    count: u32,
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

/// A row for listings (`models auth cooldown list`, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownEntry {
    pub credential: String,
    /// Empty for credential-wide states (quota, billing, auth).
    pub model: String,
    pub reason: Reason,
    pub until: i64,
    pub error_count: u32,
}

/// credential → model (`""` for credential-wide) → row; looked up by `&str`.
type Rows = FxHashMap<String, FxHashMap<String, Row>>;

#[derive(Debug, Default)]
struct Cache {
    version: Option<i64>,
    rows: Arc<Rows>,
    last_used: Arc<FxHashMap<String, i64>>,
}

/// A consistent snapshot of the book, cheap to take (two `Arc` clones) and to query:
/// one turn's ordering asks it about every candidate without touching the database.
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
        let live = |row: &Row| row.fingerprint == fingerprint && row.until > now_ms;
        let to_standing = |row: &Row| Standing {
            reason: row.reason,
            until: row.until,
        };
        let rows = self.rows.get(credential)?;
        if model == ANY_MODEL {
            return rows
                .values()
                .filter(|row| live(row))
                .map(to_standing)
                .max_by_key(|s| s.until);
        }
        [rows.get(model), rows.get("")]
            .into_iter()
            .flatten()
            .filter(|row| live(row))
            .map(to_standing)
            .max_by_key(|s| s.until)
    }

    /// When the credential was last tried (for least-recently-used ordering).
    pub fn last_used(&self, credential: &str) -> Option<i64> {
        self.last_used.get(credential).copied()
    }

    /// Whether a success on `model` has a cooldown or disable of `credential` to clear.
    fn has_state(&self, credential: &str, model: &str) -> bool {
        has_state(&self.rows, credential, model)
    }
}

fn has_state(rows: &Rows, credential: &str, model: &str) -> bool {
    rows.get(credential)
        .is_some_and(|m| m.contains_key(model) || m.contains_key(""))
}

#[derive(Debug)]
pub struct CooldownBook {
    db: Arc<StateDb>,
    config: CooldownConfig,
    /// The in-memory copy; held only for memory work, never across a database call.
    cache: Mutex<Cache>,
    /// One staleness check (and reload) at a time; only taken off the async workers.
    reload: Mutex<()>,
    recheck: Recheck,
}

type Loaded = (Rows, FxHashMap<String, i64>);

fn load_rows(c: &mut rusqlite::Connection) -> rusqlite::Result<Loaded> {
    let mut rows: Rows = FxHashMap::default();
    let mut stmt = c.prepare_cached(
        "SELECT credential, model, fingerprint, reason, until_ms, error_count FROM credential_state",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let reason: String = r.get(3)?;
        rows.entry(r.get::<_, String>(0)?).or_default().insert(
            r.get(1)?,
            Row {
                fingerprint: r.get(2)?,
                reason: Reason::parse(&reason),
                until: r.get(4)?,
                count: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
            },
        );
    }
    let mut last_used = FxHashMap::default();
    let mut stmt = c.prepare_cached(
        "SELECT credential, last_used FROM credential_usage WHERE last_used IS NOT NULL",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        last_used.insert(r.get(0)?, r.get(1)?);
    }
    Ok((rows, last_used))
}

impl CooldownBook {
    pub fn new(db: Arc<StateDb>, config: CooldownConfig) -> CooldownBook {
        CooldownBook {
            db,
            config,
            cache: Mutex::new(Cache::default()),
            reload: Mutex::new(()),
            recheck: Recheck::new(RECHECK_EVERY),
        }
    }

    /// Check the database for other processes' changes at most every `every` (instead
    /// of [`RECHECK_EVERY`]) in turns.
    pub fn with_recheck(mut self, every: Duration) -> CooldownBook {
        self.recheck = Recheck::new(every);
        self
    }

    fn lock_cache(&self) -> Result<std::sync::MutexGuard<'_, Cache>, StoreError> {
        self.cache
            .lock()
            .map_err(|_| self.db.err("cooldown cache poisoned"))
    }

    /// Reload the in-memory copy if anyone committed since it was loaded (blocking).
    fn refresh(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let _one = self
            .reload
            .lock()
            .map_err(|_| self.db.err("cooldown reload poisoned"))?;
        let version = self.db.data_version()?;
        if self.lock_cache()?.version != Some(version) {
            let (rows, last_used) = self.db.read(load_rows)?;
            let mut cache = self.lock_cache()?;
            cache.rows = Arc::new(rows);
            cache.last_used = Arc::new(last_used);
            cache.version = Some(version);
        }
        self.recheck.done(started);
        Ok(())
    }

    /// Run `f` on a fresh view of the cache (reloaded if anyone committed). Blocking.
    fn cached<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> Result<T, StoreError> {
        self.refresh()?;
        Ok(f(&mut *self.lock_cache()?))
    }

    /// A snapshot of the current state (reloaded first if anyone committed). Blocking.
    pub fn view(&self) -> CooldownView {
        self.cached(|c| CooldownView {
            rows: c.rows.clone(),
            last_used: c.last_used.clone(),
        })
        .unwrap_or_else(|e| {
            tracing::warn!("cooldown state unavailable: {e}");
            self.snapshot().unwrap_or_default()
        })
    }

    /// See `CooldownView::standing`.
    pub fn standing(
        &self,
        credential: &str,
        fingerprint: &str,
        model: &str,
        now_ms: i64,
    ) -> Option<Standing> {
        self.view().standing(credential, fingerprint, model, now_ms)
    }

    /// See `CooldownView::last_used`.
    pub fn last_used(&self, credential: &str) -> Option<i64> {
        self.view().last_used(credential)
    }

    /// Record a failed attempt. Returns the new standing when the error sets the
    /// credential aside.
    pub fn record_failure(
        &self,
        credential: &str,
        fingerprint: &str,
        model: &str,
        err: &ProviderError,
        now_ms: i64,
    ) -> Result<Option<Standing>, StoreError> {
        let Some(reason) = reason_for(err) else {
            self.touch(credential, now_ms, false)?;
            return Ok(None);
        };
        let scope = if reason == Reason::RateLimit {
            model
        } else {
            ""
        };
        let prev = self.cached(|c| {
            c.rows
                .get(credential)
                .and_then(|m| m.get(scope))
                .filter(|r| r.fingerprint == fingerprint && r.reason == reason)
                .map(|r| r.count)
        })?;
        let prev = prev.unwrap_or(0);
        let (count, until) = match reason {
            Reason::RateLimit => rate_limit_until(
                prev,
                err.retry_after,
                &self.config.rate_limit_backoff_secs,
                now_ms,
            ),
            Reason::Quota | Reason::Billing => billing_until(
                prev,
                self.config.billing_backoff_hours,
                self.config.billing_max_hours,
                now_ms,
            ),
            Reason::Auth | Reason::RefreshFailed => (prev.saturating_add(1), FOREVER),
        };
        self.db.write(|c| {
            let tx = c.savepoint()?;
            tx.prepare_cached("INSERT INTO credential_state (credential, model, fingerprint, reason, until_ms, error_count, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(credential, model) DO UPDATE SET fingerprint = ?3, reason = ?4, until_ms = ?5, error_count = ?6, updated_at = ?7")?.execute(params![credential, scope, fingerprint, reason.as_str(), until, count, now_ms])?;
            tx.prepare_cached("INSERT INTO credential_usage (credential, last_used) VALUES (?1, ?2) ON CONFLICT(credential) DO UPDATE SET last_used = ?2")?.execute(params![credential, now_ms])?;
            tx.commit()
        })?;
        self.cached(|c| {
            Arc::make_mut(&mut c.rows)
                .entry(credential.to_string())
                .or_default()
                .insert(
                    scope.to_string(),
                    Row {
                        fingerprint: fingerprint.to_string(),
                        reason,
                        until,
                        count,
                    },
                );
            Arc::make_mut(&mut c.last_used).insert(credential.to_string(), now_ms);
        })?;
        Ok(Some(Standing { reason, until }))
    }

    /// Record a success: the credential's cooldown for this model and any disable end.
    pub fn record_success(
        &self,
        credential: &str,
        model: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.clear_standing(credential, model)?;
        self.touch(credential, now_ms, true)
    }

    /// A success that needs no usage record (environment and config keys): clears a
    /// cooldown if there was one, and writes nothing otherwise.
    pub fn record_success_quiet(&self, credential: &str, model: &str) -> Result<(), StoreError> {
        self.clear_standing(credential, model)
    }

    fn clear_standing(&self, credential: &str, model: &str) -> Result<(), StoreError> {
        let had_state = self.cached(|c| has_state(&c.rows, credential, model))?;
        if had_state {
            self.db.write(|c| {
                c.prepare_cached(
                    "DELETE FROM credential_state WHERE credential = ?1 AND model IN (?2, '')",
                )?
                .execute(params![credential, model])
            })?;
            self.cached(|c| {
                if let Some(m) = Arc::make_mut(&mut c.rows).get_mut(credential) {
                    m.remove(model);
                    m.remove("");
                }
            })?;
        }
        Ok(())
    }

    fn touch(&self, credential: &str, now_ms: i64, good: bool) -> Result<(), StoreError> {
        self.db.write(|c| {
            c.prepare_cached("INSERT INTO credential_usage (credential, last_used, last_good) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END)
                 ON CONFLICT(credential) DO UPDATE SET last_used = ?2, last_good = CASE WHEN ?3 THEN ?2 ELSE last_good END")?.execute(params![credential, now_ms, good])
        })?;
        self.cached(|c| {
            Arc::make_mut(&mut c.last_used).insert(credential.to_string(), now_ms);
        })
    }

    /// Read an imported file's `usageStats` into the book, once per `marker` (the file's
    /// path). Returns whether anything was imported.
    pub fn import_once(
        &self,
        marker: &str,
        entries: &[ImportEntry],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = format!("usage_import:{marker}");
        let imported = self.db.write(|c| {
            let tx = c.savepoint()?;
            let done: bool = tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM meta WHERE key = ?1)")?.query_row([&key], |r| r.get(0))?;
            if done {
                return Ok(false);
            }
            for e in entries {
                if let Some(t) = e.last_used {
                    tx.prepare_cached("INSERT INTO credential_usage (credential, last_used) VALUES (?1, ?2) ON CONFLICT(credential) DO UPDATE SET last_used = MAX(COALESCE(last_used, 0), ?2)")?.execute(params![e.credential, t])?;
                }
                let Some(fp) = &e.fingerprint else { continue };
                let disabled = e.disabled_until.filter(|u| *u > now_ms).map(|u| (Reason::parse(e.disabled_reason.as_deref().unwrap_or("billing")), u));
                let cooling = e.cooldown_until.filter(|u| *u > now_ms).map(|u| (Reason::RateLimit, u));
                for (reason, until) in [disabled, cooling].into_iter().flatten() {
                    tx.prepare_cached("INSERT OR IGNORE INTO credential_state (credential, model, fingerprint, reason, until_ms, error_count, updated_at) VALUES (?1, '', ?2, ?3, ?4, ?5, ?6)")?.execute(params![e.credential, fp, reason.as_str(), until, e.error_count.unwrap_or(1), now_ms])?;
                }
            }
            tx.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2)")?.execute(params![key, now_ms.to_string()])?;
            tx.commit()?;
            Ok(true)
        })?;
        if imported {
            // Our writer is another connection, so data_version moved: reload.
            self.refresh()?;
        }
        Ok(imported)
    }

    /// Active entries (not yet expired), soonest end first.
    pub fn list(&self, now_ms: i64) -> Result<Vec<CooldownEntry>, StoreError> {
        let mut out = self.cached(|c| {
            c.rows
                .iter()
                .flat_map(|(cred, models)| models.iter().map(move |(model, r)| (cred, model, r)))
                .filter(|(_, _, r)| r.until > now_ms)
                .map(|(cred, model, r)| CooldownEntry {
                    credential: cred.clone(),
                    model: model.clone(),
                    reason: r.reason,
                    until: r.until,
                    error_count: r.count,
                })
                .collect::<Vec<_>>()
        })?;
        out.sort_by(|a, b| {
            a.until
                .cmp(&b.until)
                .then_with(|| a.credential.cmp(&b.credential))
        });
        Ok(out)
    }

    /// Clear one credential's entries (or all). Returns how many were removed.
    pub fn clear(&self, credential: Option<&str>) -> Result<usize, StoreError> {
        let n = self.db.write(|c| match credential {
            Some(id) => c
                .prepare_cached("DELETE FROM credential_state WHERE credential = ?1")?
                .execute([id]),
            None => c
                .prepare_cached("DELETE FROM credential_state")?
                .execute([]),
        })?;
        self.cached(|c| {
            Arc::make_mut(&mut c.rows).retain(|cred, _| credential.is_some_and(|id| id != cred))
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
