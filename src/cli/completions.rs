//! `remoteclaw completions bash|zsh|fish|powershell|elvish`: shell completions on stdout.
//!
//! Install, e.g.: `remoteclaw completions bash > ~/.local/share/bash-completion/completions/remoteclaw`,
//! `remoteclaw completions zsh > "${fpath[1]}/_remoteclaw"`,
//! `remoteclaw completions fish > ~/.config/fish/completions/remoteclaw.fish`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub async fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    // Render into memory first: `generate` panics when its writer fails (e.g. `| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "remoteclaw", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader went away (`remoteclaw completions bash | head`): not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!("cannot write the completion script: {e}")),
    }
}
