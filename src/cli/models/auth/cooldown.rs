//! `remoteclaw models auth cooldown list [--json] | clear [PROFILE_ID] [--agent ID]`.

use crate::app::App;
use crate::auth::resolver::{lasts_text, until_text};
use crate::config::env::EnvMap;
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CooldownArgs {
    #[command(subcommand)]
    pub command: CooldownCommand,
    /// Agent whose state to use (default: agents.defaultId).
    #[arg(long, global = true)]
    pub agent: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CooldownCommand {
    /// Credentials cooling down or disabled now.
    List {
        /// Print JSON (field names are stable).
        #[arg(long)]
        json: bool,
    },
    /// Make a credential (or every credential) usable again.
    Clear {
        /// A profile id or credential id (`env:ANTHROPIC_API_KEY`); all when omitted.
        id: Option<String>,
    },
}

pub async fn run(args: CooldownArgs) -> anyhow::Result<ExitCode> {
    let app = App::load(EnvMap::from_process(), args.agent.as_deref()).await?;
    let book = &app.engine.resolver.cooldowns;
    let now = app.clock.now_ms();
    match args.command {
        CooldownCommand::List { json } => {
            // The book is shared by every agent: list this agent's entries only (all of
            // them when its profiles cannot be read: this is a recovery tool too).
            let all = book.list(now).await?;
            let list = match app.engine.resolver.own_entries(&all).await {
                Ok(mine) => mine,
                Err(e) => {
                    tracing::warn!("listing the entries of every agent, not only this one's: {e}");
                    all
                }
            };
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|e| json!({"id": e.credential, "model": if e.model.is_empty() { None } else { Some(&e.model) }, "reason": e.reason.as_str(), "until": (e.until != crate::auth::cooldown::FOREVER).then_some(e.until), "errorCount": e.error_count}))
                    .collect();
                println!("{}", crate::cli::json_text(&rows, true)?);
            } else if list.is_empty() {
                println!("No credential is cooling down or disabled.");
            } else {
                // A refused refresh lasts until the next sign-in: say how (its provider
                // comes from the stored profile).
                let store = Some(app.engine.resolver.store_async().await);
                for e in &list {
                    let provider = store
                        .as_ref()
                        .and_then(|s| s.profiles.get(&e.credential))
                        .map(|p| p.provider.as_str());
                    let lasts = match (e.reason, provider) {
                        (crate::auth::cooldown::Reason::RefreshFailed, Some(p)) => {
                            lasts_text(Some("refresh_failed"), e.until, p, now)
                        }
                        _ => until_text(e.until, now),
                    };
                    let scope = if e.model.is_empty() {
                        "all models".to_string()
                    } else {
                        e.model.clone()
                    };
                    println!(
                        "{}  {}  {}  {}  ({} error{})",
                        e.credential,
                        e.reason.as_str(),
                        scope,
                        lasts,
                        e.error_count,
                        if e.error_count == 1 { "" } else { "s" }
                    );
                }
            }
        }
        CooldownCommand::Clear { id } => {
            if id.as_deref().is_some_and(|i| i.trim().is_empty()) {
                anyhow::bail!(
                    "the credential id is empty: give one that `cooldown list` shows (e.g. anthropic:work or env:ANTHROPIC_API_KEY), or none to clear every cooldown"
                );
            }
            // Like `list`, this agent's entries only: another agent's profile of the
            // same id (another secret) keeps its state. Every entry when this agent's
            // profiles cannot be read (a recovery tool too). Entries whose time has run
            // out go too: they still count the failures, so the next one would start at
            // a longer step (5 min, not 1 min). The count printed is of the ones in force.
            let listed: Vec<_> = book
                .list(i64::MIN)
                .await?
                .into_iter()
                .filter(|e| id.as_deref().is_none_or(|i| e.credential == i))
                .collect();
            let n = match app.engine.resolver.own_entries(&listed).await {
                Ok(mine) => {
                    book.clear_entries(&mine).await?;
                    mine.iter().filter(|e| e.until > now).count()
                }
                Err(e) => {
                    tracing::warn!("clearing the entries of every agent, not only this one's: {e}");
                    book.clear(id.as_deref()).await?
                }
            };
            // Echoed as typed, control characters escaped (they could drive the terminal).
            let id = id.as_deref().map(crate::pairing::printable);
            match (id, n) {
                (Some(id), 0) => println!("{id} had no cooldown."),
                (Some(id), n) => println!(
                    "Cleared {n} cooldown entr{} of {id}.",
                    if n == 1 { "y" } else { "ies" }
                ),
                (None, n) => println!(
                    "Cleared {n} cooldown entr{}.",
                    if n == 1 { "y" } else { "ies" }
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
