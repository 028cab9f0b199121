//! `remoteclaw models auth …`.

mod cooldown;
mod login;
mod order;
mod paste_token;
mod setup_token;

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
    /// Store an Anthropic setup token (`claude setup-token`) as profile anthropic:manual (needs a TTY).
    SetupToken(setup_token::SetupTokenArgs),
    /// Store a token for any provider, read from the TTY without echo or from stdin.
    PasteToken(paste_token::PasteTokenArgs),
    /// Show, set or clear the credential order of a provider.
    Order(order::OrderArgs),
    /// Sign in with the provider's OAuth (browser + PKCE, pasted redirect, or --device).
    Login(login::LoginArgs),
    /// Remove an OAuth sign-in (revoking it when the provider has a revokeUrl).
    Logout(login::LogoutArgs),
}

pub async fn run(args: AuthArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuthCommand::Cooldown(a) => cooldown::run(a).await,
        AuthCommand::SetupToken(a) => setup_token::run(a).await,
        AuthCommand::PasteToken(a) => paste_token::run(a).await,
        AuthCommand::Order(a) => order::run(a).await,
        AuthCommand::Login(a) => login::login(a).await,
        AuthCommand::Logout(a) => login::logout(a).await,
    }
}
