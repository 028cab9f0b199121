//! `remoteclaw models …`: credential status and management.

mod auth;
mod list;
mod probe;
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
    /// Manage credentials: tokens, order, cooldowns.
    Auth(auth::AuthArgs),
    /// The model catalog: default, fallbacks, allowlist and aliases.
    List(list::ListArgs),
}

pub async fn run(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelsCommand::Status(a) => status::run(a).await,
        ModelsCommand::Auth(a) => auth::run(a).await,
        ModelsCommand::List(a) => list::run(a).await,
    }
}
