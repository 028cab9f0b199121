//! remoteclaw models auth setup-token (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SetupTokenArgs {}

pub async fn run(_args: SetupTokenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
