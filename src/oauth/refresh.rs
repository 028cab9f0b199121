//! Keeping OAuth credentials usable (DESIGN §5a): a credential whose access token
//! expires within [`REFRESH_AHEAD_MS`] is refreshed before use, and once after the
//! provider answers 401 for it.
//!
//! A refresh is one locked step on auth-profiles.json: take the cross-process lock,
//! re-read the file, and if another process (or another turn here) already refreshed —
//! the file holds a different access token that is fresh — use that and make no request;
//! otherwise call the token endpoint while still holding the lock and write the new tokens
//! (atomically, 0600) before letting go. So any number of processes sharing the file make
//! one token request per refresh and never present a refresh token twice. Turns of this
//! process queue on a per-profile async mutex first, so they wait without holding a
//! blocking thread each.
//!
//! A fresh credential costs one comparison: no lock, no file access.

use super::preset::Endpoints;
use super::tokens::{self, Granted, TokenError};
use crate::auth::credential::{Credential, CredentialKind, CredentialSource};
use crate::auth::profile_writer;
use crate::auth::profiles::{ProfileCredential, ProfileStore};
use crate::clock::Clock;
use crate::config::live::LiveConfig;
use crate::providers::{ErrorKind, ProviderError};
use crate::secret::Secret;
use crate::state::lease::Coordinator;
use dashmap::DashMap;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Refresh this long before the access token expires.
pub const REFRESH_AHEAD_MS: i64 = 5 * 60 * 1000;

/// The provider error code of a refresh the token endpoint refused (the credential is
/// disabled with reason `refresh_failed` until its profile changes).
pub const REFRESH_FAILED: &str = "refresh_failed";
/// The provider error code of a refresh that could not be made now (network, 5xx).
pub const REFRESH_UNAVAILABLE: &str = "refresh_unavailable";

/// Refreshes the OAuth profiles of one auth-profiles.json.
#[derive(Debug)]
pub struct Refresher {
    config: LiveConfig,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
    /// One refresh at a time per profile id in this process.
    inflight: DashMap<Arc<str>, Arc<tokio::sync::Mutex<()>>>,
    /// With a Redis store: one refresh at a time per profile id across replicas.
    coordinator: Option<Coordinator>,
    /// Tokens a refresh got but could not write (the file turned corrupt or unwritable
    /// meanwhile), per profile id: used from memory until a refresh can save them.
    unsaved: Arc<std::sync::Mutex<std::collections::HashMap<Arc<str>, Unsaved>>>,
}

/// Refreshed tokens not in the file yet.
#[derive(Debug, Clone)]
struct Unsaved {
    granted: Granted,
    /// The refresh token to present next (the rotated one, or the one presented).
    refresh: Secret,
    /// Fingerprint of the refresh token the file still holds: while it does, the file
    /// is older than these tokens.
    file_refresh_fp: String,
}

/// How long a refresh waits for another replica's refresh of the same profile before it
/// goes ahead anyway (the file lock still serializes processes sharing the file).
const REPLICA_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// What the locked read found.
enum Step {
    /// Someone else refreshed: use this.
    Use(Credential),
    /// Refresh with this token, holding this lock; the fingerprint of the refresh token
    /// the file holds.
    Refresh(profile_writer::Held, Secret, String),
}

impl Refresher {
    pub fn new(config: impl Into<LiveConfig>, path: PathBuf, clock: Arc<dyn Clock>) -> Refresher {
        let http = tokens::http_client()
            .map_err(|e| tracing::warn!("OAuth refresh is unavailable: {e}"))
            .ok();
        Refresher {
            config: config.into(),
            path,
            clock,
            http,
            inflight: DashMap::new(),
            coordinator: None,
            unsaved: Default::default(),
        }
    }

    pub fn with_coordinator(mut self, coordinator: Option<Coordinator>) -> Refresher {
        self.coordinator = coordinator;
        self
    }

    /// Take the replicas' lock on refreshing `id` (waiting while another replica holds
    /// it, at most [`REPLICA_WAIT`]). Returns the lease name to give back, if taken.
    async fn replica_lock(&self, id: &str) -> Option<String> {
        let coordinator = self.coordinator.as_ref()?;
        let name = format!("oauth-refresh:{id}");
        let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
        loop {
            match coordinator.take_lease(&name).await {
                Ok(true) => return Some(name),
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Ok(false) => {
                    tracing::warn!(credential = %id, "another replica's OAuth refresh is taking long: going ahead");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(credential = %id, "no replica lock for the OAuth refresh: {e}");
                    return None;
                }
            }
        }
    }

    /// Whether `cred` is an OAuth profile credential that must be refreshed before use.
    pub fn due(&self, cred: &Credential) -> bool {
        refreshable(cred)
            && cred
                .expires_ms
                .is_some_and(|e| e.saturating_sub(self.clock.now_ms()) <= REFRESH_AHEAD_MS)
    }

    /// `cred` ready to use: `None` when it is fine as it is, else its refreshed
    /// replacement. Errors carry code [`REFRESH_FAILED`] (refused: sign in again) or
    /// [`REFRESH_UNAVAILABLE`] (try again later).
    pub async fn before_use(&self, cred: &Credential) -> Result<Option<Credential>, ProviderError> {
        let newer = self.with_unsaved(cred);
        let cred = newer.as_ref().unwrap_or(cred);
        if !self.due(cred) {
            return Ok(newer);
        }
        self.refresh(cred, false).await.map(Some)
    }

    /// `cred` with the tokens a refresh got but could not save, when there are such
    /// (the file, and so `cred`, still has the older ones).
    fn with_unsaved(&self, cred: &Credential) -> Option<Credential> {
        let u = self.unsaved_of(&cred.id)?;
        // Only over the version of the file they replaced: a sign-in since is its own.
        (u.granted.access != cred.secret
            && cred.refresh_fp.as_deref() == Some(u.file_refresh_fp.as_str()))
        .then(|| credential_from(cred, &u.granted))
    }

    fn unsaved_of(&self, id: &str) -> Option<Unsaved> {
        self.unsaved.lock().ok()?.get(id).cloned()
    }

    fn forget_unsaved(&self, id: &str) {
        if let Ok(mut u) = self.unsaved.lock() {
            u.remove(id);
        }
    }

    /// The provider answered 401 for `cred`: a refreshed replacement (maybe one another
    /// process just wrote), whatever its recorded expiry says.
    pub async fn after_unauthorized(&self, cred: &Credential) -> Result<Credential, ProviderError> {
        let newer = self.with_unsaved(cred);
        self.refresh(newer.as_ref().unwrap_or(cred), true).await
    }

    async fn refresh(&self, cred: &Credential, forced: bool) -> Result<Credential, ProviderError> {
        let lock = self
            .inflight
            .entry(cred.id.clone())
            .or_default()
            .value()
            .clone();
        let _turn = lock.lock().await;
        // Another replica may be refreshing the same sign-in: wait for it first, then
        // the locked read below sees what it wrote (when the file is shared).
        let lease = self.replica_lock(&cred.id).await;
        let result = self.refresh_locked(cred, forced).await;
        if let (Some(name), Some(c)) = (lease, &self.coordinator)
            && let Err(e) = c.free_lease(&name).await
        {
            tracing::debug!("could not give back the refresh lock: {e}");
        }
        result
    }

    async fn refresh_locked(
        &self,
        cred: &Credential,
        forced: bool,
    ) -> Result<Credential, ProviderError> {
        let path = self.path.clone();
        let clock = self.clock.clone();
        let had = cred.clone();
        let unsaved = self.unsaved_of(&cred.id);
        let step = tokio::task::spawn_blocking(move || {
            locked_read(&path, &had, forced, &*clock, unsaved.as_ref())
        })
        .await
        .map_err(|e| unavailable(cred, format!("the refresh task failed: {e}")))??;
        let (held, refresh_token, file_refresh_fp) = match step {
            Step::Use(c) => {
                tracing::debug!(credential = %cred.id, "using the tokens another process refreshed");
                self.forget_unsaved(&cred.id);
                return Ok(c);
            }
            Step::Refresh(held, token, file_fp) => (held, token, file_fp),
        };
        let Some(ep) = Endpoints::of(&self.config.get(), &cred.provider) else {
            return Err(ProviderError {
                kind: ErrorKind::Auth,
                status: None,
                code: Some(REFRESH_UNAVAILABLE.into()),
                message: format!(
                    "{}: its access token needs a refresh, but provider {} has no OAuth endpoints: declare [models.providers.{}.oauth] with tokenUrl and clientId",
                    cred.id, cred.provider, cred.provider
                ),
                retry_after: None,
            });
        };
        let Some(http) = self.http.clone() else {
            return Err(unavailable(cred, "no HTTP client".into()));
        };
        // The request and the write run as their own task: once the token endpoint may
        // have rotated the refresh token, the new tokens must reach the file even if the
        // turn that asked is cut off (its deadline, a dropped connection).
        let asked = self.clock.now_ms();
        let had = cred.clone();
        let unsaved = self.unsaved.clone();
        let path = self.path.clone();
        let task = tokio::spawn(async move {
            let granted = match tokens::refresh(&http, &ep, &refresh_token, asked).await {
                Ok(g) => g,
                Err(e) => {
                    drop(held);
                    tracing::warn!(credential = %had.id, error = %e, "OAuth refresh failed");
                    return Err(refresh_error(&had, e));
                }
            };
            let fresh = credential_from(&had, &granted);
            let id = had.id.clone();
            let to_write = granted.clone();
            let write = tokio::task::spawn_blocking(move || {
                let r = held.update(|doc| write_tokens(doc, &id, &to_write));
                drop(held);
                r
            });
            let failed = match write.await {
                Ok(Ok(())) => {
                    if let Ok(mut u) = unsaved.lock() {
                        u.remove(&had.id);
                    }
                    tracing::info!(credential = %had.id, "OAuth tokens refreshed");
                    return Ok(fresh);
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("the save task failed: {e}"),
            };
            // The provider may have rotated the refresh token: the new tokens are all
            // there is. Never written over the file (it may be corrupt): kept here, used
            // by this turn and the next ones, and saved by the next refresh that can.
            tracing::warn!(
                credential = %had.id,
                file = %path.display(),
                "OAuth tokens refreshed, but the credentials file could not be updated ({failed}). They are used from memory until a later refresh can save them; if this process stops first, sign in again: `remoteclaw models auth login --provider {}`",
                had.provider
            );
            if let Ok(mut u) = unsaved.lock() {
                u.insert(
                    had.id.clone(),
                    Unsaved {
                        refresh: granted.refresh.clone().unwrap_or(refresh_token),
                        granted,
                        file_refresh_fp,
                    },
                );
            }
            Ok(fresh)
        });
        task.await
            .map_err(|e| unavailable(cred, format!("the refresh task failed: {e}")))?
    }
}

fn refreshable(cred: &Credential) -> bool {
    cred.kind == CredentialKind::Oauth && cred.source == CredentialSource::Profile
}

/// Under the lock: what the file holds now for `had.id`.
fn locked_read(
    path: &std::path::Path,
    had: &Credential,
    forced: bool,
    clock: &dyn Clock,
    unsaved: Option<&Unsaved>,
) -> Result<Step, ProviderError> {
    let held = profile_writer::hold(path).map_err(|e| unavailable(had, e.to_string()))?;
    let store = match ProfileStore::load(path) {
        Ok(store) => store,
        // Still unreadable: refresh with the tokens kept in memory, if any.
        Err(e) => {
            return match unsaved {
                Some(u) => Ok(Step::Refresh(
                    held,
                    u.refresh.clone(),
                    u.file_refresh_fp.clone(),
                )),
                None => Err(unavailable(had, e.to_string())),
            };
        }
    };
    let Some(ProfileCredential::Oauth {
        access,
        refresh,
        expires_ms,
        account_id,
        ..
    }) = store.profiles.get(&*had.id).map(|p| &p.credential)
    else {
        return Err(refused(
            had,
            None,
            "its profile is no longer an OAuth sign-in in auth-profiles.json",
        ));
    };
    // The file holds the refresh token our unsaved tokens replaced (restored as it was,
    // say): it is older than them, so theirs is the one to present; the write saves them.
    if let (Some(u), Some(r)) = (unsaved, refresh.as_ref())
        && r.fingerprint() == u.file_refresh_fp
    {
        return Ok(Step::Refresh(
            held,
            u.refresh.clone(),
            u.file_refresh_fp.clone(),
        ));
    }
    // Another process refreshed when the file holds a different access token that has
    // not expired and expires later than the one in hand (after a 401: any different
    // one that has not expired).
    let now = clock.now_ms();
    let unexpired = expires_ms.is_none_or(|e| e > now);
    let later = match (expires_ms, had.expires_ms) {
        (Some(e), Some(h)) => *e > h,
        _ => true,
    };
    if let Some(a) = access.as_ref().filter(|a| !a.is_blank())
        && a != &had.secret
        && unexpired
        && (forced || later)
    {
        let mut c = had.clone();
        c.secret = a.clone();
        c.expires_ms = *expires_ms;
        c.account_id = account_id.as_deref().map(Arc::from).or(c.account_id);
        return Ok(Step::Use(c));
    }
    match refresh.as_ref().filter(|r| !r.is_blank()) {
        Some(r) => Ok(Step::Refresh(held, r.clone(), r.fingerprint().to_string())),
        None => Err(refused(had, None, "it has no refresh token")),
    }
}

/// The profile's new fields, written in the same locked step. A token response without
/// a new refresh token keeps the one we have; other fields of the profile stay as they are.
fn write_tokens(doc: &mut Value, id: &str, g: &Granted) -> Result<(), String> {
    let p = doc
        .get_mut("profiles")
        .and_then(Value::as_object_mut)
        .and_then(|ps| ps.get_mut(id))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("profile \"{id}\" is no longer in the file"))?;
    p.insert("access".into(), json!(g.access.expose()));
    if let Some(r) = &g.refresh {
        p.insert("refresh".into(), json!(r.expose()));
    }
    match g.expires_ms {
        Some(e) => p.insert("expires".into(), json!(e)),
        None => p.remove("expires"),
    };
    if let Some(a) = &g.account_id {
        p.insert("accountId".into(), json!(a));
    }
    if let Some(e) = &g.email {
        p.insert("email".into(), json!(e));
    }
    Ok(())
}

fn credential_from(had: &Credential, g: &Granted) -> Credential {
    let mut c = had.clone();
    c.secret = g.access.clone();
    c.expires_ms = g.expires_ms;
    if let Some(r) = &g.refresh {
        c.refresh_fp = Some(Arc::from(r.fingerprint()));
    }
    if let Some(a) = &g.account_id {
        c.account_id = Some(Arc::from(a.as_str()));
    }
    c
}

fn refresh_error(cred: &Credential, e: TokenError) -> ProviderError {
    match e {
        TokenError::Refused { status, code } => refused(
            cred,
            status,
            &format!("the token endpoint refused to refresh it ({code})"),
        ),
        TokenError::Unavailable { status, detail } => ProviderError {
            kind: match status {
                Some(s) if s >= 500 => ErrorKind::Overloaded,
                _ if detail.starts_with("no answer") => ErrorKind::Timeout,
                _ => ErrorKind::Unknown,
            },
            status,
            code: Some(REFRESH_UNAVAILABLE.into()),
            message: format!(
                "{}: could not refresh its access token: {detail}; the next turn tries again",
                cred.id
            ),
            retry_after: None,
        },
        TokenError::InvalidAnswer { status, .. } => ProviderError {
            kind: ErrorKind::Unknown,
            status,
            code: Some(REFRESH_UNAVAILABLE.into()),
            message: format!(
                "{}: could not refresh its access token: {e}; the next turn tries again",
                cred.id
            ),
            retry_after: None,
        },
        TokenError::Config(m) => unavailable(cred, m),
    }
}

fn refused(cred: &Credential, status: Option<u16>, why: &str) -> ProviderError {
    ProviderError {
        kind: ErrorKind::Auth,
        status,
        code: Some(REFRESH_FAILED.into()),
        message: format!(
            "{}: {why} — {}",
            cred.id,
            crate::auth::resolver::sign_in_again(&cred.provider)
        ),
        retry_after: None,
    }
}

fn unavailable(cred: &Credential, detail: String) -> ProviderError {
    ProviderError {
        kind: ErrorKind::Unknown,
        status: None,
        code: Some(REFRESH_UNAVAILABLE.into()),
        message: format!("{}: could not refresh its access token: {detail}", cred.id),
        retry_after: None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Turns run on tokio's multi-threaded runtime: a refresh future that is not `Send`
    /// would make every turn future non-`Send` (this fails to compile, not to run).
    #[allow(dead_code)]
    fn refresh_futures_are_send(r: &Refresher, c: &Credential) {
        fn is_send<T: Send>(_: T) {}
        is_send(r.before_use(c));
        is_send(r.after_unauthorized(c));
    }

    fn oauth(access: &str, expires_ms: i64) -> Credential {
        Credential {
            id: Arc::from("corp:a"),
            provider: Arc::from("corp"),
            kind: CredentialKind::Oauth,
            source: CredentialSource::Profile,
            secret: Secret::new(access),
            expires_ms: Some(expires_ms),
            account_id: None,
            refresh_fp: None,
        }
    }

    /// A process that waited for the lock while another refreshed finds a different
    /// token in the file that expires later than its own: it uses that one, however
    /// soon it expires (a provider issuing 5-minute tokens), and makes no request.
    #[test]
    fn the_locked_read_takes_over_a_later_token_however_short_lived() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-profiles.json");
        let now = 1_000_000_000;
        let clock = crate::clock::ManualClock::new(now);
        let file = |access: &str, expires: i64| {
            std::fs::write(
                &path,
                serde_json::json!({"version": 1, "profiles": {"corp:a": {
                    "type": "oauth", "provider": "corp", "access": access,
                    "refresh": "r2", "expires": expires}}})
                .to_string(),
            )
            .unwrap();
        };
        let had = oauth("t1", now - 1);
        file("t2", now + 270_000);
        match locked_read(&path, &had, false, &*clock, None) {
            Ok(Step::Use(c)) => {
                assert_eq!(c.secret, Secret::new("t2"));
                assert_eq!(c.expires_ms, Some(now + 270_000));
            }
            _ => panic!("refreshed again instead of using the newer token"),
        }
        // The same token as in hand: refresh (with the file's refresh token).
        file("t1", now - 1);
        assert!(matches!(
            locked_read(&path, &had, false, &*clock, None),
            Ok(Step::Refresh(..))
        ));
        // A different token that expired too: refresh.
        file("t0", now - 5);
        assert!(matches!(
            locked_read(&path, &had, false, &*clock, None),
            Ok(Step::Refresh(..))
        ));
    }

    #[test]
    fn a_token_is_due_within_five_minutes_of_its_expiry_whoever_obtained_it() {
        let clock = crate::clock::ManualClock::new(1_000_000);
        let r = Refresher::new(
            LiveConfig::default(),
            PathBuf::from("/nonexistent"),
            clock.clone(),
        );
        assert!(!r.due(&oauth("t", 1_000_000 + REFRESH_AHEAD_MS + 1)));
        assert!(r.due(&oauth("t", 1_000_000 + REFRESH_AHEAD_MS)));
        assert!(r.due(&oauth("t", 1_000_000 - 1)), "expired");
    }
}
