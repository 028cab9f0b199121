//! `remoteclaw models auth …`.

mod cooldown;

use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// List or clear credential cooldowns.
    Cooldown(cooldown::CooldownArgs),
}

pub async fn run(args: AuthArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuthCommand::Cooldown(a) => cooldown::run(a).await,
    }
}
