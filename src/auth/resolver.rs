//! Candidate credentials for a turn on provider P (DESIGN §5): the pinned profile, or
//! the auth order (agent file, then config, then declared profiles, then every stored
//! profile: oauth > token > api_key, least recently used first), then environment
//! keys, then `models.providers.P.apiKey`; deduplicated by value. Ineligible profiles
//! carry a reason code; credentials set aside by a cooldown move to the back, soonest
//! usable first.
//!
//! The ordering itself is pure (`order`); `CredentialResolver` gathers its inputs: the
//! profile file (re-read when it changes on disk), SecretRefs, the environment and the
//! cooldown book.

use super::cooldown::{CooldownBook, FOREVER, ImportEntry, Reason, Standing};
use super::credential::{Credential, CredentialKind, CredentialSource};
use super::env_keys::{env_candidates, primary_env_var};
use super::profiles::{Profile, ProfileCredential, ProfileFile, ProfileStore};
use super::secrets::{SecretResolver, ref_label};
use crate::clock::Clock;
use crate::config::env::EnvMap;
use crate::config::live::LiveConfig;
use crate::config::{Config, CredentialMode, PinPolicy, SecretInput, SecretRef};
use crate::secret::Secret;
use rustc_hash::FxHashSet;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A day, in ms: tokens expiring within it are `expiring`.
pub const EXPIRING_WINDOW_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `profiles_problem`: why auth-profiles.json gave no profiles (it is unreadable or
    /// corrupt), when that is so.
    #[error(
        "no credentials for {provider} — set {env_var} or run `remoteclaw onboard`{}",
        note(". ", profiles_problem)
    )]
    NoCredentials {
        provider: String,
        env_var: String,
        profiles_problem: Option<Arc<str>>,
    },
    #[error(
        "no usable credentials for {provider}: {summary}. See `remoteclaw models status`, or set {env_var}.{}",
        note(" ", profiles_problem)
    )]
    NothingUsable {
        provider: String,
        env_var: String,
        summary: String,
        profiles_problem: Option<Arc<str>>,
    },
    /// `profiles_problem`: why auth-profiles.json gave no profiles, or only its last
    /// valid version (it is unreadable or corrupt), when that is so.
    #[error("Auth profile \"{id}\" not found. Profiles for {provider}: {}.{}", if known.is_empty() { "none".to_string() } else { known.join(", ") }, note(" ", profiles_problem))]
    ProfileNotFound {
        id: String,
        provider: String,
        known: Vec<String>,
        profiles_problem: Option<Arc<str>>,
    },
    #[error("{0}")]
    PinUnusable(String),
    /// auth-profiles.json cannot be read (unreadable or corrupt), so which stored
    /// entries are this agent's profiles' is not known: the file's problem.
    #[error("{0}")]
    ProfilesUnreadable(Arc<str>),
    /// The shared state store (Redis) could not be read (DESIGN §9).
    #[error(transparent)]
    StateStore(crate::state::StoreError),
}

/// `lead` and the problem, or nothing.
fn note(lead: &str, problem: &Option<Arc<str>>) -> String {
    problem
        .as_deref()
        .map(|p| format!("{lead}{p}"))
        .unwrap_or_default()
}

/// Health of a credential (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Static,
    Expiring,
    Expired,
    Missing,
    Cooldown,
    Disabled,
}

/// One credential in resolution order, usable or not, as status views show it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: Arc<str>,
    pub kind: CredentialKind,
    pub source: CredentialSource,
    /// The usable credential; `None` when ineligible (see `reason`).
    pub credential: Option<Credential>,
    pub health: Health,
    /// Reason code: eligibility (`expired`, `unresolved_ref`, …) or cooldown
    /// (`rate_limit`, `quota`, `billing`, `auth`).
    pub reason: Option<&'static str>,
    /// When a cooldown or disable ends (epoch ms; `FOREVER` = until cleared).
    pub until: Option<i64>,
    /// The secret of an expired credential (no `credential`), for its fingerprint only.
    secret: Option<Secret>,
    /// Where the secret comes from, e.g. a SecretRef label; never the secret.
    pub detail: Option<String>,
    pub expires_ms: Option<i64>,
}

impl Candidate {
    /// First 8 hex of the secret's SHA-256, when there is a secret.
    pub fn fingerprint(&self) -> Option<&str> {
        self.credential
            .as_ref()
            .map(|c| &c.secret)
            .or(self.secret.as_ref())
            .map(Secret::fingerprint)
    }

    fn set_aside(&self) -> Option<Reason> {
        match self.reason {
            Some("rate_limit") if self.health == Health::Cooldown => Some(Reason::RateLimit),
            Some("quota") => Some(Reason::Quota),
            Some("billing") => Some(Reason::Billing),
            Some("auth") if self.health == Health::Disabled => Some(Reason::Auth),
            Some("refresh_failed") => Some(Reason::RefreshFailed),
            _ => None,
        }
    }
}

/// Every candidate for a provider, in order.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub provider: String,
    pub pinned: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl Resolution {
    /// The credentials a turn tries, in order: usable ones, then rate-limited ones
    /// (soonest first). Disabled (quota, billing, auth) and ineligible ones are skipped.
    pub fn attempt_order(&self) -> impl Iterator<Item = &Credential> {
        self.candidates
            .iter()
            .filter(|c| matches!(c.set_aside(), None | Some(Reason::RateLimit)))
            .filter_map(|c| c.credential.as_ref())
    }

    /// Whether a turn has anything to try.
    pub fn has_attempts(&self) -> bool {
        self.attempt_order().next().is_some()
    }

    /// The first usable credential (marked "next" in status views).
    pub fn next(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|c| c.credential.is_some() && c.set_aside().is_none())
            .or_else(|| {
                self.candidates
                    .iter()
                    .find(|c| c.credential.is_some() && c.set_aside() == Some(Reason::RateLimit))
            })
    }

    /// One line per unusable candidate, for error messages.
    pub fn summary(&self, now_ms: i64) -> String {
        self.candidates
            .iter()
            .map(|c| {
                let until = c
                    .until
                    .map(|u| format!(" {}", lasts_text(c.reason, u, &self.provider, now_ms)))
                    .unwrap_or_default();
                // A failed SecretRef carries its reason: say it, not just the code.
                let reason = match (c.reason, &c.detail) {
                    (Some(r @ "unresolved_ref"), Some(d)) => format!(" ({r}: {d})"),
                    (Some(r), _) => format!(" ({r})"),
                    (None, _) => String::new(),
                };
                format!("{} {}{reason}{until}", c.id, health_str(c.health))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn health_str(h: Health) -> &'static str {
    match h {
        Health::Ok => "ok",
        Health::Static => "static",
        Health::Expiring => "expiring",
        Health::Expired => "expired",
        Health::Missing => "missing",
        Health::Cooldown => "cooldown",
        Health::Disabled => "disabled",
    }
}

/// DESIGN §5a: what every reply and status line says about a refused refresh
/// (`refresh_failed`): "sign in again: `remoteclaw models auth login --provider P`".
pub fn sign_in_again(provider: &str) -> String {
    format!("sign in again: `remoteclaw models auth login --provider {provider}`")
}

/// How long a cooldown or disable with `reason` lasts, as a status line says it: a
/// refused refresh lasts until the next sign-in (`— sign in again: …`), everything else
/// [`until_text`].
pub fn lasts_text(reason: Option<&str>, until: i64, provider: &str, now_ms: i64) -> String {
    if reason == Some("refresh_failed") {
        return format!("— {}", sign_in_again(provider));
    }
    until_text(until, now_ms)
}

/// "until 14:05 UTC (in 12m)" / "until cleared".
pub fn until_text(until: i64, now_ms: i64) -> String {
    if until == FOREVER {
        return "until cleared (`remoteclaw models auth cooldown clear`)".into();
    }
    let left = (until - now_ms).max(0) / 1000;
    let secs_of_day = (until / 1000).rem_euclid(86_400);
    let rel = match left {
        0..=59 => format!("{left}s"),
        60..=3599 => format!("{}m", (left + 59) / 60),
        _ => format!("{}h{:02}m", left / 3600, (left % 3600) / 60),
    };
    format!(
        "until {:02}:{:02} UTC (in {rel})",
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60
    )
}

/// A profile's secret as resolved for this turn.
#[derive(Debug, Clone)]
pub enum SecretState {
    Value(Secret),
    Missing,
    Failed(String),
}

/// Everything `order` needs, gathered by the resolver.
pub struct OrderInputs<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub pinned: Option<&'a str>,
    pub pin_policy: PinPolicy,
    pub store: &'a ProfileStore,
    pub config: &'a Config,
    pub env: Arc<Vec<Credential>>,
    pub config_key: Option<(Secret, CredentialSource, Option<String>)>,
    /// Resolved secrets of profiles whose secret is a SecretRef, by profile id.
    pub ref_secrets: &'a HashMap<String, SecretState>,
    pub standing: &'a dyn Fn(&str, &str) -> Option<Standing>,
    pub last_used: &'a dyn Fn(&str) -> Option<i64>,
    pub now_ms: i64,
}

fn kind_rank(p: &Profile) -> u8 {
    match p.credential {
        ProfileCredential::Oauth { .. } => 0,
        ProfileCredential::Token { .. } => 1,
        ProfileCredential::ApiKey { .. } => 2,
    }
}

fn kind_of(p: &ProfileCredential) -> CredentialKind {
    match p {
        ProfileCredential::ApiKey { .. } => CredentialKind::ApiKey,
        ProfileCredential::Token { .. } => CredentialKind::Token,
        ProfileCredential::Oauth { .. } => CredentialKind::Oauth,
    }
}

/// The secret written in the profile itself (not a ref), if any.
fn inline_secret(p: &ProfileCredential) -> Option<&Secret> {
    match p {
        ProfileCredential::ApiKey { key, .. } => key.as_ref(),
        ProfileCredential::Token { token, .. } => token.as_ref(),
        ProfileCredential::Oauth { access, .. } => access.as_ref(),
    }
    .filter(|s| !s.is_blank())
}

fn profile_ref(p: &ProfileCredential) -> Option<&SecretRef> {
    match p {
        ProfileCredential::ApiKey {
            key: None, key_ref, ..
        } => key_ref.as_ref(),
        ProfileCredential::Token {
            token: None,
            token_ref,
            ..
        } => token_ref.as_ref(),
        _ => None,
    }
}

fn health_by_expiry(
    kind: CredentialKind,
    expires: Option<i64>,
    has_refresh: bool,
    now: i64,
) -> Health {
    // An OAuth credential with a refresh token renews itself before use (DESIGN §5a):
    // `ok` while it can be refreshed, also after its access token expired.
    if kind == CredentialKind::Oauth && has_refresh {
        return Health::Ok;
    }
    match expires {
        None => Health::Static,
        Some(e) if e <= now => Health::Expired,
        Some(e) if e - now <= EXPIRING_WINDOW_MS => Health::Expiring,
        Some(_) => Health::Ok,
    }
}

fn ineligible(
    id: &str,
    kind: CredentialKind,
    source: CredentialSource,
    health: Health,
    reason: &'static str,
    detail: Option<String>,
) -> Candidate {
    Candidate {
        id: id.into(),
        kind,
        source,
        credential: None,
        health,
        reason: Some(reason),
        until: None,
        secret: None,
        detail,
        expires_ms: None,
    }
}

/// Evaluate one profile id for provider P.
/// Evaluate one profile id for provider P (`known`: the profile when the caller has it).
fn evaluate(
    id: &str,
    known: Option<&Profile>,
    provider: &Arc<str>,
    inp: &OrderInputs<'_>,
) -> Candidate {
    let declared = inp.config.auth.profiles.get(id);
    let declared_kind = declared.map(|d| match d.mode {
        CredentialMode::ApiKey => CredentialKind::ApiKey,
        CredentialMode::Token => CredentialKind::Token,
        CredentialMode::Oauth => CredentialKind::Oauth,
    });
    let Some(p) = known.or_else(|| inp.store.profiles.get(id)) else {
        return ineligible(
            id,
            declared_kind.unwrap_or(CredentialKind::ApiKey),
            CredentialSource::Profile,
            Health::Missing,
            "profile_missing",
            None,
        );
    };
    let kind = kind_of(&p.credential);
    let source = if profile_ref(&p.credential).is_some() {
        CredentialSource::Ref
    } else {
        CredentialSource::Profile
    };
    let detail = profile_ref(&p.credential).map(ref_label);
    if p.provider != inp.provider {
        return ineligible(
            id,
            kind,
            source,
            Health::Missing,
            "provider_mismatch",
            Some(format!("profile is for {}", p.provider)),
        );
    }
    if let Some(d) = declared {
        let ok = match d.mode {
            CredentialMode::ApiKey => kind == CredentialKind::ApiKey,
            CredentialMode::Token => kind == CredentialKind::Token,
            CredentialMode::Oauth => matches!(kind, CredentialKind::Oauth | CredentialKind::Token),
        };
        if !ok {
            return ineligible(id, kind, source, Health::Missing, "mode_mismatch", detail);
        }
    }
    if p.invalid_expires {
        return ineligible(id, kind, source, Health::Missing, "invalid_expires", detail);
    }
    let (expires, has_refresh) = match &p.credential {
        ProfileCredential::ApiKey { .. } => (None, false),
        ProfileCredential::Token { expires_ms, .. } => (*expires_ms, false),
        ProfileCredential::Oauth {
            expires_ms,
            refresh,
            ..
        } => (
            *expires_ms,
            // DESIGN §5a: an OAuth credential is `ok` while it can be refreshed: it has a
            // refresh token and its provider a token endpoint. Without one its access
            // token's expiry decides, like a token's (`doctor` also flags it as
            // `oauth_cannot_refresh`).
            refresh.as_ref().is_some_and(|r| !r.is_blank())
                && crate::oauth::preset::Endpoints::of(inp.config, inp.provider).is_some(),
        ),
    };
    let state = match inline_secret(&p.credential) {
        Some(s) => SecretState::Value(s.clone()),
        None => inp
            .ref_secrets
            .get(id)
            .cloned()
            .unwrap_or(SecretState::Missing),
    };
    let secret = match state {
        SecretState::Value(s) => s,
        SecretState::Failed(msg) => {
            return ineligible(
                id,
                kind,
                source,
                Health::Missing,
                "unresolved_ref",
                Some(msg),
            );
        }
        SecretState::Missing => {
            return ineligible(
                id,
                kind,
                source,
                Health::Missing,
                "missing_credential",
                detail,
            );
        }
    };
    let health = health_by_expiry(kind, expires, has_refresh, inp.now_ms);
    if health == Health::Expired {
        let mut c = ineligible(id, kind, source, Health::Expired, "expired", detail);
        c.secret = Some(secret);
        c.expires_ms = expires;
        return c;
    }
    let credential = Credential {
        id: id.into(),
        provider: provider.clone(),
        kind,
        source,
        secret,
        expires_ms: expires,
        account_id: match &p.credential {
            ProfileCredential::Oauth { account_id, .. } => account_id.as_deref().map(Arc::from),
            _ => None,
        },
        refresh_fp: match &p.credential {
            ProfileCredential::Oauth {
                refresh: Some(r), ..
            } => Some(Arc::from(r.fingerprint())),
            _ => None,
        },
    };
    eligible(credential, health, detail, inp)
}

fn eligible(
    credential: Credential,
    health: Health,
    detail: Option<String>,
    inp: &OrderInputs<'_>,
) -> Candidate {
    // A refused refresh is kept under the whole sign-in (access, refresh, expiry), any
    // other standing under the secret.
    let standing = (inp.standing)(&credential.id, credential.secret.fingerprint()).or_else(|| {
        (credential.kind == CredentialKind::Oauth)
            .then(|| (inp.standing)(&credential.id, &credential.sign_in_fingerprint()))
            .flatten()
    });
    let (health, reason, until) = match standing {
        Some(s) if s.reason == Reason::RateLimit => {
            (Health::Cooldown, Some(s.reason.as_str()), Some(s.until))
        }
        Some(s) => (Health::Disabled, Some(s.reason.as_str()), Some(s.until)),
        None => (health, None, None),
    };
    Candidate {
        id: credential.id.clone(),
        kind: credential.kind,
        source: credential.source,
        expires_ms: credential.expires_ms,
        secret: None,
        credential: Some(credential),
        health,
        reason,
        until,
        detail,
    }
}

/// The profile ids an auth order names for `provider` (DESIGN §5): the file's `order`,
/// else `auth.order` in the config, else the profiles the config declares. `None` when
/// none of those says: every stored profile of the provider is in the order.
pub fn named_order<'a>(
    store: &'a ProfileStore,
    config: &'a Config,
    provider: &str,
) -> Option<Vec<&'a str>> {
    if let Some(order) = store
        .order
        .get(provider)
        .or_else(|| config.auth.order.get(provider))
    {
        return Some(order.iter().map(String::as_str).collect());
    }
    let declared: Vec<&str> = config
        .auth
        .profiles
        .iter()
        .filter(|(_, d)| d.provider == provider)
        .map(|(id, _)| id.as_str())
        .collect();
    (!declared.is_empty()).then_some(declared)
}

/// The profile ids to consider, in auth order (without a pin).
/// With the profile itself when it is already at hand.
pub fn profile_order<'a>(inp: &OrderInputs<'a>) -> Vec<(&'a str, Option<&'a Profile>)> {
    if let Some(named) = named_order(inp.store, inp.config, inp.provider) {
        return named.into_iter().map(|id| (id, None)).collect();
    }
    let mut stored: Vec<&Profile> = inp.store.for_provider(inp.provider).collect();
    // oauth > token > api_key, then least recently used (never used first), then id
    // (the store is sorted by id and the sort is stable).
    stored.sort_by_cached_key(|p| (kind_rank(p), (inp.last_used)(&p.id).unwrap_or(i64::MIN)));
    stored
        .into_iter()
        .map(|p| (p.id.as_str(), Some(p)))
        .collect()
}

/// Order every candidate for a turn (pure).
pub fn order(inp: &OrderInputs<'_>) -> Vec<Candidate> {
    let mut list: Vec<Candidate> = Vec::with_capacity(inp.store.profiles.len() + inp.env.len() + 2);
    let provider: Arc<str> = inp.provider.into();
    let mut seen_ids: FxHashSet<&str> = FxHashSet::default();
    seen_ids.reserve(inp.store.profiles.len() + 1);
    if let Some(pin) = inp.pinned {
        seen_ids.insert(pin);
        list.push(evaluate(pin, None, &provider, inp));
        if inp.pin_policy == PinPolicy::Strict {
            return list;
        }
    }
    for (id, known) in profile_order(inp) {
        if seen_ids.insert(id) {
            list.push(evaluate(id, known, &provider, inp));
        }
    }
    for c in inp.env.iter() {
        list.push(eligible(c.clone(), Health::Static, None, inp));
    }
    if let Some((secret, source, detail)) = &inp.config_key {
        let c = Credential {
            id: format!("config:{}", inp.provider).into(),
            provider: provider.clone(),
            kind: CredentialKind::ApiKey,
            source: *source,
            secret: secret.clone(),
            expires_ms: None,
            account_id: None,
            refresh_fp: None,
        };
        list.push(eligible(c, Health::Static, detail.clone(), inp));
    }
    // Dedupe by secret value: the first occurrence wins.
    let keep: Vec<bool> = {
        let mut values: FxHashSet<&str> = FxHashSet::default();
        values.reserve(list.len());
        list.iter()
            .map(|c| {
                c.credential
                    .as_ref()
                    .is_none_or(|cred| values.insert(cred.secret.expose()))
            })
            .collect()
    };
    let mut keep = keep.into_iter();
    list.retain(|_| keep.next().unwrap_or(true));
    // Usable now, in order; then set-aside ones by when they recover; then ineligible.
    let pinned_first = inp.pinned.is_some() && inp.pin_policy == PinPolicy::Fallback;
    let rank = |c: &Candidate| -> (u8, i64) {
        match (&c.credential, c.until) {
            (Some(_), None) => (0, 0),
            (Some(_), Some(u)) => (1, u),
            (None, _) => (2, 0),
        }
    };
    let start = usize::from(pinned_first && !list.is_empty());
    list[start..].sort_by_key(rank);
    list
}

/// A failed `usageStats` import is tried again after this long, doubling each time...
pub const IMPORT_RETRY_FIRST_MS: i64 = 30_000;
/// ...up to this.
pub const IMPORT_RETRY_MAX_MS: i64 = 300_000;

/// What became of the `usageStats` import of the file's versions.
#[derive(Debug, Default)]
struct UsageImport {
    /// The version whose `usageStats` are in the state store (or were there already).
    done: Option<Arc<ProfileStore>>,
    /// The last failed import.
    failed: Option<ImportFailure>,
}

#[derive(Debug)]
struct ImportFailure {
    /// The version it was for.
    store: Arc<ProfileStore>,
    /// When to try again (`Clock` ms).
    retry_at_ms: i64,
    delay_ms: i64,
    /// The error, to log each distinct one once.
    error: String,
}

#[derive(Debug)]
pub struct CredentialResolver {
    pub config: LiveConfig,
    pub env: Arc<EnvMap>,
    pub profiles_path: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub secrets: SecretResolver,
    pub cooldowns: Arc<CooldownBook>,
    /// auth-profiles.json as last read (`profiles_path`).
    profile_file: Arc<ProfileFile>,
    /// Which version of the file had its `usageStats` imported, or failed to.
    usage_import: Mutex<UsageImport>,
    /// Held by the import in progress.
    usage_importing: tokio::sync::Mutex<()>,
    /// `usageStats` of the file go into the state store (off for read-only commands:
    /// `doctor`).
    import_usage: bool,
    /// Environment keys per provider: the environment does not change while we run.
    env_keys: Mutex<HashMap<String, Arc<Vec<Credential>>>>,
    /// Refreshes this file's OAuth profiles (DESIGN §5a).
    pub refresher: crate::oauth::refresh::Refresher,
}

/// A stored profile as listings show it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub id: String,
    pub provider: String,
}

impl CredentialResolver {
    pub fn new(
        config: impl Into<LiveConfig>,
        env: Arc<EnvMap>,
        profiles_path: PathBuf,
        clock: Arc<dyn Clock>,
        cooldowns: Arc<CooldownBook>,
    ) -> CredentialResolver {
        let config: LiveConfig = config.into();
        let secrets = SecretResolver::new(config.clone(), env.clone()).with_clock(clock.clone());
        let refresher = crate::oauth::refresh::Refresher::new(
            config.clone(),
            profiles_path.clone(),
            clock.clone(),
        );
        CredentialResolver {
            refresher,
            config,
            env,
            profile_file: Arc::new(ProfileFile::new(profiles_path.clone())),
            profiles_path,
            clock,
            secrets,
            cooldowns,
            env_keys: Mutex::new(HashMap::new()),
            usage_import: Mutex::new(UsageImport::default()),
            usage_importing: tokio::sync::Mutex::new(()),
            import_usage: true,
        }
    }

    /// Never write the file's `usageStats` into the state store: for commands that
    /// only look (`doctor`, documented read-only).
    pub fn without_usage_import(mut self) -> CredentialResolver {
        self.import_usage = false;
        self
    }

    /// OAuth refreshes also take a lock in the shared store (replicas, DESIGN §9).
    pub fn with_coordinator(
        mut self,
        coordinator: Option<crate::state::lease::Coordinator>,
    ) -> CredentialResolver {
        self.refresher = self.refresher.with_coordinator(coordinator);
        self
    }

    fn env_keys(&self, provider: &str) -> Arc<Vec<Credential>> {
        let Ok(mut cache) = self.env_keys.lock() else {
            return Arc::new(env_candidates(provider, &self.env));
        };
        cache
            .entry(provider.to_string())
            .or_insert_with(|| Arc::new(env_candidates(provider, &self.env)))
            .clone()
    }

    /// The profiles in force, re-read only when the file changed (size or mtime). Blocking:
    /// a `stat` each call (the CLI's path). A file that is unreadable or corrupt gives its
    /// last valid version, or no profiles; [`profiles_problem`](Self::profiles_problem)
    /// says why.
    pub fn store(&self) -> Arc<ProfileStore> {
        self.profile_file.load()
    }

    /// Why auth-profiles.json, as last looked at, is not in force (unreadable or
    /// corrupt): file, line and what is used meanwhile. Never a value from the file.
    pub fn profiles_problem(&self) -> Option<Arc<str>> {
        self.profile_file.problem()
    }

    /// The profiles for a turn: no file I/O on the async workers (the file is checked at
    /// most every `state::RECHECK_EVERY`, on the blocking pool). A newly read file's
    /// `usageStats` go into the state store first (once per file, as at start-up).
    pub async fn store_async(&self) -> Arc<ProfileStore> {
        let store = self.profile_file.load_async().await;
        self.import_usage_stats_of(&store, false).await;
        store
    }

    /// Move `usageStats` of an imported auth-profiles.json into the state store, once:
    /// at start and at each of the reloader's looks. A failed import is tried again here
    /// (not by turns) once its retry time has come.
    pub async fn import_usage_stats(&self) {
        let store = self.profile_file.load_async().await;
        self.import_usage_stats_of(&store, true).await;
    }

    /// Import `store`'s `usageStats` unless this version of the file was looked at
    /// already. The state store keeps a marker per file, so a file's stats are imported
    /// once whether it was there at start-up or written while the gateway ran.
    ///
    /// A failed import is tried again after [`IMPORT_RETRY_FIRST_MS`], doubling up to
    /// [`IMPORT_RETRY_MAX_MS`], and only when `retry` (the reloader's tick, start-up):
    /// a turn never waits for a retry, it goes on with the profiles at once. Each
    /// distinct error is logged once.
    async fn import_usage_stats_of(&self, store: &Arc<ProfileStore>, retry: bool) {
        if !self.import_usage || store.usage_stats.is_empty() {
            return;
        }
        let Some(wait) = self.import_wanted(store, retry) else {
            return;
        };
        // Held while importing: a turn that starts meanwhile waits for a first attempt,
        // so it sees the result; while the store is failing nobody waits.
        let _held = if wait {
            self.usage_importing.lock().await
        } else {
            match self.usage_importing.try_lock() {
                Ok(held) => held,
                Err(_) => return,
            }
        };
        if self.import_wanted(store, retry).is_none() {
            return;
        }
        let entries: Vec<ImportEntry> = store
            .usage_stats
            .iter()
            .map(|(id, u)| ImportEntry {
                credential: id.clone(),
                fingerprint: store.profiles.get(id).and_then(|p| match &p.credential {
                    ProfileCredential::ApiKey { key, .. } => {
                        key.as_ref().map(|s| s.fingerprint().to_string())
                    }
                    ProfileCredential::Token { token, .. } => {
                        token.as_ref().map(|s| s.fingerprint().to_string())
                    }
                    ProfileCredential::Oauth { access, .. } => {
                        access.as_ref().map(|s| s.fingerprint().to_string())
                    }
                }),
                last_used: u.last_used,
                error_count: u.error_count,
                cooldown_until: u.cooldown_until,
                disabled_until: u.disabled_until,
                disabled_reason: u.disabled_reason.clone(),
            })
            .collect();
        let result = self
            .cooldowns
            .import_once(
                &self.profiles_path.display().to_string(),
                &entries,
                self.clock.now_ms(),
            )
            .await;
        let Ok(mut state) = self.usage_import.lock() else {
            return;
        };
        match result {
            Ok(imported) => {
                if imported {
                    tracing::info!(file = %self.profiles_path.display(), profiles = entries.len(), "imported usageStats into the state store");
                }
                state.done = Some(store.clone());
                state.failed = None;
            }
            Err(e) => {
                let error = e.to_string();
                let previous = state.failed.take();
                let delay_ms = previous.as_ref().map_or(IMPORT_RETRY_FIRST_MS, |f| {
                    f.delay_ms.saturating_mul(2).min(IMPORT_RETRY_MAX_MS)
                });
                if previous.as_ref().is_none_or(|f| f.error != error) {
                    tracing::warn!(
                        file = %self.profiles_path.display(),
                        "could not import usageStats: {error}; trying again in {} s (turns go on meanwhile)",
                        delay_ms / 1000
                    );
                } else {
                    tracing::debug!(file = %self.profiles_path.display(), "could not import usageStats again: {error}");
                }
                state.failed = Some(ImportFailure {
                    store: store.clone(),
                    retry_at_ms: self.clock.now_ms().saturating_add(delay_ms),
                    delay_ms,
                    error,
                });
            }
        }
    }

    /// Whether `store`'s usageStats are to be imported now: `None` when not (done, or
    /// failed and not to be retried yet or by this caller), else whether the caller
    /// may wait for another import in progress (nothing failed so far).
    fn import_wanted(&self, store: &Arc<ProfileStore>, retry: bool) -> Option<bool> {
        let state = self.usage_import.lock().ok()?;
        if state.done.as_ref().is_some_and(|s| Arc::ptr_eq(s, store)) {
            return None;
        }
        match &state.failed {
            None => Some(true),
            Some(f) if Arc::ptr_eq(&f.store, store) => {
                (retry && self.clock.now_ms() >= f.retry_at_ms).then_some(false)
            }
            // Another version, while the store is failing: tried, but nobody waits.
            Some(_) => Some(false),
        }
    }

    /// Of `entries` (the shared cooldown book), the ones that are this agent's: the
    /// environment and config keys every agent shares, and entries of its own profiles
    /// recorded for the secret (or sign-in) the profile holds now. Another agent's
    /// profile of the same id, or a secret since replaced, is not listed.
    pub async fn own_entries(
        &self,
        entries: &[crate::auth::cooldown::CooldownEntry],
    ) -> Result<Vec<crate::auth::cooldown::CooldownEntry>, ResolveError> {
        let store = self.store_async().await;
        // Matching against no profiles (or a version the file no longer has) would drop
        // every profile's entry: callers fall back to every entry instead.
        if let Some(problem) = self.profiles_problem() {
            return Err(ResolveError::ProfilesUnreadable(problem));
        }
        let config = self.config.get();
        let mut providers: Vec<&str> = store
            .profiles
            .values()
            .map(|p| p.provider.as_str())
            .chain(config.auth.profiles.values().map(|d| d.provider.as_str()))
            .collect();
        providers.sort_unstable();
        providers.dedup();
        let mut mine: std::collections::HashSet<(String, String)> = Default::default();
        let mut resolutions = Vec::new();
        for provider in providers {
            resolutions.push(
                self.resolve(provider, crate::auth::cooldown::ANY_MODEL, None)
                    .await?,
            );
        }
        // A stored profile outside its provider's auth order is still used when a
        // session pins it, and its cooldown must show (and clear) like the others'.
        let ordered: std::collections::HashSet<String> = resolutions
            .iter()
            .flat_map(|r| r.candidates.iter().map(|c| c.id.to_string()))
            .collect();
        for (id, p) in &store.profiles {
            if !ordered.contains(id.as_str()) {
                match self
                    .resolve(&p.provider, crate::auth::cooldown::ANY_MODEL, Some(id))
                    .await
                {
                    Ok(r) => resolutions.push(r),
                    Err(e) => tracing::debug!(profile = %id, "not listed for cooldowns: {e}"),
                }
            }
        }
        for res in resolutions {
            for c in res.candidates {
                let fps = match &c.credential {
                    Some(cred) => cred.state_fingerprints(),
                    None => c.fingerprint().map(str::to_string).into_iter().collect(),
                };
                mine.extend(fps.into_iter().map(|fp| (c.id.to_string(), fp)));
            }
        }
        Ok(entries
            .iter()
            .filter(|e| {
                !is_profile_id(&e.credential)
                    || mine.contains(&(e.credential.clone(), e.fingerprint.clone()))
            })
            .cloned()
            .collect())
    }

    pub fn profiles(&self) -> Vec<ProfileInfo> {
        profile_infos(&self.store())
    }

    /// [`profiles`](Self::profiles) for async callers (chat commands), off the runtime
    /// threads. `wanted` (a profile about to be pinned) that the copy in memory lacks makes
    /// it look at the file again: the CLI may have added it a moment ago.
    pub async fn profiles_async(&self, wanted: Option<&str>) -> Vec<ProfileInfo> {
        profile_infos(&*self.store_holding(wanted).await)
    }

    /// The profiles, read from the file again when `wanted` is not among those in memory
    /// (the CLI may have added it a moment ago).
    pub async fn store_holding(&self, wanted: Option<&str>) -> Arc<ProfileStore> {
        let store = self.store_async().await;
        match wanted {
            Some(id) if !store.profiles.contains_key(id) => {
                let store = self.profile_file.check_async().await;
                self.import_usage_stats_of(&store, false).await;
                store
            }
            _ => store,
        }
    }

    /// `provider`'s profile ids in `store` as messages list them
    /// ([`ProfileStore::ids_in_order`], with this config's `auth.order`).
    pub fn listed_ids(&self, store: &ProfileStore, provider: &str) -> Vec<String> {
        let config = self.config.get();
        store.ids_in_order(provider, config.auth.order.get(provider).map(Vec::as_slice))
    }

    /// Every candidate for a turn on `provider` with `model` (`provider/model`).
    pub async fn resolve(
        &self,
        provider: &str,
        model: &str,
        pinned: Option<&str>,
    ) -> Result<Resolution, ResolveError> {
        // The copy in memory may predate a profile the CLI just added.
        let store = self.store_holding(pinned).await;
        if let Some(pin) = pinned
            && !store.profiles.contains_key(pin)
        {
            return Err(ResolveError::ProfileNotFound {
                id: pin.to_string(),
                provider: provider.to_string(),
                known: self.listed_ids(&store, provider),
                profiles_problem: self.profiles_problem(),
            });
        }
        // Profiles whose secret is a SecretRef: resolved in one batch (cached for a while).
        let refs: Vec<(String, SecretRef)> = store
            .for_provider(provider)
            .filter(|p| inline_secret(&p.credential).is_none())
            .filter_map(|p| profile_ref(&p.credential).map(|r| (p.id.clone(), r.clone())))
            .collect();
        let mut secrets: HashMap<String, SecretState> = HashMap::with_capacity(refs.len());
        let config = self.config.get();
        let config_ref = match config
            .models
            .providers
            .get(provider)
            .and_then(|p| p.api_key.as_ref())
        {
            Some(SecretInput::Ref(r)) => Some(r.clone()),
            _ => None,
        };
        let mut wanted: Vec<SecretRef> = refs.iter().map(|(_, r)| r.clone()).collect();
        wanted.extend(config_ref.clone());
        let resolved = if wanted.iter().all(|r| self.secrets.cached(r).is_some()) {
            wanted
                .iter()
                .filter_map(|r| self.secrets.cached(r).map(|s| (r.clone(), Ok(s))))
                .collect()
        } else {
            self.secrets.resolve_many(&wanted).await
        };
        for (id, r) in &refs {
            let state = match resolved.get(r) {
                Some(Ok(s)) => SecretState::Value(s.clone()),
                Some(Err(e)) => SecretState::Failed(e.to_string()),
                None => SecretState::Missing,
            };
            secrets.insert(id.clone(), state);
        }
        let config_key = match config
            .models
            .providers
            .get(provider)
            .and_then(|p| p.api_key.as_ref())
        {
            Some(SecretInput::Plain(v)) if !v.trim().is_empty() => {
                Some((Secret::new(v.trim()), CredentialSource::Config, None))
            }
            Some(SecretInput::Ref(r)) => match resolved.get(r) {
                Some(Ok(s)) => Some((s.clone(), CredentialSource::Ref, Some(ref_label(r)))),
                Some(Err(e)) => {
                    tracing::warn!("models.providers.{provider}.apiKey: {e}");
                    None
                }
                None => None,
            },
            _ => None,
        };
        let now = self.clock.now_ms();
        let view = self
            .cooldowns
            .turn_view()
            .await
            .map_err(ResolveError::StateStore)?;
        let standing = |id: &str, fp: &str| view.standing(id, fp, model, now);
        let last_used = |id: &str| view.last_used(id);
        let inputs = OrderInputs {
            provider,
            model,
            pinned,
            pin_policy: config.auth.pin_policy,
            store: &store,
            config: &config,
            env: self.env_keys(provider),
            config_key,
            ref_secrets: &secrets,
            standing: &standing,
            last_used: &last_used,
            now_ms: now,
        };
        Ok(Resolution {
            provider: provider.to_string(),
            pinned: pinned.map(str::to_string),
            candidates: order(&inputs),
        })
    }

    /// The resolution for a turn (its `attempt_order` is non-empty), or why there is
    /// nothing to try. A strictly pinned profile
    /// that cannot be used now is an error naming it, why, until when and how to unpin.
    pub async fn attempt_list(
        &self,
        provider: &str,
        model: &str,
        pinned: Option<&str>,
    ) -> Result<Resolution, ResolveError> {
        let res = self.resolve(provider, model, pinned).await?;
        let now = self.clock.now_ms();
        if let (Some(pin), PinPolicy::Strict) = (pinned, self.config.get().auth.pin_policy)
            && let Some(c) = res.candidates.first()
        {
            let why = match (&c.credential, c.until) {
                (None, _) => Some(format!(
                    "is {} ({})",
                    health_str(c.health),
                    c.reason.unwrap_or("unusable")
                )),
                (Some(_), Some(u)) => Some(format!(
                    "is {} after {} {}",
                    if c.health == Health::Cooldown {
                        "cooling down"
                    } else {
                        "disabled"
                    },
                    c.reason.map(reason_words).unwrap_or("an error"),
                    lasts_text(c.reason, u, &res.provider, now)
                )),
                _ => None,
            };
            if let Some(why) = why {
                let detail = c
                    .detail
                    .as_ref()
                    .map(|d| format!(" [{d}]"))
                    .unwrap_or_default();
                // A cooldown ends on its own; an expired or broken profile, or a
                // refused sign-in, does not.
                let wait = if c.until.is_some() && c.reason != Some("refresh_failed") {
                    "Wait, fix it"
                } else {
                    "Fix it"
                };
                return Err(ResolveError::PinUnusable(format!(
                    "Pinned auth profile \"{pin}\" {why}{detail}. {wait} (`remoteclaw models status`), or unpin with /model default."
                )));
            }
        }
        if !res.has_attempts() {
            let env_var = primary_env_var(provider);
            if res.candidates.is_empty() {
                return Err(ResolveError::NoCredentials {
                    provider: provider.to_string(),
                    env_var,
                    profiles_problem: self.profiles_problem(),
                });
            }
            return Err(ResolveError::NothingUsable {
                provider: provider.to_string(),
                env_var,
                summary: res.summary(now),
                profiles_problem: self.profiles_problem(),
            });
        }
        Ok(res)
    }
}

/// A profile's id, as opposed to an environment key's (`env:…`) or the config key's
/// (`config:<provider>`), which every agent shares.
fn is_profile_id(id: &str) -> bool {
    !id.starts_with("env:") && !id.starts_with("config:")
}

fn profile_infos(store: &ProfileStore) -> Vec<ProfileInfo> {
    store
        .profiles
        .values()
        .map(|p| ProfileInfo {
            id: p.id.clone(),
            provider: p.provider.clone(),
        })
        .collect()
}

fn reason_words(r: &str) -> &'static str {
    match r {
        "rate_limit" => "a rate limit",
        "quota" => "running out of quota",
        "billing" => "a billing error",
        "auth" => "an authentication error",
        "refresh_failed" => "a refused token refresh",
        _ => "an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    struct Fixture {
        store: ProfileStore,
        config: Config,
        secrets: HashMap<String, SecretState>,
        standings: HashMap<String, Standing>,
        last_used: HashMap<String, i64>,
        env: Vec<(&'static str, &'static str)>,
    }

    const NOW: i64 = 10_000_000_000;

    fn fixture(profiles: &str, config: &str) -> Fixture {
        let store = ProfileStore::parse(Path::new("a.json"), profiles).expect("profiles");
        let mut secrets = HashMap::new();
        for p in store.profiles.values() {
            let s = match &p.credential {
                ProfileCredential::ApiKey { key, .. } => key.clone(),
                ProfileCredential::Token { token, .. } => token.clone(),
                ProfileCredential::Oauth { access, .. } => access.clone(),
            };
            secrets.insert(
                p.id.clone(),
                s.map_or(SecretState::Missing, SecretState::Value),
            );
        }
        Fixture {
            store,
            config: crate::config::parse(Path::new("t.toml"), config).expect("config"),
            secrets,
            standings: HashMap::new(),
            last_used: HashMap::new(),
            env: Vec::new(),
        }
    }

    fn run(f: &Fixture, pinned: Option<&str>) -> Vec<(String, Health, Option<&'static str>)> {
        let standing = |id: &str, _fp: &str| f.standings.get(id).copied();
        let last_used = |id: &str| f.last_used.get(id).copied();
        let inputs = OrderInputs {
            provider: "anthropic",
            model: "anthropic/m",
            pinned,
            pin_policy: f.config.auth.pin_policy,
            store: &f.store,
            config: &f.config,
            env: Arc::new(env_candidates(
                "anthropic",
                &EnvMap::from_pairs(f.env.iter().copied()),
            )),
            config_key: None,
            ref_secrets: &f.secrets,
            standing: &standing,
            last_used: &last_used,
            now_ms: NOW,
        };
        order(&inputs)
            .into_iter()
            .map(|c| (c.id.to_string(), c.health, c.reason))
            .collect()
    }

    fn ids<'a>(v: &'a [(String, Health, Option<&'static str>)]) -> Vec<&'a str> {
        v.iter().map(|(id, _, _)| id.as_str()).collect()
    }

    const PROFILES: &str = r#"{"profiles":{
        "anthropic:key":   {"type":"api_key","provider":"anthropic","key":"k-key"},
        "anthropic:tok":   {"type":"token","provider":"anthropic","token":"k-tok","expires":20000000000},
        "anthropic:oauth": {"type":"oauth","provider":"anthropic","access":"k-oauth","refresh":"r"},
        "anthropic:old":   {"type":"token","provider":"anthropic","token":"k-old","expires":5},
        "anthropic:soon":  {"type":"token","provider":"anthropic","token":"k-soon","expires":10003600000},
        "anthropic:bad":   {"type":"token","provider":"anthropic","token":"k-bad","expires":"tomorrow"},
        "anthropic:empty": {"type":"api_key","provider":"anthropic"},
        "openai:x":        {"type":"api_key","provider":"openai","key":"k-openai"}}}"#;

    #[test]
    fn stored_profiles_sort_by_kind_then_least_recently_used() {
        // anthropic has a token endpoint here, so its OAuth sign-in can be refreshed.
        let mut f = fixture(
            PROFILES,
            "[models.providers.anthropic.oauth]\ntokenUrl = \"http://127.0.0.1:9/token\"\nclientId = \"c\"\n",
        );
        f.last_used.insert("anthropic:soon".into(), 50);
        f.last_used.insert("anthropic:tok".into(), 10);
        let got = run(&f, None);
        assert_eq!(
            ids(&got),
            [
                "anthropic:oauth",
                "anthropic:tok",
                "anthropic:soon",
                "anthropic:key",
                "anthropic:bad",
                "anthropic:old",
                "anthropic:empty"
            ],
            "oauth > token (never used first, then least recently used) > api_key; ineligible ones last, in order"
        );
        let by_id: HashMap<&str, (Health, Option<&str>)> =
            got.iter().map(|(i, h, r)| (i.as_str(), (*h, *r))).collect();
        assert_eq!(
            by_id["anthropic:oauth"],
            (Health::Ok, None),
            "oauth with refresh renews itself"
        );

        assert_eq!(by_id["anthropic:tok"], (Health::Ok, None));
        assert_eq!(
            by_id["anthropic:soon"],
            (Health::Expiring, None),
            "within 24 h"
        );
        assert_eq!(by_id["anthropic:key"], (Health::Static, None));
        assert_eq!(by_id["anthropic:old"], (Health::Expired, Some("expired")));
        assert_eq!(
            by_id["anthropic:bad"],
            (Health::Missing, Some("invalid_expires"))
        );
        assert_eq!(
            by_id["anthropic:empty"],
            (Health::Missing, Some("missing_credential"))
        );
        // Without a token endpoint the sign-in cannot renew itself: its access token's
        // expiry decides (none given here: static).
        let f = fixture(PROFILES, "");
        let got = run(&f, None);
        let oauth = got.iter().find(|(i, _, _)| i == "anthropic:oauth").unwrap();
        assert_eq!((oauth.1, oauth.2), (Health::Static, None));
    }

    #[test]
    fn explicit_order_reason_codes_and_env_after_profiles() {
        let mut f = fixture(
            r#"{"profiles":{"anthropic:key":{"type":"api_key","provider":"anthropic","key":"k-key"},"openai:x":{"type":"api_key","provider":"openai","key":"k-openai"}},
                "order":{"anthropic":["anthropic:key","openai:x","anthropic:gone"]}}"#,
            "",
        );
        f.env = vec![
            ("ANTHROPIC_API_KEY", "k-env"),
            ("ANTHROPIC_API_KEYS", "k-key,k-list"),
        ];
        let got = run(&f, None);
        assert_eq!(
            ids(&got),
            [
                "anthropic:key",
                "env:ANTHROPIC_API_KEYS[1]",
                "env:ANTHROPIC_API_KEY",
                "openai:x",
                "anthropic:gone"
            ],
            "deduped by value; ineligible last"
        );
        assert_eq!(got[3].2, Some("provider_mismatch"));
        assert_eq!(got[4].2, Some("profile_missing"));
    }

    #[test]
    fn config_order_then_declared_profiles_and_mode_checks() {
        let f = fixture(
            PROFILES,
            "[auth.order]\nanthropic = [\"anthropic:tok\", \"anthropic:key\"]\n",
        );
        assert_eq!(ids(&run(&f, None)), ["anthropic:tok", "anthropic:key"]);
        let f = fixture(
            PROFILES,
            "[auth.profiles.\"anthropic:key\"]\nprovider = \"anthropic\"\nmode = \"token\"\n[auth.profiles.\"anthropic:tok\"]\nprovider = \"anthropic\"\nmode = \"oauth\"\n",
        );
        let got = run(&f, None);
        assert_eq!(
            ids(&got),
            ["anthropic:tok", "anthropic:key"],
            "declared profiles; oauth mode accepts a token"
        );
        assert_eq!(got[1].2, Some("mode_mismatch"));
    }

    #[test]
    fn declared_profiles_go_in_the_order_the_config_declares_them() {
        let profiles = r#"{"profiles":{
            "anthropic:a": {"type":"api_key","provider":"anthropic","key":"k-a"},
            "anthropic:b": {"type":"api_key","provider":"anthropic","key":"k-b"}}}"#;
        let f = fixture(
            profiles,
            "[auth.profiles.\"anthropic:b\"]\nprovider = \"anthropic\"\nmode = \"api_key\"\n[auth.profiles.\"anthropic:a\"]\nprovider = \"anthropic\"\nmode = \"api_key\"\n",
        );
        assert_eq!(ids(&run(&f, None)), ["anthropic:b", "anthropic:a"]);
    }

    #[test]
    fn set_aside_credentials_move_back_soonest_first() {
        let mut f = fixture(r#"{"profiles":{}}"#, "");
        f.env = vec![("ANTHROPIC_API_KEYS", "k1,k2,k3,k4")];
        f.standings.insert(
            "env:ANTHROPIC_API_KEYS[0]".into(),
            Standing {
                reason: Reason::RateLimit,
                until: NOW + 300_000,
            },
        );
        f.standings.insert(
            "env:ANTHROPIC_API_KEYS[1]".into(),
            Standing {
                reason: Reason::RateLimit,
                until: NOW + 60_000,
            },
        );
        f.standings.insert(
            "env:ANTHROPIC_API_KEYS[3]".into(),
            Standing {
                reason: Reason::Billing,
                until: NOW + 3_600_000,
            },
        );
        let got = run(&f, None);
        assert_eq!(
            ids(&got),
            [
                "env:ANTHROPIC_API_KEYS[2]",
                "env:ANTHROPIC_API_KEYS[1]",
                "env:ANTHROPIC_API_KEYS[0]",
                "env:ANTHROPIC_API_KEYS[3]"
            ]
        );
        assert_eq!(got[1].1, Health::Cooldown);
        assert_eq!(got[3].1, Health::Disabled);
    }

    #[test]
    fn pins_strict_and_fallback() {
        let mut f = fixture(PROFILES, "");
        f.env = vec![("ANTHROPIC_API_KEY", "k-env")];
        assert_eq!(
            ids(&run(&f, Some("anthropic:key"))),
            ["anthropic:key"],
            "strict: the pin alone"
        );
        let mut f = fixture(PROFILES, "[auth]\npinPolicy = \"fallback\"\n");
        f.env = vec![("ANTHROPIC_API_KEY", "k-env")];
        f.standings.insert(
            "anthropic:key".into(),
            Standing {
                reason: Reason::RateLimit,
                until: NOW + 1,
            },
        );
        let got = run(&f, Some("anthropic:key"));
        assert_eq!(
            got[0].0, "anthropic:key",
            "fallback: the pin stays first even while cooling"
        );
        assert_eq!(got.len(), 8);
        assert!(ids(&got).contains(&"env:ANTHROPIC_API_KEY"));
    }

    #[test]
    fn attempt_order_skips_disabled_and_ineligible() {
        let cand = |id: &str,
                    usable: bool,
                    health: Health,
                    reason: Option<&'static str>,
                    until: Option<i64>| {
            Candidate {
                id: id.into(),
                kind: CredentialKind::ApiKey,
                source: CredentialSource::Env,
                credential: usable.then(|| Credential {
                    id: id.into(),
                    provider: "p".into(),
                    kind: CredentialKind::ApiKey,
                    source: CredentialSource::Env,
                    secret: Secret::new(id),
                    expires_ms: None,
                    account_id: None,
                    refresh_fp: None,
                }),
                health,
                reason,
                until,
                secret: None,
                detail: None,
                expires_ms: None,
            }
        };
        let res = Resolution {
            provider: "p".into(),
            pinned: None,
            candidates: vec![
                cand("a", true, Health::Static, None, None),
                cand("b", true, Health::Cooldown, Some("rate_limit"), Some(5)),
                cand("c", true, Health::Disabled, Some("auth"), Some(FOREVER)),
                cand("d", false, Health::Expired, Some("expired"), None),
            ],
        };
        assert_eq!(
            res.attempt_order().map(|c| &*c.id).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(res.next().map(|c| &*c.id), Some("a"));
    }

    #[test]
    fn until_text_reads_well() {
        assert_eq!(
            until_text(FOREVER, 0),
            "until cleared (`remoteclaw models auth cooldown clear`)"
        );
        assert_eq!(
            until_text(3_600_000 + 90_000, 3_600_000),
            "until 01:01 UTC (in 2m)"
        );
        // A refused refresh is not cleared away: it takes a new sign-in (DESIGN §5a).
        assert_eq!(
            lasts_text(Some("refresh_failed"), FOREVER, "corp", 0),
            "— sign in again: `remoteclaw models auth login --provider corp`"
        );
        assert_eq!(
            lasts_text(Some("auth"), FOREVER, "corp", 0),
            until_text(FOREVER, 0)
        );
    }
}

#[cfg(test)]
mod usage_import_tests {
    use super::*;
    use crate::auth::cooldown::SqliteCooldowns;
    use crate::auth::cooldown::{CooldownRow, CooldownState, CooldownStore};
    use crate::clock::ManualClock;
    use crate::state::{StateDb, StoreError, StoreFuture};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A state store whose imports fail while `fail` is set, counting the tries.
    #[derive(Debug)]
    struct FlakyImports {
        inner: SqliteCooldowns,
        fail: AtomicBool,
        tries: AtomicUsize,
    }

    impl CooldownStore for FlakyImports {
        fn version(&self) -> StoreFuture<i64> {
            self.inner.version()
        }
        fn load(&self) -> StoreFuture<CooldownState> {
            self.inner.load()
        }
        fn set(&self, c: &str, s: &str, row: CooldownRow, now: i64) -> StoreFuture<()> {
            self.inner.set(c, s, row, now)
        }
        fn touch(&self, c: &str, now: i64, good: bool) -> StoreFuture<()> {
            self.inner.touch(c, now, good)
        }
        fn clear_standing(&self, c: &str, m: &str, fps: &[String]) -> StoreFuture<()> {
            self.inner.clear_standing(c, m, fps)
        }
        fn import_once(&self, marker: &str, e: Vec<ImportEntry>, now: i64) -> StoreFuture<bool> {
            self.tries.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Box::pin(async {
                    Err(StoreError::Backend {
                        path: "redis at 127.0.0.1:1".into(),
                        message: "state store unavailable: timed out".into(),
                    })
                });
            }
            self.inner.import_once(marker, e, now)
        }
        fn clear(&self, c: Option<&str>) -> StoreFuture<usize> {
            self.inner.clear(c)
        }
        fn clear_rows(&self, rows: Vec<(String, String, String)>) -> StoreFuture<usize> {
            self.inner.clear_rows(rows)
        }
    }

    /// Regression (review): a failed import was tried again at every look (each turn,
    /// the reloader's 500 ms poll), a warning each time, with turns waiting behind each
    /// try. Now turns never try again; the reloader's look does, 30 s after the failure,
    /// then 60 s, ... up to 5 min.
    #[tokio::test]
    async fn a_failed_usage_import_is_retried_with_backoff_and_never_by_turns() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth-profiles.json");
        std::fs::write(
            &path,
            r#"{"profiles": {"anthropic:a": {"type": "api_key", "provider": "anthropic", "key": "ka"}},
                "usageStats": {"anthropic:a": {"cooldownUntil": 99000000000, "errorCount": 1}}}"#,
        )
        .expect("write");
        let store = Arc::new(FlakyImports {
            inner: SqliteCooldowns::new(StateDb::open(&dir.path().join("state.db")).expect("db")),
            fail: AtomicBool::new(true),
            tries: AtomicUsize::new(0),
        });
        let book = Arc::new(CooldownBook::with_store(store.clone(), Default::default()));
        let clock = ManualClock::new(1_000_000);
        let config =
            Arc::new(crate::config::parse(std::path::Path::new("t.toml"), "").expect("config"));
        let resolver = CredentialResolver::new(
            config,
            Arc::new(EnvMap::from_pairs(std::iter::empty::<(&str, &str)>())),
            path,
            clock.clone(),
            book.clone(),
        );
        let tries = || store.tries.load(Ordering::SeqCst);

        resolver.import_usage_stats().await;
        assert_eq!(tries(), 1, "the first look imports");
        for _ in 0..3 {
            assert!(
                resolver
                    .store_async()
                    .await
                    .profiles
                    .contains_key("anthropic:a")
            );
        }
        resolver.import_usage_stats().await;
        assert_eq!(
            tries(),
            1,
            "turns never retry, the reloader not before 30 s"
        );

        let mut expected = 1;
        for step in [30_000, 60_000, 120_000, 240_000, 300_000, 300_000] {
            clock.advance_ms(step - 1);
            resolver.import_usage_stats().await;
            assert_eq!(tries(), expected, "not before {step} ms");
            clock.advance_ms(1);
            resolver.import_usage_stats().await;
            expected += 1;
            assert_eq!(tries(), expected, "again after {step} ms");
            resolver.store_async().await;
            assert_eq!(tries(), expected, "not by a turn");
        }

        store.fail.store(false, Ordering::SeqCst);
        clock.advance_ms(300_000);
        resolver.import_usage_stats().await;
        assert_eq!(tries(), expected + 1);
        let listed = book.list(clock.now_ms()).await.expect("list");
        assert!(
            listed.iter().any(|e| e.credential == "anthropic:a"),
            "{listed:?}"
        );
        clock.advance_ms(600_000);
        resolver.import_usage_stats().await;
        resolver.store_async().await;
        assert_eq!(tries(), expected + 1, "once done, never again");
    }
}
