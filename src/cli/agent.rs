//! `remoteclaw agent --message TEXT [--session KEY] [--agent ID] [--json]`: one turn,
//! printed as text or as the stable JSON object of DESIGN §6.

use crate::app::App;
use crate::chat::{ChatResult, DirectiveInfo, Inbound, handle};
use crate::config::env::EnvMap;
use crate::engine::Attempt;
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
    pub reply: String,
    pub session: &'a str,
    pub model: String,
    pub credential: Option<&'a str>,
    pub attempts: &'a [Attempt],
    pub directive: Option<&'a DirectiveInfo>,
    /// This turn's tokens (zero when no model was called).
    pub usage: crate::usage::Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<'a> AgentJson<'a> {
    pub fn new(session: &'a str, r: &'a ChatResult) -> Self {
        let turn = r.turn.as_ref();
        AgentJson {
            // A directive-only message answers with the directive's reply, a refusal
            // too (DESIGN §4: errors are replies; the text is in `error` as well).
            reply: match turn {
                Some(t) => t.reply.clone(),
                None => r.notice.clone().unwrap_or_default(),
            },
            session,
            model: r
                .model
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            credential: turn.and_then(|t| t.credential.as_deref()),
            attempts: turn.map(|t| t.attempts.as_slice()).unwrap_or_default(),
            directive: r.directive.as_ref(),
            usage: turn
                .and_then(|t| t.usage)
                .map(crate::usage::Totals::from)
                .unwrap_or_default(),
            error: turn
                .and_then(|t| t.error.as_ref())
                .map(ToString::to_string)
                .or_else(|| r.error.clone()),
        }
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    crate::session::key::validate(&args.session).map_err(anyhow::Error::msg)?;
    if args.message.trim().is_empty() {
        anyhow::bail!("--message is empty: give the text to send, e.g. --message \"hello\"");
    }
    let app = match App::load(EnvMap::from_process(), args.agent.as_deref()).await {
        Ok(app) => app,
        // `--json` prints its object for a turn that could not start too (DESIGN §6:
        // a failed turn still prints it): the config or the state store failed.
        Err(e) if args.json => {
            let failed = ChatResult {
                error: Some(e.to_string()),
                ..ChatResult::default()
            };
            println!(
                "{}",
                crate::cli::json_text(&AgentJson::new(&args.session, &failed), false)?
            );
            crate::cli::say(crate::cli::Say::Error, &e);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    // The operator at the terminal is an owner.
    let msg = Inbound {
        session: &args.session,
        text: &args.message,
        owner: true,
        bot_username: None,
        agent: None,
        system_prompt: None,
        attachments: &[],
        quoted: None,
    };
    let result = if args.json {
        handle(&app, msg, None).await
    } else {
        let mut stdout = std::io::stdout();
        let mut streamed = false;
        let mut sink = |d: &str| {
            streamed = true;
            let _ = stdout.write_all(d.as_bytes());
            let _ = stdout.flush();
        };
        let r = handle(&app, msg, Some(&mut sink)).await;
        if r.turn.is_none() && !r.is_error() {
            println!("{}", r.notice.as_deref().unwrap_or_default());
        } else if streamed && r.turn.as_ref().is_some_and(|t| t.error.is_none()) {
            println!();
        }
        r
    };
    app.settle(std::time::Duration::from_secs(10)).await;
    // A message that never reached a turn (a directive that did not parse) still names
    // the session's model in `--json` (DESIGN §6), not an empty string.
    let mut result = result;
    if result.model.is_none()
        && let Ok(state) = app.sessions.choice(&args.session).await
    {
        result.model = Some(crate::chat::views::effective_model(&app, &state).0);
    }
    if result.ignored {
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        println!(
            "{}",
            crate::cli::json_text(&AgentJson::new(&args.session, &result), false)?
        );
    } else if result.is_error() {
        crate::cli::say(crate::cli::Say::Error, result.reply_text());
    }
    Ok(if result.is_error() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
