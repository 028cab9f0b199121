//! remoteclaw onboard (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct OnboardArgs {}

pub async fn run(_args: OnboardArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
