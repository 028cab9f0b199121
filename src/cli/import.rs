//! `remoteclaw import openclaw [--from DIR] [--dry-run]` (DESIGN §11 "Migration"): turn an
//! OpenClaw install (openclaw.json and each agent's auth-profiles.json) into
//! `remoteclaw.toml` and per-agent `auth-profiles.json`. Everything is converted and
//! checked (the config must load, each credentials file must read) before anything is
//! written; an existing file is renamed to `<name>.bak` (`.bak.N` when taken) first.
//! Keys that could not be carried over are listed by full key path. Secrets are never
//! printed: `--dry-run` shows the files with them as `<redacted>`.

mod agents;
mod channels;
mod convert;
mod discord;
mod profiles;
mod source;
mod toml_out;
mod walk;

use crate::auth::profile_writer;
use crate::auth::profiles::ProfileStore;
use crate::config::env::{EnvMap, load_env_file};
use crate::config::paths::{Paths, ensure_private_dir};
use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Debug, Subcommand)]
pub enum ImportFrom {
    /// Convert an OpenClaw install: models, aliases, fallbacks, auth profiles and order,
    /// Telegram/Discord tokens, allowlists and owners.
    Openclaw(OpenclawArgs),
}

#[derive(Debug, Args)]
pub struct OpenclawArgs {
    /// The OpenClaw state directory (holds openclaw.json and agents/). Default:
    /// $OPENCLAW_STATE_DIR, else ~/.openclaw.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Print the files that would be written (secrets as <redacted>) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One file the import writes.
struct Planned {
    path: PathBuf,
    /// The full content.
    text: String,
    /// The content as shown by `--dry-run` (secrets redacted).
    shown: String,
    /// For credentials files: the document, written through the profile writer.
    profiles: Option<(Value, usize)>,
}

/// The whole import, decided before anything is written.
struct Plan {
    source_dir: PathBuf,
    files: Vec<Planned>,
    skipped: Vec<String>,
    notes: Vec<String>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let ImportFrom::Openclaw(args) = args.from;
    let env = EnvMap::from_process();
    // File reads, renames and fsyncs: off the async workers.
    let lines = tokio::task::spawn_blocking(move || import_openclaw(env, &args))
        .await
        .map_err(|e| anyhow!("the import stopped unexpectedly: {e}"))??;
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn import_openclaw(mut env: EnvMap, args: &OpenclawArgs) -> anyhow::Result<Vec<String>> {
    let from = match &args.from {
        Some(dir) => dir.clone(),
        None => match env.get_nonblank("OPENCLAW_STATE_DIR") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(env.get_nonblank("HOME").ok_or_else(|| {
                anyhow!("HOME is not set: name the OpenClaw directory with --from DIR")
            })?)
            .join(".openclaw"),
        },
    };
    let paths = Paths::from_env(&env)?;
    load_env_file(&paths.env_file(), &mut env)?;
    let paths = paths.refresh_config_path(&env);
    let plan = plan(&paths, &source::read(&from)?)?;
    if args.dry_run {
        return Ok(dry_run_report(&plan));
    }
    write(&paths, plan)
}

fn plan(paths: &Paths, src: &source::Source) -> anyhow::Result<Plan> {
    let converted = convert::convert(&src.config);
    let mut skipped = converted.skipped;
    let text = converted.doc.to_string();
    // Never write a config RemoteClaw itself would refuse.
    crate::config::parse(&paths.config_path, &text)
        .map_err(|e| anyhow!("the converted config would not load ({e}); nothing was written"))?;
    let mut files = vec![Planned {
        path: paths.config_path.clone(),
        shown: profiles::redact_toml(&converted.doc),
        text,
        profiles: None,
    }];
    for file in &src.unusable_agents {
        skipped.push(file.clone());
    }
    for agent in &src.agents {
        let Some(doc) = profiles::convert(&agent.doc, &agent.file, &mut skipped) else {
            skipped.push(agent.file.clone());
            continue;
        };
        let path = paths.auth_profiles(&agent.id);
        let text = serde_json::to_string_pretty(&doc)?;
        ProfileStore::parse(&path, &text).map_err(|_| {
            anyhow!(
                "{} would not be readable after conversion; nothing was written",
                src.dir.join(&agent.file).display()
            )
        })?;
        let count = doc["profiles"].as_object().map_or(0, |p| p.len());
        files.push(Planned {
            path,
            shown: serde_json::to_string_pretty(&profiles::redact(&doc))?,
            text,
            profiles: Some((doc, count)),
        });
    }
    let mut notes = Vec::new();
    if !src.agents.iter().any(|a| a.id == converted.default_agent) {
        notes.push(format!(
            "Note: the default agent \"{}\" has no auth-profiles.json in {}; its turns use environment keys until you add credentials (remoteclaw models auth paste-token --provider P).",
            converted.default_agent,
            src.dir.display()
        ));
    }
    if let Some(env) = &src.env_file {
        notes.push(format!(
            "Note: {} was not copied: variables that the config names as ${{VAR}} must be set in {} or in the environment.",
            env.display(),
            paths.env_file().display()
        ));
    }
    Ok(Plan {
        source_dir: src.dir.clone(),
        files,
        skipped: skipped.0,
        notes,
    })
}

/// `<name>.bak`, else `<name>.bak.1`, `.bak.2`, … : the first name not taken.
fn backup_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let taken = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let first = path.with_file_name(format!("{name}.bak"));
    if !taken(&first) {
        return first;
    }
    (1u64..)
        .map(|n| path.with_file_name(format!("{name}.bak.{n}")))
        .find(|p| !taken(p))
        .unwrap_or(first)
}

/// Rename an existing file out of the way; the backup's path when there was one.
fn back_up(path: &Path) -> anyhow::Result<Option<PathBuf>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let bak = backup_path(path);
    std::fs::rename(path, &bak).with_context(|| {
        format!(
            "cannot rename {} to {}; nothing more was written",
            path.display(),
            bak.display()
        )
    })?;
    Ok(Some(bak))
}

fn write(paths: &Paths, plan: Plan) -> anyhow::Result<Vec<String>> {
    let mut out = vec![format!(
        "Imported OpenClaw from {}.",
        plan.source_dir.display()
    )];
    ensure_private_dir(&paths.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            paths.state_dir.display()
        )
    })?;
    for file in plan.files {
        // A file that is a symbolic link is backed up and replaced where it points, so
        // the link (and every other link to that file) stays.
        let target = crate::config::paths::write_target(&file.path)?;
        let backup = match &file.profiles {
            None => {
                if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                    ensure_private_dir(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let backup = back_up(&target)?;
                crate::config::edit::write_atomic(&target, file.text.as_bytes())
                    .with_context(|| format!("cannot write {}", file.path.display()))?;
                out.push(format!("Wrote {}.", file.path.display()));
                backup
            }
            Some((doc, count)) => {
                // Under the credentials lock: no other writer slips in between the
                // rename and the new file.
                let held = profile_writer::hold(&target)?;
                let backup = back_up(&target)?;
                let doc = doc.clone();
                held.update(move |d| {
                    *d = doc;
                    Ok(())
                })?;
                out.push(format!(
                    "Wrote {} ({count} profile{}).",
                    file.path.display(),
                    if *count == 1 { "" } else { "s" }
                ));
                backup
            }
        };
        if let Some(bak) = backup {
            out.push(format!(
                "Backed up the previous {} to {}.",
                file.path.display(),
                bak.display()
            ));
        }
    }
    out.extend(skipped_report(&plan.skipped));
    out.extend(plan.notes);
    out.push(String::new());
    out.push(
        "Next: remoteclaw models status --check   # are the imported credentials usable?".into(),
    );
    out.push("      remoteclaw doctor                  # config, files and permissions".into());
    Ok(out)
}

fn skipped_report(skipped: &[String]) -> Vec<String> {
    if skipped.is_empty() {
        return vec!["Not carried over: nothing (every key was converted).".into()];
    }
    let mut out = vec!["Not carried over:".to_string()];
    out.extend(skipped.iter().cloned());
    out
}

fn dry_run_report(plan: &Plan) -> Vec<String> {
    let mut out = vec![
        format!(
            "Dry run: importing OpenClaw from {}. Nothing was written.",
            plan.source_dir.display()
        ),
        "Secret values (tokens, keys) are shown as <redacted>.".into(),
    ];
    for file in &plan.files {
        out.push(String::new());
        if std::fs::symlink_metadata(&file.path).is_ok() {
            let target = crate::config::paths::write_target(&file.path)
                .unwrap_or_else(|_| file.path.clone());
            out.push(format!(
                "Would back up {} to {}.",
                file.path.display(),
                backup_path(&target).display()
            ));
        }
        out.push(format!("--- would write {} ---", file.path.display()));
        out.push(file.shown.trim_end().to_string());
    }
    out.push(String::new());
    out.extend(skipped_report(&plan.skipped));
    out.extend(plan.notes.iter().cloned());
    out
}
