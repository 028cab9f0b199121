//! remoteclaw completions (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompletionsArgs {}

pub async fn run(_args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
