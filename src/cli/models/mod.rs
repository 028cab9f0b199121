//! `remoteclaw models …`: credential status and management.

mod auth;
mod status;

use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Default model, providers, and each credential in resolution order with its health.
    Status(status::StatusArgs),
    /// Manage credentials (cooldowns, …).
    Auth(auth::AuthArgs),
}

pub async fn run(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelsCommand::Status(a) => status::run(a).await,
        ModelsCommand::Auth(a) => auth::run(a).await,
    }
}
