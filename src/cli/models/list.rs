//! `remoteclaw models list [--json]`: the model catalog — default model, fallbacks,
//! allowlisted models with their aliases, and the providers a model may name.

use crate::app::App;
use crate::config::env::EnvMap;
use crate::providers::ProviderSettings;
use clap::Args;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelJson {
    model: String,
    alias: Option<String>,
    default: bool,
    fallback: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderJson {
    provider: String,
    base_url: Option<String>,
    api: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListJson {
    default_model: String,
    fallbacks: Vec<String>,
    /// True when `agents.defaults.models` restricts the choice.
    allowlist: bool,
    models: Vec<ModelJson>,
    providers: Vec<ProviderJson>,
}

pub async fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(EnvMap::from_process(), None).await?;
    let catalog = &app.engine.catalog();
    let mut refs: Vec<crate::catalog::ModelRef> = catalog.allowed.keys().cloned().collect();
    for m in std::iter::once(&catalog.default).chain(&catalog.fallbacks) {
        if !refs.contains(m) {
            refs.push(m.clone());
        }
    }
    refs.sort();
    let models: Vec<ModelJson> = refs
        .iter()
        .map(|m| ModelJson {
            model: m.to_string(),
            alias: catalog.alias_of(m).map(str::to_string),
            default: *m == catalog.default,
            fallback: catalog.fallbacks.contains(m),
        })
        .collect();
    let providers: Vec<ProviderJson> = catalog
        .providers
        .iter()
        .map(|p| {
            let s = ProviderSettings::resolve(&app.config(), p);
            ProviderJson {
                provider: p.clone(),
                base_url: s.as_ref().map(|s| s.base_url.clone()),
                api: s.as_ref().map(|s| s.api.as_str()),
            }
        })
        .collect();
    let out = ListJson {
        default_model: catalog.default.to_string(),
        fallbacks: catalog.fallbacks.iter().map(ToString::to_string).collect(),
        allowlist: !catalog.allowed.is_empty(),
        models,
        providers,
    };
    if args.json {
        println!("{}", crate::cli::json_text(&out, true)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Models{}:", if out.allowlist { " (allowlist)" } else { "" });
    for m in &out.models {
        let mut tags = Vec::new();
        if m.default {
            tags.push("default");
        }
        if m.fallback {
            tags.push("fallback");
        }
        let alias = m
            .alias
            .as_ref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" — {}", tags.join(", "))
        };
        println!("  {}{alias}{tags}", m.model);
    }
    if !out.allowlist {
        println!("Any other provider/model may be chosen with /model provider/model.");
    }
    println!("Providers:");
    for p in &out.providers {
        let endpoint = match (&p.base_url, p.api) {
            (Some(u), Some(a)) => format!("{u} ({a})"),
            _ => "not configured".into(),
        };
        println!("  {:<12} {endpoint}", p.provider);
    }
    Ok(ExitCode::SUCCESS)
}
