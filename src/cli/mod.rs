//! The `remoteclaw` command line (clap): one file per subcommand, each a function that
//! takes its arguments and returns an exit code. `anyhow` lives only here and in main.

mod agent;
mod chat;
mod completions;
mod doctor;
mod gateway;
mod import;
mod models;
mod onboard;
mod pairing;
mod service;
mod sessions;
mod state;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "remoteclaw",
    version,
    about = "Chat with LLMs from Discord, Telegram, a web chat and the terminal",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: HTTP API, web chat and every enabled channel (or install it as a
    /// user service: `gateway install | uninstall | status`).
    Gateway(gateway::GatewayArgs),
    /// Chat in the terminal (same pipeline as the channels).
    Chat(chat::ChatArgs),
    /// Run one turn and print the reply (scriptable with --json).
    Agent(agent::AgentArgs),
    /// Model credentials: status and management.
    Models(models::ModelsArgs),
    /// Inspect and reset chat sessions.
    Sessions(sessions::SessionsArgs),
    /// Check config, files, permissions and credentials; --fix repairs what it safely can.
    Doctor(doctor::DoctorArgs),
    /// Set up a provider key, chat channels and owners, step by step (or with flags).
    Onboard(onboard::OnboardArgs),
    /// List and approve pairing requests from chat users.
    Pairing(pairing::PairingArgs),
    /// The state store: copy state.db into Redis (`state migrate --to redis`).
    State(state::StateArgs),
    /// Import another system's install (OpenClaw) into RemoteClaw's files.
    Import(import::ImportArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
}

/// Parse arguments, run, map to an exit code.
/// JSON for the terminal: `serde_json` leaves C1 control characters (U+0080–U+009F,
/// e.g. U+009B, a CSI on some terminals) and other non-ASCII controls unescaped; this
/// writes every control character other than the layout's newlines as `\uXXXX`. The
/// value a parser reads back is unchanged.
pub fn json_text(v: &impl serde::Serialize, pretty: bool) -> serde_json::Result<String> {
    let text = if pretty {
        serde_json::to_string_pretty(v)?
    } else {
        serde_json::to_string(v)?
    };
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `remoteclaw models status | head -1`: once the reader is gone, a print fails with
/// EPIPE and Rust's `println!` panics. That is the reader's choice, not an error: end
/// quietly with status 0 (as ripgrep does) instead of a panic and a backtrace. Any
/// other panic still goes to the default hook.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

pub fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error in JSON log mode is one JSON line too; help and version print
        // as usual (on stdout).
        Err(e) if json_logs() && e.use_stderr() => {
            init_logging("warn");
            say(Say::Bare, e.render().to_string().trim_end());
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        Err(e) => e.exit(),
    };
    let default_level = match cli.command {
        Command::Gateway(ref g) if g.command.is_none() => "info",
        _ => "warn",
    };
    init_logging(default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(
                Say::Error,
                format_args!("cannot start the async runtime: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Gateway(args) => gateway::run(args).await,
            Command::Chat(args) => chat::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Sessions(args) => sessions::run(args).await,
            Command::Models(args) => models::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Onboard(args) => onboard::run(args).await,
            Command::Pairing(args) => pairing::run(args).await,
            Command::State(args) => state::run(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Completions(args) => completions::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        // The reader went away (`remoteclaw … | head`): nothing left to tell anyone.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if json_logs() => {
            // Every stderr line is one JSON object in this mode, the last one too.
            let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
            if causes.is_empty() {
                tracing::error!(target: SAY, "{e}");
            } else {
                tracing::error!(target: SAY, caused_by = %causes.join("; "), "{e}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a closed pipe.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What a message to the person running a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// `error: …`
    Error,
    /// `warning: …`
    Warning,
    /// `note: …`
    Note,
    /// An error whose text says all (a turn's error reply): shown without a prefix.
    Bare,
}

/// A message for the person running the command, on stderr: `error: …`, `warning: …` or
/// `note: …` as text, or, with `REMOTECLAW_LOG_FORMAT=json`, one JSON line like every
/// other stderr line in that mode (DESIGN §11). Notes are logged at WARN there, so the
/// default filter of the CLI commands keeps them.
pub fn say(kind: Say, msg: impl std::fmt::Display) {
    if json_logs() {
        match kind {
            Say::Error | Say::Bare => tracing::error!(target: SAY, "{msg}"),
            Say::Warning | Say::Note => tracing::warn!(target: SAY, "{msg}"),
        }
        return;
    }
    match kind {
        Say::Error => eprintln!("error: {msg}"),
        Say::Warning => eprintln!("warning: {msg}"),
        Say::Note => eprintln!("note: {msg}"),
        Say::Bare => eprintln!("{msg}"),
    }
}

/// The log target of messages for the person running a command (and the final
/// error): always shown, whatever `RUST_LOG` filters out.
const SAY: &str = "remoteclaw::cli::say";

/// `REMOTECLAW_LOG_FORMAT=json`: logs (and the final error) as JSON lines on stderr.
fn json_logs() -> bool {
    std::env::var("REMOTECLAW_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

/// Logs on stderr, filtered by `RUST_LOG`; `REMOTECLAW_LOG_FORMAT=json` writes one JSON
/// object per line (`timestamp`, `level`, `target`, `fields.message`, DESIGN §11).
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // What `say` tells the person running the command is not a log to filter.
    let filter = match format!("{SAY}=trace").parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json_logs() {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
