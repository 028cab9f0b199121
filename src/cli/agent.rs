//! `remoteclaw agent --message TEXT [--session KEY] [--agent ID] [--json]`: one turn,
//! printed as text or as the stable JSON object of DESIGN §6.

use crate::app::App;
use crate::config::env::EnvMap;
use crate::conversation::converse;
use crate::engine::{Attempt, TurnResult};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The message to send.
    #[arg(long, short)]
    pub message: String,
    /// Session key.
    #[arg(long, default_value = "local:default")]
    pub session: String,
    /// Agent whose credentials to use (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
    /// Print one JSON object instead of the reply text.
    #[arg(long)]
    pub json: bool,
}

/// `agent --json` output (field names are a stable contract).
#[derive(Debug, Serialize)]
pub struct AgentJson<'a> {
    pub reply: &'a str,
    pub session: &'a str,
    pub model: String,
    pub credential: Option<&'a str>,
    pub attempts: &'a [Attempt],
    pub directive: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<'a> AgentJson<'a> {
    pub fn new(session: &'a str, r: &'a TurnResult) -> Self {
        AgentJson {
            reply: &r.reply,
            session,
            model: r.model.to_string(),
            credential: r.credential.as_deref(),
            attempts: &r.attempts,
            directive: None,
            error: r.error.as_ref().map(ToString::to_string),
        }
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    super::check_session_key(&args.session)?;
    if args.message.trim().is_empty() {
        anyhow::bail!("--message is empty: give the text to send, e.g. --message \"hello\"");
    }
    let app = App::load(EnvMap::from_process(), args.agent.as_deref()).await?;
    let result = if args.json {
        converse(&app, &args.session, &args.message, None).await
    } else {
        let mut stdout = std::io::stdout();
        let mut sink = |d: &str| {
            let _ = stdout.write_all(d.as_bytes());
            let _ = stdout.flush();
        };
        let r = converse(&app, &args.session, &args.message, Some(&mut sink)).await;
        if r.error.is_none() {
            println!();
        }
        r
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&AgentJson::new(&args.session, &result))?
        );
    } else if let Some(e) = &result.error {
        eprintln!("error: {e}");
    }
    Ok(if result.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
