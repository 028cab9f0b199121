//! remoteclaw models auth paste-token (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct PasteTokenArgs {}

pub async fn run(_args: PasteTokenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
