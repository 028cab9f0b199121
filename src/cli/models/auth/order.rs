//! remoteclaw models auth order get|set|clear (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct OrderArgs {}

pub async fn run(_args: OrderArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
