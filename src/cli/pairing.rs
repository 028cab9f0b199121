//! remoteclaw pairing (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct PairingArgs {}

pub async fn run(_args: PairingArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
