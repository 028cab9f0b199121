//! remoteclaw doctor (being written).

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub async fn run(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command is being written")
}
