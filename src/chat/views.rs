//! The texts `/model`, `/model list` and `/model status` answer with. They name
//! credentials by id and fingerprint, never by value.

use crate::app::App;
use crate::auth::resolver::{health_str, lasts_text};
use crate::auth::{CredentialKind, CredentialSource, Resolution};
use crate::catalog::ModelRef;
use crate::providers::ProviderSettings;
use crate::session::{Pin, SessionState};
use std::fmt::Write;

/// "3m ago"-style age of an epoch-ms instant.
pub fn age(since_ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - since_ms).max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// The model a session uses: its own choice if still allowed, else the default.
pub fn effective_model(app: &App, state: &SessionState) -> (ModelRef, bool) {
    match state
        .model
        .as_deref()
        .map(|m| app.engine.catalog().resolve(m))
    {
        Some(Ok(m)) => (m, true),
        _ => (app.engine.catalog().default.clone(), false),
    }
}

fn model_label(app: &App, m: &ModelRef) -> String {
    match app.engine.catalog().alias_of(m) {
        Some(a) => format!("{m} ({a})"),
        None => m.to_string(),
    }
}

fn pin_line(pin: &Option<Pin>, now: i64) -> String {
    match pin {
        Some(p) => format!(
            "Pinned credential: {} (set by {}, {})",
            p.profile,
            p.source.as_str(),
            age(p.since, now)
        ),
        None => "Credential: automatic (no pin)".to_string(),
    }
}

/// `/model`: the compact view.
pub fn compact(app: &App, state: &SessionState, now: i64) -> String {
    let (model, chosen) = effective_model(app, state);
    format!(
        "Model: {}{}\n{}\nSwitch: /model <alias-or-id> · pin: /model <model>@<profileId> · choices: /model list · details: /model status",
        model_label(app, &model),
        if chosen { "" } else { " (default)" },
        pin_line(&state.pin, now),
    )
}

/// `/model list`: what the session may choose.
pub fn list(app: &App, state: &SessionState) -> String {
    let catalog = &app.engine.catalog();
    let (current, _) = effective_model(app, state);
    let mut models: Vec<ModelRef> = catalog.allowed.keys().cloned().collect();
    for m in std::iter::once(&catalog.default).chain(&catalog.fallbacks) {
        if !models.contains(m) {
            models.push(m.clone());
        }
    }
    models.sort();
    let mut out = String::from("Models (/model <name>):\n");
    for m in &models {
        let mut tags = Vec::new();
        if *m == catalog.default {
            tags.push("default");
        }
        if catalog.fallbacks.contains(m) {
            tags.push("fallback");
        }
        if *m == current {
            tags.push("current");
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" — {}", tags.join(", "))
        };
        let _ = writeln!(out, "  {}{tags}", model_label(app, m));
    }
    if catalog.allowed.is_empty() {
        let providers: Vec<&str> = catalog.providers.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "Any other model works too: /model provider/model (providers: {}).",
            providers.join(", ")
        );
    }
    out.trim_end().to_string()
}

pub fn kind_str(k: CredentialKind) -> &'static str {
    match k {
        CredentialKind::ApiKey => "api_key",
        CredentialKind::Token => "token",
        CredentialKind::Oauth => "oauth",
    }
}

pub fn source_str(s: CredentialSource) -> &'static str {
    match s {
        CredentialSource::Profile => "profile",
        CredentialSource::Env => "env",
        CredentialSource::Config => "config",
        CredentialSource::Ref => "ref",
    }
}

/// One line per candidate, in resolution order, the next one marked `→`: id, kind,
/// source, health (reason, until), fingerprint and where the secret comes from. Shared by
/// `/model status` and `remoteclaw models status`.
pub fn candidate_lines(res: &Resolution, now: i64) -> Vec<String> {
    let next = res.next().map(|c| c.id.clone());
    res.candidates
        .iter()
        .map(|c| {
            let mut line = format!(
                "  {} {:<28} {:<8} {:<8} {}",
                if Some(&c.id) == next.as_ref() {
                    "→"
                } else {
                    " "
                },
                c.id,
                kind_str(c.kind),
                source_str(c.source),
                health_str(c.health)
            );
            if let Some(r) = c.reason {
                let _ = write!(line, " ({r})");
            }
            if let Some(u) = c.until {
                let _ = write!(line, " {}", lasts_text(c.reason, u, &res.provider, now));
            }
            if let Some(fp) = c.fingerprint() {
                let _ = write!(line, "  fp {fp}");
            }
            if let Some(d) = &c.detail {
                let _ = write!(line, "  [{d}]");
            }
            line
        })
        .collect()
}

/// `/model status`: the full view.
pub async fn status(app: &App, state: &SessionState, now: i64, agent: Option<&str>) -> String {
    let catalog = &app.engine.catalog();
    let (model, chosen) = effective_model(app, state);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Model: {} ({}); default {}",
        model_label(app, &model),
        if chosen {
            "chosen for this session"
        } else {
            "default"
        },
        model_label(app, &catalog.default)
    );
    let _ = writeln!(out, "{}", pin_line(&state.pin, now));
    if state.pin.is_some() {
        let _ = writeln!(
            out,
            "  unpin with /model default, or /model <model> without @profile"
        );
    }
    match ProviderSettings::resolve(&app.config(), &model.provider) {
        Some(s) => {
            let _ = writeln!(
                out,
                "Provider {}: {} ({})",
                s.id,
                s.base_url,
                s.api.as_str()
            );
        }
        None => {
            let _ = writeln!(out, "Provider {}: not configured", model.provider);
        }
    }
    let pin = state.pin.as_ref().map(|p| p.profile.as_str());
    match app
        .engine
        .resolver_for(agent)
        .resolve(&model.provider, &model.to_string(), pin)
        .await
    {
        Ok(res) if res.candidates.is_empty() => {
            let _ = writeln!(
                out,
                "Credentials: none — set {} or run `remoteclaw onboard`",
                crate::auth::env_keys::primary_env_var(&model.provider)
            );
        }
        Ok(res) => {
            let _ = writeln!(out, "Credentials in order (→ next):");
            for line in candidate_lines(&res, now) {
                let _ = writeln!(out, "{line}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Credentials: {e}");
        }
    }
    out.trim_end().to_string()
}
