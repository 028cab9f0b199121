//! Credential alerts (DESIGN §11). With `[alerts]`, the running gateway posts to a
//! Telegram chat and/or a Discord channel when a credential becomes `expiring` (24 h
//! ahead), `expired` or `disabled` (auth, billing, quota, refused refresh), or when a
//! provider in use (default model, fallbacks, allowlisted models, for every agent the
//! gateway serves) has no usable credential left; and once more when that is over.
//!
//! How: a check every [`POLL_EVERY`] (and at once when a turn disables a credential:
//! the cooldown book's `disabled_signal`) asks each agent's resolver for every
//! credential it would consider, exactly as `models status` does, and compares what it
//! sees with what was last reported to each target, which the state store remembers
//! (`store`: `state.db` or Redis). Alert keys are `<target>|<subject>`, subjects
//! `cred:<agent>:<id>` (`cred:*:<id>` for environment and config keys, which every agent
//! shares) and `provider:<agent>:<provider>`. A difference is claimed in the store first
//! (atomic "set, did it change?", so replicas sharing a store post once), then posted;
//! a post that fails puts the old state back, so the next check tries again. A subject
//! that disappears (a profile removed) is forgotten without a message.
//!
//! The configuration is read through `App::config()` once per check, never kept.

mod post;
pub mod redis;
pub mod store;
mod text;

pub use text::Problem;

use crate::app::App;
use crate::auth::cooldown::{ANY_MODEL, Reason};
use crate::auth::env_keys::{env_candidates, primary_env_var};
use crate::auth::resolver::health_str;
use crate::auth::{Candidate, CredentialSource, Health, Resolution};
use crate::engine::Derived;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use text::{CredentialFacts, ProviderFacts};
use tokio::sync::watch;

/// How often the gateway looks for changes (DESIGN: within 5 s of a change).
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// One subject of alerts as it is now.
#[derive(Debug, Clone)]
pub struct Observation {
    /// `cred:<agent>:<id>`, `cred:*:<id>` or `provider:<agent>:<provider>`.
    pub subject: String,
    /// `None`: fine (ok, static, cooling down after a rate limit, …).
    pub problem: Option<Problem>,
    /// The alert for `problem`.
    pub problem_text: String,
    /// The message when a reported problem is over.
    pub recovery_text: String,
}

/// What one check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages posted (problems and recoveries), over every target.
    pub posted: usize,
    /// Posts that failed; they are tried again at the next check.
    pub failed: usize,
}

/// The alerts task's state between checks.
#[derive(Debug)]
pub struct Alerts {
    app: Arc<App>,
    clients: post::Clients,
    /// The last warning logged per target (or `""` for the whole table), so a lasting
    /// problem is logged once, not at every check.
    warned: HashMap<String, String>,
}

/// Start the alerts task: a check now, then every [`POLL_EVERY`] and whenever a turn
/// disables a credential, until `stop` turns true.
pub fn spawn(app: Arc<App>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Alerts::new(app).run(POLL_EVERY, stop))
}

impl Alerts {
    pub fn new(app: Arc<App>) -> Alerts {
        Alerts {
            app,
            clients: post::Clients::default(),
            warned: HashMap::new(),
        }
    }

    /// Check now, then every `every` and whenever this process disables a credential,
    /// until `stop` turns true (or its sender goes away).
    pub async fn run(mut self, every: Duration, mut stop: watch::Receiver<bool>) {
        let book = self.app.engine.resolver.cooldowns.clone();
        loop {
            if *stop.borrow() {
                break;
            }
            self.check().await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = book.disabled_signal().notified() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// Log `message` for `about` unless it is what was logged last for it.
    fn warn_once(&mut self, about: &str, message: String) {
        if self.warned.get(about) != Some(&message) {
            tracing::warn!("{message}");
            self.warned.insert(about.to_string(), message);
        }
    }

    /// One check: observe, compare with what was reported, post the differences.
    pub async fn check(&mut self) -> Report {
        let mut report = Report::default();
        // The config in force and the engine's catalog of it (one snapshot).
        let current = self.app.engine.current();
        let config = current.config.clone();
        let Some(alerts) = config.alerts.clone() else {
            self.warned.clear();
            return report;
        };
        if alerts.telegram_chat.is_none() && alerts.discord_channel.is_none() {
            self.warn_once(
                "",
                "[alerts] names no target: add telegramChat and/or discordChannel, or remove the table".into(),
            );
            return report;
        }
        let (targets, unusable) = self.clients.targets(&self.app, &config, &alerts).await;
        for (name, why) in unusable {
            self.warn_once(
                &name,
                format!("{why}; credential alerts are not posted to {name}"),
            );
        }
        if targets.is_empty() {
            return report;
        }
        let now = self.app.engine.resolver.clock.now_ms();
        let (observed, complete) = observe(&self.app, &current, now).await;
        let stored: HashMap<String, String> = match self.app.stores.alerts.load().await {
            Ok(rows) => rows.into_iter().collect(),
            Err(e) => {
                self.warn_once("store", format!("credential alerts: {e}"));
                return report;
            }
        };
        self.warned.remove("store");
        for target in &targets {
            self.report_to(target, &observed, complete, &stored, now, &mut report)
                .await;
        }
        report
    }

    /// Post to `target` what differs from what it was last told.
    async fn report_to(
        &mut self,
        target: &post::Target,
        observed: &[Observation],
        complete: bool,
        stored: &HashMap<String, String>,
        now: i64,
        report: &mut Report,
    ) {
        let store = self.app.stores.alerts.clone();
        let prefix = format!("{}|", target.name);
        let mut seen: HashSet<String> = HashSet::with_capacity(observed.len());
        for o in observed {
            let key = format!("{prefix}{}", o.subject);
            let before = stored.get(&key).map(String::as_str);
            let want = o.problem.map(Problem::as_str);
            seen.insert(key.clone());
            if before == want.as_deref() {
                continue;
            }
            let text = match &want {
                Some(_) => &o.problem_text,
                None => &o.recovery_text,
            };
            match store.set(&key, want.as_deref(), now).await {
                Ok(true) => {}
                // Someone (another replica) reported it meanwhile.
                Ok(false) => continue,
                Err(e) => {
                    self.warn_once("store", format!("credential alerts: {e}"));
                    return;
                }
            }
            match target.post(text).await {
                Ok(()) => {
                    report.posted += 1;
                    self.warned.remove(&target.name);
                    tracing::info!(
                        target = %target.name,
                        subject = %o.subject,
                        state = want.as_deref().unwrap_or("ok"),
                        "credential alert posted"
                    );
                }
                Err(e) => {
                    report.failed += 1;
                    // Not reported after all: the next check tries again.
                    if let Err(e) = store.set(&key, before, now).await {
                        tracing::warn!("credential alerts: {e}");
                    }
                    self.warn_once(
                        &target.name,
                        format!(
                            "could not post a credential alert to {}: {e} (trying again at the next check)",
                            target.name
                        ),
                    );
                    return;
                }
            }
        }
        // Subjects that are gone (a profile removed, a provider no longer used): forget
        // them quietly, so they alert again if they come back with a problem.
        if complete {
            for key in stored.keys() {
                if key.starts_with(&prefix)
                    && !seen.contains(key)
                    && let Err(e) = store.set(key, None, now).await
                {
                    tracing::warn!("credential alerts: {e}");
                    return;
                }
            }
        }
    }
}

/// A problem the candidate has, if any.
fn problem_of(c: &Candidate) -> Option<Problem> {
    match c.health {
        Health::Expiring => Some(Problem::Expiring),
        Health::Expired => Some(Problem::Expired),
        Health::Disabled => c
            .reason
            .map(Reason::parse)
            .filter(|r| r.disables())
            .map(Problem::Disabled),
        _ => None,
    }
}

/// Every subject of alerts now, in a stable order (credentials, then providers), and
/// whether every resolver answered (only then may vanished subjects be forgotten).
pub async fn observe(app: &App, current: &Derived, now: i64) -> (Vec<Observation>, bool) {
    let (config, catalog) = (&current.config, &current.catalog);
    let in_use = catalog.providers_in_use();
    let agents = app.resolvers();
    let several = agents.len() > 1;
    let mut out: BTreeMap<String, Observation> = BTreeMap::new();
    let mut complete = true;
    for (agent, resolver) in &agents {
        let agent = agent.as_str();
        let cli_agent = (agent != config.agents.default_id).then_some(agent);
        // The providers in use first, then any other with credentials (as status lists them).
        let mut providers: Vec<String> = in_use.iter().map(|(p, _)| p.clone()).collect();
        let store = resolver.store_async().await;
        providers.extend(store.profiles.values().map(|p| p.provider.clone()));
        // An unreadable or corrupt file may hide profiles: none is forgotten meanwhile.
        if let Some(e) = resolver.profiles_problem() {
            tracing::debug!(agent, "credential alerts: {e}");
            complete = false;
        }
        for p in &catalog.providers {
            if !env_candidates(p, &app.env).is_empty()
                || config
                    .models
                    .providers
                    .get(p)
                    .is_some_and(|c| c.api_key.is_some())
            {
                providers.push(p.clone());
            }
        }
        let mut listed = HashSet::new();
        providers.retain(|p| listed.insert(p.clone()));
        for provider in providers {
            let res = match resolver.resolve(&provider, ANY_MODEL, None).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(agent, provider, "credential alerts: {e}");
                    complete = false;
                    continue;
                }
            };
            for c in &res.candidates {
                if let Some(o) = observe_credential(c, &provider, agent, several, cli_agent, now) {
                    let keep_old = out
                        .get(&o.subject)
                        .is_some_and(|old| old.problem.is_some() || o.problem.is_none());
                    if !keep_old {
                        out.insert(o.subject.clone(), o);
                    }
                }
            }
            if let Some((_, needed_by)) = in_use.iter().find(|(p, _)| *p == provider) {
                let o = observe_provider(&res, needed_by, agent, several, cli_agent, now);
                out.insert(o.subject.clone(), o);
            }
        }
    }
    (out.into_values().collect(), complete)
}

/// A credential as alerts see it; `None` for a candidate that is not this provider's
/// credential at all (another provider's profile in its order, a missing profile id).
fn observe_credential(
    c: &Candidate,
    provider: &str,
    agent: &str,
    several: bool,
    cli_agent: Option<&str>,
    now: i64,
) -> Option<Observation> {
    if matches!(c.reason, Some("provider_mismatch" | "profile_missing")) {
        return None;
    }
    // Environment and config keys are the same for every agent.
    let shared = matches!(c.source, CredentialSource::Env | CredentialSource::Config)
        || c.id.starts_with("config:");
    let facts = CredentialFacts {
        id: &c.id,
        provider,
        kind: c.kind,
        source: c.source,
        agent: (several && !shared).then_some(agent),
        cli_agent: cli_agent.filter(|_| !shared),
        expires_ms: c.expires_ms,
        until: c.until,
        // The ref a secret comes from (a label, never a value); not an error text.
        detail: c
            .detail
            .as_deref()
            .filter(|_| !matches!(c.reason, Some("unresolved_ref" | "provider_mismatch"))),
    };
    let problem = problem_of(c);
    Some(Observation {
        subject: format!("cred:{}:{}", if shared { "*" } else { agent }, c.id),
        problem,
        problem_text: problem
            .map(|p| text::credential_problem(&facts, p, now))
            .unwrap_or_default(),
        recovery_text: text::credential_recovered(
            &facts,
            health_str(c.health),
            c.credential.is_some(),
            c.reason,
        ),
    })
}

/// A provider in use: a problem when a turn would have nothing to try.
fn observe_provider(
    res: &Resolution,
    needed_by: &str,
    agent: &str,
    several: bool,
    cli_agent: Option<&str>,
    now: i64,
) -> Observation {
    let env_var = primary_env_var(&res.provider);
    let facts = ProviderFacts {
        provider: &res.provider,
        needed_by,
        agent: several.then_some(agent),
        cli_agent,
        env_var: &env_var,
    };
    let problem = (!res.has_attempts()).then_some(Problem::NoCredential);
    Observation {
        subject: format!("provider:{agent}:{}", res.provider),
        problem,
        problem_text: problem
            .map(|_| text::provider_problem(&facts, &res.summary(now)))
            .unwrap_or_default(),
        recovery_text: text::provider_recovered(&facts, res.next().map(|c| &*c.id)),
    }
}
