//! remoteclaw models list (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ListArgs {}

pub async fn run(_args: ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
