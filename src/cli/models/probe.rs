//! `models status --probe`: one cheap real request (1 output token) per provider and
//! credential, with bounded concurrency and a timeout. Outcomes update cooldowns
//! exactly as turns do, so a probe that hits a rate limit sets the key aside.

use crate::app::App;
use crate::auth::Credential;
use crate::auth::cooldown::ANY_MODEL;
use crate::catalog::ModelRef;
use crate::providers::{ChatMessage, ChatRequest, ProviderClient, ProviderSettings};
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
    /// `ok`, an error kind (`rate_limit`, `auth`, …), `no_model` or `skipped`.
    pub outcome: String,
    pub latency_ms: Option<u64>,
    /// What went wrong, secret-free.
    pub error: Option<String>,
}

/// The model to probe a provider with: the first configured model of that provider.
fn probe_model(app: &App, provider: &str) -> Option<ModelRef> {
    let c = &app.engine.catalog;
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
        let client = ProviderSettings::resolve(&app.config, provider)
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
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, client.complete(cred, &req)).await {
        Ok(r) => r,
        Err(_) => Err(crate::providers::ProviderError::new(
            crate::providers::ErrorKind::Timeout,
            format!(
                "{}: no answer within {} ms (--probe-timeout)",
                cred.provider,
                timeout.as_millis()
            ),
        )),
    };
    out.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    let now = app.clock.now_ms();
    let book = &app.engine.resolver.cooldowns;
    let key = model.to_string();
    let recorded = match &result {
        Ok(_) => book.record_success(&cred.id, &key, now),
        Err(e) => book
            .record_failure(&cred.id, cred.secret.fingerprint(), &key, e, now)
            .map(|_| ()),
    };
    if let Err(e) = recorded {
        tracing::warn!("could not record the probe outcome: {e}");
    }
    match result {
        Ok(_) => out.outcome = "ok".into(),
        Err(e) => {
            out.outcome = e.kind.as_str().into();
            out.error = Some(e.message);
        }
    }
    out
}
