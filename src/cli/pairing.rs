//! `remoteclaw pairing list [--json] | approve CHANNEL CODE | revoke CHANNEL SENDER`:
//! who asked to talk to the bot on Telegram or Discord, and letting them in (DESIGN §4).

use crate::app::App;
use crate::config::DmPolicy;
use crate::config::env::EnvMap;
use crate::pairing::{PairingEntry, PairingStatus, PairingStore, who};
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

/// Channels that pair senders.
pub const CHANNELS: [&str; 2] = ["telegram", "discord"];

#[derive(Debug, Args)]
pub struct PairingArgs {
    #[command(subcommand)]
    pub command: PairingCommand,
}

#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// Pending requests (with their codes) and approved senders.
    List {
        /// `{"pending": [...], "approved": [...]}`.
        #[arg(long)]
        json: bool,
    },
    /// Let the sender who was shown CODE talk to the bot.
    Approve {
        /// telegram or discord.
        channel: String,
        /// The code the bot showed them (case does not matter).
        code: String,
    },
    /// Withdraw an approval (or drop a pending request) for a sender id.
    Revoke {
        /// telegram or discord.
        channel: String,
        /// The sender's user id, as `pairing list` shows it.
        sender: String,
    },
}

/// `telegram`/`discord` in any case, or an error naming the choices.
pub fn parse_channel(raw: &str) -> anyhow::Result<&'static str> {
    let lower = raw.trim().to_ascii_lowercase();
    CHANNELS
        .iter()
        .find(|c| **c == lower)
        .copied()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "unknown channel \"{raw}\": pairing works with {}",
                CHANNELS.join(" or ")
            )
        })
}

/// `45s`, `12m`, `3h05m`, `2d04h`.
pub(super) fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A note when approvals on `channel` will not take effect with the current config.
fn policy_note(app: &App, channel: &str) -> Option<String> {
    let config = &app.config().channels;
    let (enabled, policy) = match channel {
        "telegram" => config
            .telegram
            .as_ref()
            .map(|t| (t.enabled, t.dm_policy))
            .unwrap_or((false, DmPolicy::Pairing)),
        _ => config
            .discord
            .as_ref()
            .map(|d| (d.enabled, d.dm_policy))
            .unwrap_or((false, DmPolicy::Pairing)),
    };
    let path = app.config_path.display();
    if !enabled {
        return Some(format!(
            "note: [channels.{channel}] is not enabled in {path}; the approval takes effect once it is."
        ));
    }
    let name = match policy {
        DmPolicy::Pairing => return None,
        DmPolicy::Allowlist => "allowlist",
        DmPolicy::Open => "open",
        DmPolicy::Disabled => "disabled",
    };
    Some(format!(
        "note: channels.{channel}.dmPolicy is \"{name}\" in {path}, so pairing approvals are not consulted; set dmPolicy = \"pairing\" to use them."
    ))
}

fn entry_json(e: &PairingEntry) -> serde_json::Value {
    match e.status {
        PairingStatus::Pending => json!({
            "channel": e.channel, "sender": e.sender, "label": e.label, "code": e.code,
            "createdAt": e.created_at, "expiresAt": e.expires_at,
        }),
        PairingStatus::Approved => json!({
            "channel": e.channel, "sender": e.sender, "label": e.label,
            "approvedAt": e.approved_at,
        }),
    }
}

async fn open() -> anyhow::Result<(App, PairingStore)> {
    let app = App::load(EnvMap::from_process(), None).await?;
    let store = app.pairing();
    Ok((app, store))
}

pub async fn run(args: PairingArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PairingCommand::List { json } => list(json).await?,
        PairingCommand::Approve { channel, code } => {
            let channel = parse_channel(&channel)?;
            let (app, store) = open().await?;
            let a = store.approve(channel, &code).await?;
            println!(
                "Approved {} on {channel}: they can message the bot now.",
                who(&a.sender, a.label.as_deref())
            );
            if let Some(note) = policy_note(&app, channel) {
                println!("{note}");
            }
        }
        PairingCommand::Revoke { channel, sender } => {
            let channel = parse_channel(&channel)?;
            let (_app, store) = open().await?;
            let sender = sender.trim();
            if sender.is_empty() {
                anyhow::bail!(
                    "the sender id is empty: give the user id `remoteclaw pairing list` shows"
                );
            }
            let revoked = store.revoke(channel, sender).await?;
            let sender = crate::pairing::printable(sender);
            if revoked {
                println!(
                    "Revoked: {sender} on {channel} can no longer message the bot (unless channels.{channel}.allowFrom lists them)."
                );
            } else {
                println!(
                    "{sender} had no pairing on {channel}; nothing changed. `remoteclaw pairing list` shows who has one."
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(json: bool) -> anyhow::Result<()> {
    let (app, store) = open().await?;
    let now = app.clock.now_ms();
    let entries = store.list().await?;
    let (pending, approved): (Vec<_>, Vec<_>) = entries
        .iter()
        .partition(|e| e.status == PairingStatus::Pending);
    if json {
        let out = json!({
            "pending": pending.iter().map(|e| entry_json(e)).collect::<Vec<_>>(),
            "approved": approved.iter().map(|e| entry_json(e)).collect::<Vec<_>>(),
        });
        println!("{}", crate::cli::json_text(&out, true)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!(
            "No pairing requests or approved senders. When someone unknown messages the bot, it answers with a code; approve it with `remoteclaw pairing approve <channel> <code>`."
        );
        return Ok(());
    }
    if pending.is_empty() {
        println!("No pending requests.");
    } else {
        println!("Pending (approve with `remoteclaw pairing approve <channel> <code>`):");
        for e in &pending {
            println!(
                "  {:<9} {}  {}  asked {} ago, expires in {}",
                e.channel,
                e.code.as_deref().unwrap_or("-"),
                who(&e.sender, e.label.as_deref()),
                span(now - e.created_at),
                span(e.expires_at - now)
            );
        }
    }
    if !approved.is_empty() {
        println!("Approved (undo with `remoteclaw pairing revoke <channel> <sender>`):");
        for e in &approved {
            println!(
                "  {:<9} {}  approved {} ago",
                e.channel,
                who(&e.sender, e.label.as_deref()),
                span(now - e.approved_at.unwrap_or(e.created_at))
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_spans() {
        assert_eq!(parse_channel("Telegram").unwrap(), "telegram");
        assert_eq!(parse_channel("discord").unwrap(), "discord");
        let e = parse_channel("slack").unwrap_err().to_string();
        assert!(e.contains("telegram or discord"), "{e}");
        assert_eq!(span(59_999), "59s");
        assert_eq!(span(3_540_000), "59m");
        assert_eq!(span(3_900_000), "1h05m");
        assert_eq!(span(90_000_000), "1d01h");
        assert_eq!(span(-5), "0s");
    }
}
