//! `remoteclaw doctor [--json] [--fix] [--agent ID]`: check config, files, permissions,
//! credentials, channels and the gateway, and say what to do about each problem.
//!
//! Read-only unless `--fix` is given. `--fix` only changes permission bits (chmod of the
//! files and directories a finding marks as fixable), after copying every file it will
//! touch into `<state>/backups/doctor-<epoch-ms>/`; it never deletes or rewrites a file,
//! and a corrupt auth-profiles.json is never touched at all.
//!
//! Exit status (DESIGN §6): 0 when nothing or only warnings remain, 1 when an error
//! remains (after `--fix`, errors it repaired no longer count).
//!
//! Finding ids are stable (scripts may match on them): `state_dir_*`, `env_file_*`,
//! `config_*`, `agent_invalid`, `auth_dir_permissions`, `auth_profiles_*`, `state_db_*`,
//! `provider_credentials`, `provider_no_credentials`, `credentials_unavailable`,
//! `profile_expired`, `profile_expiring`, `unresolved_ref`, `profile_missing`,
//! `profile_no_secret`, `profile_invalid_expires`, `profile_mode_mismatch`,
//! `profile_provider_mismatch`, `profile_unused`, `oauth_cannot_refresh`, `credential_cooldown`,
//! `credential_disabled`, `shell_env_failed`, `checks_skipped`, `telegram_*`,
//! `discord_*`, `channel_token`, `channels_none`, `pairing_pending`, `gateway_*`,
//! `fix_failed`.
//!
//! No output ever contains a secret: messages name files, keys, profile ids and SecretRef
//! labels; loader messages are scrubbed of quoted values.

mod channels;
mod checks;
mod cooldowns;
mod credentials;
mod files;
mod fix;

use crate::clock::{Clock, SystemClock};
use crate::config::env::EnvMap;
use crate::config::paths::Paths;
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON object: {"ok": bool, "findings": [{"id", "severity", "message", "fix", "fixed"}]}.
    #[arg(long)]
    pub json: bool,
    /// Repair what is safe to repair (permissions), after backing up every file it touches.
    #[arg(long)]
    pub fix: bool,
    /// Agent whose credentials to check (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
    Ok,
}

/// A permission change `--fix` may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub path: PathBuf,
    /// The permission bits to set.
    pub mode: u32,
    pub dir: bool,
}

#[derive(Debug, Clone)]
pub struct Finding {
    /// Stable snake_case code.
    pub id: &'static str,
    pub severity: Severity,
    /// What is wrong (or fine), naming the file or key.
    pub message: String,
    /// What to do about it.
    pub fix: Option<String>,
    /// What `--fix` would change.
    pub repairs: Vec<Repair>,
    /// `--fix` repaired it.
    pub fixed: bool,
    /// What `--fix` did, or why it could not.
    pub note: Option<String>,
}

impl Finding {
    pub fn new(id: &'static str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            id,
            severity,
            message: message.into(),
            fix: None,
            repairs: Vec::new(),
            fixed: false,
            note: None,
        }
    }
    pub fn error(id: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(id, Severity::Error, message)
    }
    pub fn warning(id: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(id, Severity::Warning, message)
    }
    pub fn info(id: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(id, Severity::Info, message)
    }
    pub fn ok(id: &'static str, message: impl Into<String>) -> Finding {
        Finding::new(id, Severity::Ok, message)
    }
    pub fn fix(mut self, text: impl Into<String>) -> Finding {
        self.fix = Some(text.into());
        self
    }
    /// `--fix` may chmod `path` to `mode`.
    pub fn repair(mut self, path: &Path, mode: u32, dir: bool) -> Finding {
        self.repairs.push(Repair {
            path: path.to_path_buf(),
            mode,
            dir,
        });
        self
    }

    /// The fix text, saying when `--fix` does it.
    fn fix_text(&self) -> Option<String> {
        match (&self.fix, self.repairs.is_empty()) {
            (Some(f), false) => Some(format!("{f} (`remoteclaw doctor --fix` does this)")),
            (f, _) => f.clone(),
        }
    }

    /// Still an error after any repair.
    fn is_error(&self) -> bool {
        self.severity == Severity::Error && !self.fixed
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportJson<'a> {
    ok: bool,
    findings: Vec<FindingJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_dir: Option<String>,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    id: &'a str,
    severity: Severity,
    message: &'a str,
    fix: Option<String>,
    fixed: bool,
    fixable: bool,
}

fn marker(f: &Finding) -> &'static str {
    if f.fixed {
        return "✓";
    }
    match f.severity {
        Severity::Error => "✗",
        Severity::Warning => "!",
        Severity::Info => "i",
        Severity::Ok => "✓",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_text(header: &checks::Outcome, fix: bool, backup: Option<&Path>) {
    let findings = &header.findings;
    println!("RemoteClaw doctor");
    println!("  state dir: {}", header.state_dir.display());
    println!("  config:    {}", header.config_path.display());
    println!("  agent:     {}", header.agent_id);
    println!();
    for f in findings {
        println!("{} {}", marker(f), f.message);
        if f.fixed {
            if let Some(n) = &f.note {
                println!("    fixed: {n}");
            }
            continue;
        }
        if let Some(n) = &f.note {
            println!("    not fixed: {n}");
        }
        if let Some(text) = f.fix_text() {
            println!("    fix: {text}");
        }
    }
    println!();
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning && !f.fixed)
        .count();
    let fixed = findings.iter().filter(|f| f.fixed).count();
    let fixable = findings
        .iter()
        .filter(|f| !f.fixed && !f.repairs.is_empty())
        .count();
    if fixed > 0 {
        println!(
            "Fixed {}; copies of the files as they were are in {}.",
            plural(fixed, "problem", "problems"),
            backup.map_or_else(|| "-".into(), |b| b.display().to_string())
        );
    }
    if errors == 0 && warnings == 0 {
        println!("No problems found.");
        println!(
            "Next: start the gateway with `remoteclaw gateway`, or chat with `remoteclaw chat`."
        );
        return;
    }
    println!(
        "{}, {}.",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings")
    );
    if fixable > 0 && !fix {
        println!(
            "Next: `remoteclaw doctor --fix` repairs {fixable} of them (after backing up the files it touches); the rest need the fixes shown above."
        );
    } else if errors > 0 {
        println!("Next: apply the fixes above, then run `remoteclaw doctor` again.");
    } else {
        println!("Next: nothing blocks RemoteClaw; the warnings above are worth a look.");
    }
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let env = EnvMap::from_process();
    let paths = Paths::from_env(&env)?;
    let mut outcome = checks::run_all(paths, env, args.agent.as_deref(), clock.clone()).await;
    let mut backup = None;
    if args.fix {
        match fix::apply(&mut outcome.findings, &outcome.state_dir, clock.now_ms()) {
            Ok(dir) => backup = dir,
            Err(message) => outcome.findings.push(
                Finding::error(
                    "fix_failed",
                    format!("--fix changed nothing: {message}"),
                )
                .fix("fix the problem above (disk space, permissions) and run `remoteclaw doctor --fix` again"),
            ),
        }
    }
    let ok = !outcome.findings.iter().any(Finding::is_error);
    if args.json {
        let report = ReportJson {
            ok,
            findings: outcome
                .findings
                .iter()
                .map(|f| FindingJson {
                    id: f.id,
                    severity: f.severity,
                    message: &f.message,
                    fix: f.fix_text(),
                    fixed: f.fixed,
                    fixable: !f.repairs.is_empty(),
                })
                .collect(),
            backup_dir: backup.as_ref().map(|b| b.display().to_string()),
        };
        println!("{}", crate::cli::json_text(&report, true)?);
    } else {
        print_text(&outcome, args.fix, backup.as_deref());
        if args.fix && backup.is_none() && outcome.findings.iter().all(|f| f.repairs.is_empty()) {
            println!("(--fix: nothing it can repair; no file was changed.)");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
