//! `remoteclaw models auth order get|set|clear --provider P [--agent ID] [PROFILE_ID...]`:
//! the per-agent auth order (`order[P]` in auth-profiles.json), which comes before
//! `auth.order.P` in the config and the automatic order (DESIGN §5).

use crate::app::App;
use crate::auth::CredentialSource;
use crate::auth::cooldown::ANY_MODEL;
use crate::auth::profile_writer;
use crate::auth::profiles::ProfileStore;
use crate::auth::resolver::health_str;
use crate::catalog::normalize_provider;
use crate::chat::views::kind_str;
use crate::cli::onboard::credentials::Target;
use crate::config::env::EnvMap;
use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct OrderArgs {
    #[command(subcommand)]
    pub command: OrderCommand,
}

#[derive(Debug, Args)]
pub struct OrderTarget {
    /// Provider whose order to show or change.
    #[arg(long, value_name = "P")]
    pub provider: String,
    /// Agent whose credentials to use (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Show the stored order (or the order that applies without one).
    Get {
        #[command(flatten)]
        target: OrderTarget,
        /// {"provider", "agentId", "order": [...] | null}
        #[arg(long)]
        json: bool,
    },
    /// Store the order: these profiles, tried in this order; others of P are not used.
    Set {
        #[command(flatten)]
        target: OrderTarget,
        /// Profile ids of this provider, first tried first.
        #[arg(value_name = "PROFILE_ID", required = true, num_args = 1..)]
        ids: Vec<String>,
    },
    /// Remove the stored order: the configured or automatic order applies again.
    Clear {
        #[command(flatten)]
        target: OrderTarget,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderJson<'a> {
    provider: &'a str,
    agent_id: &'a str,
    order: Option<&'a [String]>,
}

/// A known provider, or one the store already has profiles or an order for (so a
/// provider dropped from the config can still be cleaned up).
fn provider_of(target: &Target, store: &ProfileStore, raw: &str) -> anyhow::Result<String> {
    let p = normalize_provider(raw);
    if store.order.contains_key(&p) || store.for_provider(&p).next().is_some() {
        return Ok(p);
    }
    target.provider(raw)
}

fn profile_list(store: &ProfileStore, provider: &str) -> String {
    let ids = store.ids_in_order(provider, None);
    if ids.is_empty() {
        "none (store one with `remoteclaw models auth paste-token` or `remoteclaw onboard`)".into()
    } else {
        ids.join(", ")
    }
}

/// Why the order that applies without a stored one is what it is.
fn fallback_kind(target: &Target, provider: &str) -> &'static str {
    if target.config.auth.order.contains_key(provider) {
        "configured order (auth.order)"
    } else if target
        .config
        .auth
        .profiles
        .values()
        .any(|d| d.provider == provider)
    {
        "configured order (profiles declared in auth.profiles)"
    } else {
        "automatic order (oauth > token > api_key, least recently used first)"
    }
}

pub async fn run(args: OrderArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        OrderCommand::Get { target, json } => get(target, json).await,
        OrderCommand::Set { target, ids } => set(target, ids),
        OrderCommand::Clear { target } => clear(target),
    }
}

async fn get(args: OrderTarget, json: bool) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let store = target.store()?;
    let provider = provider_of(&target, &store, &args.provider)?;
    let stored = store.order.get(&provider);
    if json {
        let out = OrderJson {
            provider: &provider,
            agent_id: &target.agent_id,
            order: stored.map(Vec::as_slice),
        };
        println!("{}", crate::cli::json_text(&out, true)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(order) = stored {
        println!(
            "Auth order for {provider} (agent {}), stored in {}:",
            target.agent_id,
            target.profiles_path().display()
        );
        if order.is_empty() {
            println!("  (empty: no profile is used; environment and config keys still are)");
        }
        for (i, id) in order.iter().enumerate() {
            let note = match store.profiles.get(id) {
                None => " (not stored: profile_missing)".to_string(),
                Some(p) if p.provider != provider => format!(" (profile is for {})", p.provider),
                Some(_) => String::new(),
            };
            println!("  {}. {id}{note}", i + 1);
        }
        let unlisted: Vec<&str> = store
            .for_provider(&provider)
            .map(|p| p.id.as_str())
            .filter(|id| !order.iter().any(|o| o == id))
            .collect();
        if !unlisted.is_empty() {
            println!("Not in the order (not used): {}", unlisted.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "No order stored for {provider} (agent {}); the {} applies:",
        target.agent_id,
        fallback_kind(&target, &provider)
    );
    let app = App::load(EnvMap::from_process(), Some(&target.agent_id)).await?;
    let res = app
        .engine
        .resolver
        .resolve(&provider, ANY_MODEL, None)
        .await?;
    let profiles: Vec<_> = res
        .candidates
        .iter()
        .filter(|c| {
            c.source == CredentialSource::Profile
                || (c.source == CredentialSource::Ref && !c.id.starts_with("config:"))
        })
        .collect();
    if profiles.is_empty() {
        println!("  (no profiles for {provider})");
    }
    for (i, c) in profiles.iter().enumerate() {
        println!(
            "  {}. {} ({}, {}{})",
            i + 1,
            c.id,
            kind_str(c.kind),
            health_str(c.health),
            c.reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    println!(
        "Store an order with `remoteclaw models auth order set --provider {provider} <PROFILE_ID>...`."
    );
    Ok(ExitCode::SUCCESS)
}

fn set(args: OrderTarget, ids: Vec<String>) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let store = target.store()?;
    let provider = provider_of(&target, &store, &args.provider)?;
    let mut order: Vec<String> = Vec::with_capacity(ids.len());
    for raw in &ids {
        let id = raw.trim();
        match store.profiles.get(id) {
            None => bail!(
                "Auth profile \"{id}\" not found. Profiles for {provider}: {}.",
                profile_list(&store, &provider)
            ),
            Some(p) if p.provider != provider => bail!(
                "Auth profile \"{id}\" is for {}, not {provider}. Profiles for {provider}: {}.",
                p.provider,
                profile_list(&store, &provider)
            ),
            Some(_) => {
                if !order.iter().any(|o| o == id) {
                    order.push(id.to_string());
                }
            }
        }
    }
    let path = target.profiles_path();
    profile_writer::set_order(&path, &provider, Some(order.clone()))?;
    println!(
        "Auth order for {provider} (agent {}) is now: {}.",
        target.agent_id,
        order.join(", ")
    );
    println!("  stored in: {}", path.display());
    let unlisted: Vec<&str> = store
        .for_provider(&provider)
        .map(|p| p.id.as_str())
        .filter(|id| !order.iter().any(|o| o == id))
        .collect();
    if !unlisted.is_empty() {
        println!(
            "Not in the order, so not used: {} (environment and config keys still follow the profiles).",
            unlisted.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn clear(args: OrderTarget) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let store = target.store()?;
    let provider = provider_of(&target, &store, &args.provider)?;
    if !store.order.contains_key(&provider) {
        println!(
            "No order was stored for {provider} (agent {}); nothing changed. The {} applies.",
            target.agent_id,
            fallback_kind(&target, &provider)
        );
        return Ok(ExitCode::SUCCESS);
    }
    profile_writer::set_order(&target.profiles_path(), &provider, None)?;
    println!(
        "Cleared the stored auth order for {provider} (agent {}); the {} applies.",
        target.agent_id,
        fallback_kind(&target, &provider)
    );
    Ok(ExitCode::SUCCESS)
}
