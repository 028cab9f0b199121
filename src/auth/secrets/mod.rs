//! SecretRefs (DESIGN §5): `{ source, provider, id }` pointers to where a secret lives —
//! an environment variable (`env`), a file (`file`: JSON pointer or single value) or an
//! operator's resolver command (`exec`) — resolved through the providers configured
//! under `[secrets.providers.*]`.
//!
//! Successful results are cached for a TTL; failures are remembered for `FAILURE_TTL`
//! (by the injected clock), so a broken ref costs no process or file read per turn.
//! Lookups are single-flight: while a ref is being fetched, other callers that need it
//! wait for that fetch instead of starting their own. Errors, logs and `Debug` name refs
//! as `<source>:<provider>:<id>` with the reason, and never carry a secret value, file
//! content or command output.

mod checks;
mod exec;
mod file;
mod route;

/// Whether `r` names a secret provider the config defines, of the ref's source (the
/// implicit `env`/`default` always exists). `Err` says what is wrong and the fix.
pub fn check_ref(
    config: &crate::config::Config,
    r: &crate::config::SecretRef,
) -> Result<(), String> {
    route::lookup(config, r).map(|_| ())
}

use route::{Provider, lookup, resolve_env};

use crate::clock::{Clock, SystemClock};
use crate::config::env::EnvMap;
use crate::config::live::LiveConfig;
use crate::config::{ExecSecretProvider, FileSecretProvider, SecretInput, SecretRef, SecretSource};
use crate::secret::Secret;
use dashmap::DashMap;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a resolved secret is reused before it is looked up again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// How long a failed lookup is remembered before the ref is tried again.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);

/// Why a ref could not be resolved. Display names the ref as `<source>:<provider>:<id>`
/// and the reason, never a secret value (not even a partial one, not the file content,
/// not the exec output).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret ref {reference} could not be resolved: {message}")]
pub struct RefError {
    pub reference: String,
    pub message: String,
}

impl RefError {
    fn new(r: &SecretRef, message: impl Into<String>) -> Self {
        RefError {
            reference: ref_label(r),
            message: message.into(),
        }
    }
}

/// `env:default:OPENAI_KEY` style label of a ref (used in status output and logs).
pub fn ref_label(r: &SecretRef) -> String {
    format!("{}:{}:{}", source_name(r.source), r.provider, r.id)
}

fn source_name(s: SecretSource) -> &'static str {
    match s {
        SecretSource::Env => "env",
        SecretSource::File => "file",
        SecretSource::Exec => "exec",
    }
}

/// Resolves SecretRefs against the configured providers, with a TTL cache for values,
/// a short memory of failures and one lookup in flight per ref.
pub struct SecretResolver {
    config: LiveConfig,
    env: Arc<EnvMap>,
    ttl: Duration,
    /// Successful lookups and when they were made.
    cache: DashMap<SecretRef, (Secret, Instant)>,
    clock: Arc<dyn Clock>,
    failure_ttl: Duration,
    /// Failed lookups and when they failed (`clock` ms).
    failures: DashMap<SecretRef, (RefError, i64)>,
    /// One lock per ref, held while the ref is fetched (single flight).
    flights: DashMap<SecretRef, Arc<tokio::sync::Mutex<()>>>,
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("providers", &self.config.get().secrets.providers.keys())
            .field("ttl", &self.ttl)
            .field("cached", &self.cache.len())
            .field("failed", &self.failures.len())
            .finish_non_exhaustive()
    }
}

impl SecretResolver {
    pub fn new(config: impl Into<LiveConfig>, env: Arc<EnvMap>) -> Self {
        SecretResolver {
            config: config.into(),
            env,
            ttl: DEFAULT_TTL,
            cache: DashMap::new(),
            clock: Arc::new(SystemClock),
            failure_ttl: FAILURE_TTL,
            failures: DashMap::new(),
            flights: DashMap::new(),
        }
    }

    /// The clock that times remembered failures.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Remember failures for `ttl` (`Duration::ZERO`: try again on every call).
    pub fn with_failure_ttl(mut self, ttl: Duration) -> Self {
        self.failure_ttl = ttl;
        self
    }

    /// Cache successes for `ttl` (`Duration::ZERO`: never reuse a value).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Resolve one ref (see `resolve_many`).
    pub async fn resolve(&self, r: &SecretRef) -> Result<Secret, RefError> {
        self.resolve_many(std::slice::from_ref(r))
            .await
            .remove(r)
            .unwrap_or_else(|| Err(RefError::new(r, "no result (internal error)")))
    }

    /// Resolve several refs; exec refs of the same provider are batched into ONE process
    /// call with all their ids (and each file is read once). Each ref gets its own result.
    /// Values come from the cache while fresh, failures are remembered for
    /// `FAILURE_TTL`, and a ref already being fetched by another caller is waited for.
    pub async fn resolve_many(
        &self,
        refs: &[SecretRef],
    ) -> HashMap<SecretRef, Result<Secret, RefError>> {
        let mut out = HashMap::with_capacity(refs.len());
        let mut todo = Vec::new();
        let mut seen = HashSet::with_capacity(refs.len());
        for r in refs {
            if !seen.insert(r) {
                continue;
            }
            match self.known(r) {
                Some(result) => {
                    out.insert(r.clone(), result);
                }
                None => todo.push(r),
            }
        }
        if todo.is_empty() {
            return out;
        }
        // Single flight: hold each ref's lock while fetching it. Locks are taken in one
        // global order, so callers with overlapping sets cannot deadlock.
        todo.sort_by(|a, b| {
            (source_name(a.source), &a.provider, &a.id).cmp(&(
                source_name(b.source),
                &b.provider,
                &b.id,
            ))
        });
        let mut held = Vec::with_capacity(todo.len());
        for r in &todo {
            let lock = self.flights.entry((*r).clone()).or_default().clone();
            held.push(lock.lock_owned().await);
        }
        // Whoever held a lock before us may have settled the ref meanwhile.
        let mut fetch = Vec::with_capacity(todo.len());
        for r in todo {
            match self.known(r) {
                Some(result) => {
                    out.insert(r.clone(), result);
                }
                None => fetch.push(r),
            }
        }
        out.extend(self.fetch(fetch).await);
        drop(held);
        out
    }

    /// A fresh cached value or a remembered failure, without I/O.
    fn known(&self, r: &SecretRef) -> Option<Result<Secret, RefError>> {
        if let Some(hit) = self.cached(r) {
            return Some(Ok(hit));
        }
        let now = self.clock.now_ms();
        let ttl_ms = i64::try_from(self.failure_ttl.as_millis()).unwrap_or(i64::MAX);
        let fresh = |at: i64| now.saturating_sub(at) < ttl_ms;
        let failed = self
            .failures
            .get(r)
            .and_then(|entry| fresh(entry.1).then(|| entry.0.clone()));
        if failed.is_none() {
            self.failures.remove_if(r, |_, (_, at)| !fresh(*at));
        }
        failed.map(Err)
    }

    /// A plain string or a ref.
    pub async fn resolve_input(&self, input: &SecretInput) -> Result<Secret, RefError> {
        match input {
            SecretInput::Plain(value) => Ok(Secret::new(&**value)),
            SecretInput::Ref(r) => self.resolve(r).await,
        }
    }

    /// Cached value only, no I/O (for hot paths).
    pub fn cached(&self, r: &SecretRef) -> Option<Secret> {
        let hit = self.cache.get(r).and_then(|entry| {
            let (secret, at) = entry.value();
            (at.elapsed() < self.ttl).then(|| secret.clone())
        });
        if hit.is_none() {
            let ttl = self.ttl;
            self.cache.remove_if(r, |_, (_, at)| at.elapsed() >= ttl);
        }
        hit
    }

    /// Look refs up (no cache read), grouping file refs by file and exec refs by
    /// provider; store successes and remember failures.
    async fn fetch(&self, refs: Vec<&SecretRef>) -> Vec<(SecretRef, Result<Secret, RefError>)> {
        let started = Instant::now();
        let mut done: Vec<(&SecretRef, Result<Secret, String>)> = Vec::new();
        let mut files: BTreeMap<&str, (&FileSecretProvider, Vec<&SecretRef>)> = BTreeMap::new();
        let mut execs: BTreeMap<&str, (&ExecSecretProvider, Vec<&SecretRef>)> = BTreeMap::new();
        let config = self.config.get();
        for r in refs {
            match lookup(&config, r) {
                Err(message) => done.push((r, Err(message))),
                Ok(Provider::Env(p)) => {
                    done.push((r, resolve_env(&r.provider, p, &self.env, &r.id)));
                }
                Ok(Provider::File(p)) => files.entry(&r.provider).or_insert((p, vec![])).1.push(r),
                Ok(Provider::Exec(p)) => execs.entry(&r.provider).or_insert((p, vec![])).1.push(r),
            }
        }

        let file_jobs = files.into_iter().map(|(alias, (p, rs))| async move {
            let loaded = file::load(alias, p).await;
            rs.into_iter()
                .map(|r| {
                    let result = match &loaded {
                        Ok(doc) => file::extract(p, doc, &r.id),
                        Err(message) => Err(message.clone()),
                    };
                    (
                        r,
                        result.map_err(|m| format!("file provider \"{alias}\": {m}")),
                    )
                })
                .collect::<Vec<_>>()
        });
        let env = &self.env;
        let exec_jobs = execs.into_iter().map(|(alias, (p, rs))| async move {
            let ids: Vec<&str> = rs.iter().map(|r| r.id.as_str()).collect();
            let mut batch = exec::resolve_batch(alias, p, env, &ids).await;
            rs.into_iter()
                .map(|r| {
                    let result = match &mut batch {
                        Err(message) => Err(message.clone()),
                        Ok(by_id) => by_id
                            .remove(&r.id)
                            .unwrap_or_else(|| Err("no value returned for this id".into()))
                            .map_err(|m| format!("exec provider \"{alias}\": {m}")),
                    };
                    (r, result)
                })
                .collect::<Vec<_>>()
        });
        let (file_results, exec_results) = futures_util::future::join(
            futures_util::future::join_all(file_jobs),
            futures_util::future::join_all(exec_jobs),
        )
        .await;
        done.extend(file_results.into_iter().flatten());
        done.extend(exec_results.into_iter().flatten());

        let elapsed_ms = started.elapsed().as_millis() as u64;
        let now = Instant::now();
        let failed_at = self.clock.now_ms();
        done.into_iter()
            .map(|(r, result)| {
                let label = ref_label(r);
                let result = match result {
                    Ok(secret) => {
                        tracing::debug!(reference = %label, elapsed_ms, "secret ref resolved");
                        if !self.ttl.is_zero() {
                            self.cache.insert(r.clone(), (secret.clone(), now));
                        }
                        Ok(secret)
                    }
                    Err(message) => {
                        tracing::debug!(reference = %label, elapsed_ms, error = %message, "secret ref failed");
                        let e = RefError {
                            reference: label,
                            message,
                        };
                        if !self.failure_ttl.is_zero() {
                            self.failures.insert(r.clone(), (e.clone(), failed_at));
                        }
                        Err(e)
                    }
                };
                (r.clone(), result)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_ref(provider: &str, id: &str) -> SecretRef {
        SecretRef {
            source: SecretSource::Env,
            provider: provider.into(),
            id: id.into(),
        }
    }

    fn resolver(toml: &str, env: &[(&str, &str)]) -> SecretResolver {
        let config = crate::config::parse(std::path::Path::new("t.toml"), toml).unwrap();
        SecretResolver::new(
            Arc::new(config),
            Arc::new(EnvMap::from_pairs(env.iter().copied())),
        )
    }

    #[test]
    fn labels() {
        assert_eq!(
            ref_label(&env_ref("default", "OPENAI_KEY")),
            "env:default:OPENAI_KEY"
        );
        let r = SecretRef {
            source: SecretSource::Exec,
            provider: "vault".into(),
            id: "openai/key".into(),
        };
        assert_eq!(ref_label(&r), "exec:vault:openai/key");
        let e = RefError::new(&r, "did not answer");
        assert_eq!(
            e.to_string(),
            "secret ref exec:vault:openai/key could not be resolved: did not answer"
        );
    }

    #[tokio::test]
    async fn provider_lookup_errors() {
        let r = resolver(
            "[secrets.providers.files]\nsource = \"file\"\npath = \"/nonexistent/s.json\"\n",
            &[],
        );
        let e = r.resolve(&env_ref("files", "X")).await.unwrap_err();
        assert!(
            e.message
                .contains("provider files is a file provider, but the ref says env"),
            "{e}"
        );
        let e = r.resolve(&env_ref("team", "X")).await.unwrap_err();
        assert!(e.message.contains("[secrets.providers.team]"), "{e}");
        let exec = SecretRef {
            source: SecretSource::Exec,
            provider: "default".into(),
            id: "x".into(),
        };
        let e = r.resolve(&exec).await.unwrap_err();
        assert!(e.message.contains("[secrets.providers.default]"), "{e}");
        assert!(e.message.contains("source = \"exec\""), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn cache_expires_after_ttl() {
        let r = resolver("", &[("K", " CANARY-env ")]);
        let k = env_ref("default", "K");
        assert!(r.cached(&k).is_none());
        assert_eq!(r.resolve(&k).await.unwrap().expose(), "CANARY-env");
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(r.cached(&k).unwrap().expose(), "CANARY-env");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(r.cached(&k).is_none());
        assert!(!format!("{r:?}").contains("CANARY"));
    }

    #[tokio::test]
    async fn zero_ttl_caches_nothing() {
        let r = resolver("", &[("K", "v")]).with_ttl(Duration::ZERO);
        let k = env_ref("default", "K");
        assert!(r.resolve(&k).await.is_ok());
        assert!(r.cached(&k).is_none());
    }
}
