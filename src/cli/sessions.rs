//! `remoteclaw sessions list [--json] | show KEY [--json] | reset KEY [--all]`: what the
//! state store holds about each chat session.

use crate::app::App;
use crate::chat::views::age;
use crate::config::env::EnvMap;
use crate::session::{Pin, SessionState, SessionSummary, key};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List stored sessions, most recently used first.
    List {
        /// Print JSON (field names are stable).
        #[arg(long)]
        json: bool,
    },
    /// Show one session: model, pin, history length.
    Show {
        key: String,
        /// Print JSON (field names are stable).
        #[arg(long)]
        json: bool,
    },
    /// Start a fresh conversation in a session (keeps model and pin, like /reset).
    Reset {
        key: String,
        /// Also clear the model choice and the pin.
        #[arg(long)]
        all: bool,
    },
}

/// `sessions show --json` (field names are a stable contract).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionJson {
    pub key: String,
    pub model: String,
    pub model_source: &'static str,
    pub pin: Option<Pin>,
    pub history_length: usize,
    /// Tokens used by the session, over every credential.
    pub usage: crate::usage::Totals,
}

async fn to_json(app: &App, s: &SessionSummary) -> SessionJson {
    let state = SessionState::with_choice(s.model.clone(), s.pin.clone());
    let (model, chosen) = crate::chat::views::effective_model(app, &state);
    SessionJson {
        key: s.key.clone(),
        model: model.to_string(),
        model_source: if chosen { "session" } else { "default" },
        pin: s.pin.clone(),
        history_length: s.history_len,
        usage: app
            .usage()
            .session(&s.key)
            .await
            .map(|(t, _)| t)
            .unwrap_or_default(),
    }
}

/// `updated_at` of a session that has usage but no stored record.
const NEVER: i64 = i64::MIN;

async fn find(app: &App, wanted: &str) -> anyhow::Result<Option<SessionSummary>> {
    Ok(app.sessions.store().summary(wanted).await?)
}

pub async fn run(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(EnvMap::from_process(), None).await?;
    let now = app.clock.now_ms();
    match args.command {
        SessionsCommand::List { json } => {
            let all = app.sessions.store().list().await?;
            if json {
                let mut out: Vec<SessionJson> = Vec::with_capacity(all.len());
                for s in &all {
                    out.push(to_json(&app, s).await);
                }
                println!("{}", crate::cli::json_text(&out, true)?);
            } else if all.is_empty() {
                println!("No sessions yet. A session is created by its first message.");
            } else {
                for s in &all {
                    let j = to_json(&app, s).await;
                    let pin = j
                        .pin
                        .as_ref()
                        .map(|p| format!("  pin {}", p.profile))
                        .unwrap_or_default();
                    println!(
                        "{}  {} ({}){pin}  {} messages  {}",
                        j.key,
                        j.model,
                        j.model_source,
                        j.history_length,
                        age(s.updated_at, now)
                    );
                }
            }
        }
        SessionsCommand::Show { key: k, json } => {
            key::validate(&k).map_err(anyhow::Error::msg)?;
            let s = match find(&app, &k).await? {
                Some(s) => s,
                // A session used only through `/v1/chat/completions` (its client keeps
                // the conversation) has usage but nothing else stored: shown as such.
                None if app
                    .usage()
                    .session(&k)
                    .await
                    .is_ok_and(|(_, turns)| turns > 0) =>
                {
                    SessionSummary {
                        key: k.clone(),
                        model: None,
                        pin: None,
                        history_len: 0,
                        updated_at: NEVER,
                    }
                }
                None => {
                    crate::cli::say(
                        crate::cli::Say::Error,
                        format_args!(
                            "no session \"{k}\" in {}. `remoteclaw sessions list` shows the stored ones.",
                            app.paths.state_db().display()
                        ),
                    );
                    return Ok(ExitCode::FAILURE);
                }
            };
            let j = to_json(&app, &s).await;
            if json {
                println!("{}", crate::cli::json_text(&j, true)?);
            } else {
                println!("Session {}", j.key);
                println!("  model:   {} ({})", j.model, j.model_source);
                match &j.pin {
                    Some(p) => println!(
                        "  pin:     {} (set by {}, {})",
                        p.profile,
                        p.source.as_str(),
                        age(p.since, now)
                    ),
                    None => println!("  pin:     none"),
                }
                println!("  history: {} messages", j.history_length);
                println!(
                    "  usage:   {} input, {} output tokens",
                    j.usage.input_tokens, j.usage.output_tokens
                );
                if s.updated_at != NEVER {
                    println!("  updated: {}", age(s.updated_at, now));
                }
            }
        }
        SessionsCommand::Reset { key: k, all } => {
            key::validate(&k).map_err(anyhow::Error::msg)?;
            if find(&app, &k).await?.is_none() {
                crate::cli::say(
                    crate::cli::Say::Error,
                    format_args!(
                        "no session \"{k}\". `remoteclaw sessions list` shows the stored ones."
                    ),
                );
                return Ok(ExitCode::FAILURE);
            }
            let store = app.sessions.store();
            store.clear_history(&k, now).await?;
            if all {
                store.set_choice(&k, None, None, now).await?;
                println!("Session {k}: conversation, model choice and pin cleared.");
            } else {
                println!(
                    "Session {k}: conversation cleared (model and pin kept; --all clears them too)."
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
