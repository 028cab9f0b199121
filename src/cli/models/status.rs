//! `remoteclaw models status [--json] [--plain] [--check] [--agent ID]`: config path,
//! agent, default model, and per provider its endpoint and every credential in
//! resolution order with health, reason and fingerprint — never a secret.
//! `--check` exits 0 (ok), 1 (a token/OAuth credential in use is expired or missing,
//! or a provider in use has no credential) or 2 (one expires within 24 h). An OAuth
//! sign-in with a refresh token is `ok` (it renews itself); the text view says when its
//! access token refreshes, or how to sign in again (`oauth`).

mod oauth;

use crate::app::{App, ShellEnvImport};
use crate::auth::cooldown::ANY_MODEL;
use crate::auth::env_keys::env_candidates;
use crate::auth::resolver::health_str;
use crate::auth::{CredentialKind, Health, Resolution};
use crate::chat::views::{candidate_lines, kind_str, source_str};
use crate::config::env::EnvMap;
use crate::providers::ProviderSettings;
use clap::Args;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object (DESIGN §6 fields).
    #[arg(long)]
    pub json: bool,
    /// Tab-separated lines, one per credential.
    #[arg(long, conflicts_with = "json")]
    pub plain: bool,
    /// Exit 1 when a credential in use is expired/missing or a provider in use has none; 2 when one expires within 24 h.
    #[arg(long)]
    pub check: bool,
    /// Send one cheap real request (1 output token) per provider and credential.
    #[arg(long)]
    pub probe: bool,
    /// Probe only this provider.
    #[arg(long, value_name = "P", requires = "probe")]
    pub probe_provider: Option<String>,
    /// Probe only this profile or credential id.
    #[arg(long, value_name = "ID", requires = "probe")]
    pub probe_profile: Option<String>,
    /// Give each probe this long (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 8000, requires = "probe")]
    pub probe_timeout: u64,
    /// Agent whose credentials to show (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    config_path: String,
    agent_id: String,
    default_model: String,
    fallbacks: Vec<String>,
    providers: Vec<ProviderJson>,
    missing_providers_in_use: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probes: Option<Vec<super::probe::ProbeResult>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderJson {
    provider: String,
    base_url: Option<String>,
    api: Option<&'static str>,
    in_use: bool,
    candidates: Vec<CandidateJson>,
}

#[derive(Debug, Serialize)]
struct CandidateJson {
    id: String,
    kind: &'static str,
    source: &'static str,
    health: Health,
    reason: Option<&'static str>,
    until: Option<i64>,
    fingerprint: Option<String>,
}

/// Providers the default model chain and allowlist use, then any other provider that has
/// credentials (stored profiles, environment keys, a config key).
fn providers_to_show(app: &App) -> Vec<(String, bool)> {
    let catalog = &app.engine.catalog();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut add = |p: &str, in_use: bool| {
        if !out.iter().any(|(q, _)| q == p) {
            out.push((p.to_string(), in_use));
        }
    };
    for (p, _) in catalog.providers_in_use() {
        add(&p, true);
    }
    let mut others: Vec<String> = Vec::new();
    others.extend(
        app.engine
            .resolver
            .profiles()
            .into_iter()
            .map(|p| p.provider),
    );
    for p in &catalog.providers {
        if !env_candidates(p, &app.env).is_empty()
            || app
                .config()
                .models
                .providers
                .get(p)
                .is_some_and(|c| c.api_key.is_some())
        {
            others.push(p.clone());
        }
    }
    others.sort();
    for p in others {
        add(&p, false);
    }
    out
}

/// Exit code of `--check` for one resolution.
fn check_level(res: &Resolution, in_use: bool) -> u8 {
    let mut level = 0;
    if in_use && !res.has_attempts() {
        level = 1;
    }
    for c in &res.candidates {
        if !matches!(c.kind, CredentialKind::Token | CredentialKind::Oauth) {
            continue;
        }
        match c.health {
            Health::Expired | Health::Missing => level = 1,
            Health::Expiring if level == 0 => level = 2,
            _ => {}
        }
    }
    level
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(EnvMap::from_process(), args.agent.as_deref()).await?;
    let now = app.clock.now_ms();
    let catalog = &app.engine.catalog();
    let probes = if args.probe {
        let names: Vec<String> = providers_to_show(&app)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if let Some(p) = args.probe_provider.as_deref()
            && !names.iter().any(|n| n == p)
        {
            anyhow::bail!(
                "--probe-provider {p}: no such provider here (providers: {}) — use one of those names, as `remoteclaw models status` lists them",
                names.join(", ")
            );
        }
        let opts = super::probe::ProbeOptions {
            providers: &names,
            only_provider: args.probe_provider.as_deref(),
            only_profile: args.probe_profile.as_deref(),
            timeout: std::time::Duration::from_millis(args.probe_timeout.max(1)),
        };
        let probes = super::probe::run_probes(&app, &opts).await?;
        if let Some(id) = args.probe_profile.as_deref()
            && probes.is_empty()
        {
            anyhow::bail!(
                "--probe-profile {id}: no credential with that id{} — use an id as `remoteclaw models status` lists it",
                args.probe_provider
                    .as_deref()
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_default()
            );
        }
        Some(probes)
    } else {
        None
    };
    let mut providers = Vec::new();
    let mut missing = Vec::new();
    let mut level = 0u8;
    for (provider, in_use) in providers_to_show(&app) {
        let res = app
            .engine
            .resolver
            .resolve(&provider, ANY_MODEL, None)
            .await?;
        let l = check_level(&res, in_use);
        level = match (level, l) {
            (1, _) | (_, 1) => 1,
            (2, _) | (_, 2) => 2,
            _ => 0,
        };
        if in_use && !res.has_attempts() {
            missing.push(provider.clone());
        }
        let settings = ProviderSettings::resolve(&app.config(), &provider);
        providers.push((provider, in_use, settings, res));
    }

    // An auth-profiles.json that cannot be read or is not valid JSON gives no profiles
    // (what a turn of this command would use is listed above), and `order` entries that
    // are not lists are ignored: say so (the JSON schema has no place for it, so --json
    // and --plain say it on stderr). The first also makes the exit code 1.
    let profiles_problem = app.engine.resolver.profiles_problem();
    let order_warnings: Vec<String> = profiles_problem
        .iter()
        .map(|p| p.to_string())
        .chain(app.engine.resolver.store().malformed_order.iter().map(|m| {
            format!(
                "{}. Fix: {}",
                m.problem(&app.engine.resolver.profiles_path),
                m.fix()
            )
        }))
        .collect();
    if args.json || args.plain {
        for w in &order_warnings {
            eprintln!("warning: {w}");
        }
    }

    if args.json {
        let out = StatusJson {
            config_path: app.config_path.display().to_string(),
            agent_id: app.agent_id.clone(),
            default_model: catalog.default.to_string(),
            fallbacks: catalog.fallbacks.iter().map(ToString::to_string).collect(),
            providers: providers
                .iter()
                .map(|(p, in_use, s, res)| ProviderJson {
                    provider: p.clone(),
                    base_url: s.as_ref().map(|s| s.base_url.clone()),
                    api: s.as_ref().map(|s| s.api.as_str()),
                    in_use: *in_use,
                    candidates: res
                        .candidates
                        .iter()
                        .map(|c| CandidateJson {
                            id: c.id.to_string(),
                            kind: kind_str(c.kind),
                            source: source_str(c.source),
                            health: c.health,
                            reason: c.reason,
                            // Disabled until cleared: no time (DESIGN §6 `null | <ms>`).
                            until: c.until.filter(|&u| u != crate::auth::cooldown::FOREVER),
                            fingerprint: c.fingerprint().map(str::to_string),
                        })
                        .collect(),
                })
                .collect(),
            missing_providers_in_use: missing.clone(),
            probes: probes.clone(),
        };
        println!("{}", crate::cli::json_text(&out, true)?);
    } else if args.plain {
        for r in probes.iter().flatten() {
            println!(
                "probe\t{}\t{}\t{}\t{}",
                r.provider,
                r.id,
                r.outcome,
                r.latency_ms
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        for (p, _, _, res) in &providers {
            for c in &res.candidates {
                println!(
                    "{p}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.id,
                    kind_str(c.kind),
                    source_str(c.source),
                    health_str(c.health),
                    c.reason.unwrap_or("-"),
                    c.until
                        .filter(|&u| u != crate::auth::cooldown::FOREVER)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.fingerprint().unwrap_or("-")
                );
            }
        }
    } else {
        let store = Some(app.engine.resolver.store());
        println!(
            "Config:        {} ({})",
            app.config_path.display(),
            if app.config_exists {
                "found"
            } else {
                "not found: defaults"
            }
        );
        println!("Agent:         {}", app.agent_id);
        let fallbacks: Vec<String> = catalog.fallbacks.iter().map(ToString::to_string).collect();
        println!(
            "Default model: {}{}",
            catalog.default,
            if fallbacks.is_empty() {
                String::new()
            } else {
                format!(" (fallbacks: {})", fallbacks.join(", "))
            }
        );
        if !catalog.aliases.is_empty() {
            let aliases: Vec<String> = catalog
                .aliases
                .iter()
                .map(|(a, m)| format!("{a} → {m}"))
                .collect();
            println!("Aliases:       {}", aliases.join(", "));
        }
        println!(
            "Shell env:     {}",
            match &app.shell_env {
                ShellEnvImport::Off => "off".to_string(),
                ShellEnvImport::Imported(n) =>
                    format!("imported from the login shell ({n} variables)"),
                ShellEnvImport::Skipped(why) => format!("not imported: {why}"),
            }
        );
        for w in &order_warnings {
            println!("Warning:       {w}");
        }
        // Tokens used per credential, over every session (DESIGN §10 "Usage").
        let usage = app.usage().by_credential().await.unwrap_or_default();
        for (p, in_use, s, res) in &providers {
            println!();
            let endpoint = s
                .as_ref()
                .map(|s| format!("{} ({})", s.base_url, s.api.as_str()))
                .unwrap_or_else(|| "not configured".into());
            println!(
                "{p}{}  {endpoint}",
                if *in_use { "" } else { " (not in use)" }
            );
            if res.candidates.is_empty() {
                println!(
                    "  no credentials — set {} or run `remoteclaw onboard`",
                    crate::auth::env_keys::primary_env_var(p)
                );
            }
            for (line, c) in candidate_lines(res, now).into_iter().zip(&res.candidates) {
                println!("{line}");
                if let Some(f) = oauth::OauthFacts::of(c, p, store.as_deref(), &app.config()) {
                    println!("      {}", oauth::note(&f, now));
                }
                if let Some(u) = usage.get(&*c.id) {
                    println!(
                        "      used {} input and {} output tokens",
                        u.input_tokens, u.output_tokens
                    );
                }
            }
        }
        if !missing.is_empty() {
            println!();
            println!(
                "Providers in use without a usable credential: {}",
                missing.join(", ")
            );
        }
        if let Some(probes) = &probes {
            println!();
            println!("Probes (1 output token each):");
            for r in probes {
                let latency = r
                    .latency_ms
                    .map(|l| format!("{l} ms"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "  {:<12} {:<28} {:<10} {:>8}  {}",
                    r.provider,
                    r.id,
                    r.outcome,
                    latency,
                    r.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(if profiles_problem.is_some() {
        ExitCode::FAILURE
    } else if args.check {
        ExitCode::from(level)
    } else {
        ExitCode::SUCCESS
    })
}
