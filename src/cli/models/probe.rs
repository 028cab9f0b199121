//! `models status --probe`: one cheap real request (1 output token) per provider and
//! credential, with bounded concurrency and a timeout. Outcomes update cooldowns
//! exactly as turns do, so a probe that hits a rate limit sets the key aside.
//!
//! OAuth sign-ins are probed like a turn uses them (DESIGN §5a): an access token that is
//! due is refreshed first, and a 401 refreshes once more and retries once. A refused
//! refresh is the probe's result (`refresh_failed`, with the sign-in command) and
//! disables the credential; a sign-in already disabled that way is not refreshed again.

use crate::app::App;
use crate::auth::cooldown::ANY_MODEL;
use crate::auth::{Credential, CredentialKind};
use crate::catalog::ModelRef;
use crate::oauth::refresh::{REFRESH_FAILED, REFRESH_UNAVAILABLE};
use crate::providers::{
    ChatMessage, ChatRequest, Completion, ErrorKind, ProviderClient, ProviderError,
    ProviderSettings,
};
use futures_util::StreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Probes run at once.
const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub provider: String,
    pub id: String,
    pub model: Option<String>,
    /// `ok`, an error kind (`rate_limit`, `auth`, …), `refresh_failed` /
    /// `refresh_unavailable` (the OAuth refresh before the call failed), `no_model` or
    /// `skipped`.
    pub outcome: String,
    pub latency_ms: Option<u64>,
    /// What went wrong, secret-free.
    pub error: Option<String>,
}

/// The model to probe a provider with: the first configured model of that provider.
fn probe_model(app: &App, provider: &str) -> Option<ModelRef> {
    let c = &app.engine.catalog();
    std::iter::once(&c.default)
        .chain(&c.fallbacks)
        .chain(c.allowed.keys())
        .find(|m| m.provider == provider)
        .cloned()
}

pub struct ProbeOptions<'a> {
    pub providers: &'a [String],
    pub only_provider: Option<&'a str>,
    pub only_profile: Option<&'a str>,
    pub timeout: Duration,
}

pub async fn run_probes(app: &App, opts: &ProbeOptions<'_>) -> anyhow::Result<Vec<ProbeResult>> {
    let mut jobs: Vec<(Credential, Option<ModelRef>, Option<ProviderClient>)> = Vec::new();
    let mut results = Vec::new();
    for provider in opts
        .providers
        .iter()
        .filter(|p| opts.only_provider.is_none_or(|o| o == p.as_str()))
    {
        let res = app
            .engine
            .resolver
            .resolve(provider, ANY_MODEL, None)
            .await?;
        let model = probe_model(app, provider);
        let client = ProviderSettings::resolve(&app.config(), provider)
            .map(|s| ProviderSettings {
                connect_timeout: opts.timeout,
                idle_timeout: opts.timeout,
                ..s
            })
            .and_then(|s| ProviderClient::new(s).ok());
        for c in res
            .candidates
            .iter()
            .filter(|c| opts.only_profile.is_none_or(|p| p == &*c.id))
        {
            match &c.credential {
                // Presenting a refused refresh token again would only be refused again.
                Some(_) if c.reason == Some(REFRESH_FAILED) => results.push(ProbeResult {
                    provider: provider.clone(),
                    id: c.id.to_string(),
                    model: model.as_ref().map(ToString::to_string),
                    outcome: REFRESH_FAILED.into(),
                    latency_ms: None,
                    error: Some(format!(
                        "{}: the provider refused to refresh this sign-in; {}",
                        c.id,
                        crate::auth::resolver::sign_in_again(provider)
                    )),
                }),
                Some(cred) => jobs.push((cred.clone(), model.clone(), client.clone())),
                None => results.push(ProbeResult {
                    provider: provider.clone(),
                    id: c.id.to_string(),
                    model: None,
                    outcome: "skipped".into(),
                    latency_ms: None,
                    error: Some(format!("not usable ({})", c.reason.unwrap_or("missing"))),
                }),
            }
        }
    }
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} probing {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    } else {
        None
    };
    let probed: Vec<ProbeResult> = futures_util::stream::iter(jobs)
        .map(|(cred, model, client)| {
            let bar = bar.clone();
            async move {
                let r = probe_one(app, &cred, model, client, opts.timeout).await;
                if let Some(b) = &bar {
                    b.inc(1);
                    b.set_message(format!("{} {}", r.id, r.outcome));
                }
                r
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results.extend(probed);
    results.sort_by(|a, b| a.provider.cmp(&b.provider).then_with(|| a.id.cmp(&b.id)));
    Ok(results)
}

async fn probe_one(
    app: &App,
    cred: &Credential,
    model: Option<ModelRef>,
    client: Option<ProviderClient>,
    timeout: Duration,
) -> ProbeResult {
    let mut out = ProbeResult {
        provider: cred.provider.to_string(),
        id: cred.id.to_string(),
        model: model.as_ref().map(ToString::to_string),
        outcome: String::new(),
        latency_ms: None,
        error: None,
    };
    let (Some(model), Some(client)) = (model, client) else {
        out.outcome = "no_model".into();
        out.error = Some(format!(
            "no model of {} is configured to probe with; add one to agents.defaults.models",
            cred.provider
        ));
        return out;
    };
    let req = ChatRequest {
        model: model.model.clone(),
        messages: vec![ChatMessage::user("ping")],
        max_tokens: 1,
    };
    let key = model.to_string();
    let refresher = &app.engine.resolver.refresher;
    // A due OAuth access token is refreshed first, outside the probe timeout: a refresh
    // cut off after the provider rotated its refresh token would lose the new one.
    let mut cred = match refresher.before_use(cred).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => cred.clone(),
        Err(e) => {
            record(app, cred, &key, &Err(e.clone())).await;
            return refresh_outcome(out, e);
        }
    };
    let started = Instant::now();
    let mut result = call(&client, &cred, &req, timeout).await;
    // A 401 for an OAuth credential: refresh once (the expiry we hold may be wrong) and
    // try once more, as a turn does.
    if cred.kind == CredentialKind::Oauth && matches!(&result, Err(e) if e.status == Some(401)) {
        match refresher.after_unauthorized(&cred).await {
            Ok(fresh) => {
                cred = fresh;
                result = call(&client, &cred, &req, timeout).await;
            }
            Err(e) => result = Err(e),
        }
    }
    out.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    record(app, &cred, &key, &result).await;
    match result {
        Ok(_) => out.outcome = "ok".into(),
        Err(e) if is_refresh_error(&e) => return refresh_outcome(out, e),
        Err(e) => {
            out.outcome = e.kind.as_str().into();
            out.error = Some(e.message);
        }
    }
    out
}

/// One provider call, given `timeout`.
async fn call(
    client: &ProviderClient,
    cred: &Credential,
    req: &ChatRequest,
    timeout: Duration,
) -> Result<Completion, ProviderError> {
    match tokio::time::timeout(timeout, client.complete(cred, req)).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::new(
            ErrorKind::Timeout,
            format!(
                "{}: no answer within {} ms (--probe-timeout)",
                cred.provider,
                timeout.as_millis()
            ),
        )),
    }
}

/// Record the outcome in the cooldown book, as a turn does (`Engine::record`): a refused
/// refresh disables the credential (`refresh_failed`).
async fn record(
    app: &App,
    cred: &Credential,
    key: &str,
    result: &Result<Completion, ProviderError>,
) {
    let now = app.clock.now_ms();
    let book = &app.engine.resolver.cooldowns;
    let recorded = match result {
        Ok(_) => {
            book.record_success(&cred.id, &cred.state_fingerprints(), key, now)
                .await
        }
        Err(e) => book
            .record_failure(
                &cred.id,
                &crate::engine::standing_fingerprint(cred, e),
                key,
                e,
                now,
            )
            .await
            .map(|_| ()),
    };
    if let Err(e) = recorded {
        tracing::warn!(credential = %cred.id, "could not record the probe outcome: {e}");
    }
}

/// An error from refreshing an OAuth sign-in rather than from the model call.
fn is_refresh_error(e: &ProviderError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(REFRESH_FAILED | REFRESH_UNAVAILABLE)
    )
}

/// The probe result of a refresh that failed: its code as the outcome, its message
/// (which names the sign-in command when the provider refused) as the error.
fn refresh_outcome(mut out: ProbeResult, e: ProviderError) -> ProbeResult {
    out.outcome = e.code.unwrap_or_else(|| e.kind.as_str().into());
    out.error = Some(e.message);
    out
}
