//! `remoteclaw chat`: the terminal channel. Reads lines, streams replies, and exits
//! cleanly on Ctrl-D (end of input), Ctrl-C, `/exit` or `/quit`.

use crate::app::App;
use crate::chat::{Inbound, handle};
use crate::cli::{Say, say};
use crate::config::env::EnvMap;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Session key (history is per session).
    #[arg(long, default_value = "local:default")]
    pub session: String,
    /// Agent whose credentials to use (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

fn prompt(interactive: bool) {
    if interactive {
        let mut err = std::io::stderr();
        let _ = write!(err, "you> ");
        let _ = err.flush();
    }
}

pub async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    crate::session::key::validate(&args.session).map_err(anyhow::Error::msg)?;
    let app = App::load(EnvMap::from_process(), args.agent.as_deref()).await?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "RemoteClaw chat — session {}, model {}. Ctrl-D or /exit to leave.",
            args.session,
            app.engine.catalog().default
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        prompt(interactive);
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = &mut ctrl_c => {
                if interactive {
                    eprintln!();
                }
                break;
            }
        };
        let Some(line) = line else {
            if interactive {
                eprintln!();
            }
            break;
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if matches!(text, "/exit" | "/quit") {
            break;
        }
        let mut stdout = std::io::stdout();
        let mut sink = |d: &str| {
            let _ = stdout.write_all(d.as_bytes());
            let _ = stdout.flush();
        };
        let msg = Inbound {
            session: &args.session,
            text,
            owner: true,
            bot_username: None,
            agent: None,
            system_prompt: None,
            attachments: &[],
            quoted: None,
        };
        let turn = handle(&app, msg, Some(&mut sink));
        let result = tokio::select! {
            r = turn => r,
            _ = &mut ctrl_c => {
                if interactive {
                    eprintln!("\n(interrupted)");
                } else {
                    say(Say::Warning, "interrupted");
                }
                break;
            }
        };
        let turn_failed = result.turn.as_ref().and_then(|t| t.error.as_ref());
        match (&result.turn, turn_failed) {
            (Some(_), None) => println!(),
            (Some(t), Some(e)) => {
                if !t.reply.is_empty() {
                    println!();
                }
                say(Say::Error, e);
            }
            (None, _) if result.is_error() => say(Say::Bare, result.reply_text()),
            (None, _) => println!("{}", result.notice.as_deref().unwrap_or_default()),
        }
    }
    app.settle(std::time::Duration::from_secs(10)).await;
    Ok(ExitCode::SUCCESS)
}
