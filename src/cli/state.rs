//! `remoteclaw state migrate --to redis [--dry-run]` (DESIGN §6, §9): copy
//! `<state>/state.db` into the Redis store named by `[session] redisUrl`/`redisUrlRef`
//! and `redisPrefix` (whatever `session.store` says), and print how many records of
//! each kind it holds. Idempotent; `--dry-run` counts but writes nothing (and counts even
//! when Redis cannot be reached); no state.db is an empty state (all counts 0).
//! The reading and writing live in `state::migrate`; this file wires config and output.

use crate::config::env::{EnvMap, import_shell_env, load_env_file};
use crate::config::paths::Paths;
use crate::state::StateDb;
use crate::state::migrate::{Counts, RedisImport, Snapshot};
use crate::state::redis::Redis;
use clap::{Args, Subcommand, ValueEnum};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy state.db (sessions, cooldowns, pairing, offsets, inbox marks, usage) into Redis.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy into.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Count what would be copied; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `{"from", "to", "prefix", "dryRun", "counts": {"sessions": n, …}, "sessionsWritten"}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The server of `[session] redisUrl`/`redisUrlRef`, keys under `redisPrefix`.
    Redis,
}

pub async fn run(args: StateArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StateCommand::Migrate(m) => migrate(m).await,
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let Target::Redis = args.to;
    let mut env = EnvMap::from_process();
    let paths = Paths::from_env(&env)?;
    load_env_file(&paths.env_file(), &mut env)?;
    let paths = paths.refresh_config_path(&env);
    let loaded = crate::config::load(&paths.config_path, paths.config_explicit)?;
    if loaded.config.env.shell_env.enabled {
        let timeout = Duration::from_millis(loaded.config.env.shell_env.timeout_ms);
        if let Err(e) = import_shell_env(&mut env, timeout).await {
            tracing::warn!("shell environment import skipped: {e}");
        }
    }
    let config = Arc::new(loaded.config);
    let env = Arc::new(env);

    let db_path = paths.state_db();
    let Some(url) = crate::app::redis_url(&config, &env).await? else {
        anyhow::bail!(
            "session.redisUrl is not set in {}: `state migrate --to redis` needs the server to copy into. \
             Add redisUrl = \"redis://127.0.0.1:6379\" (or redisUrlRef) under [session], then run it again.",
            loaded.path.display()
        );
    };
    // No state.db is an empty state: nothing to copy, all counts 0 (and said so).
    let snapshot = if tokio::fs::try_exists(&db_path).await.unwrap_or(false) {
        read(&db_path, args.dry_run).await?
    } else {
        crate::cli::say(
            crate::cli::Say::Note,
            format_args!(
                "no state database at {}: nothing to copy (set REMOTECLAW_STATE_DIR when it lives elsewhere)",
                db_path.display()
            ),
        );
        Snapshot::default()
    };
    let counts = snapshot.counts();
    // A dry run counts even when Redis cannot be reached (and says so); a real run
    // needs it.
    let (location, written) = if args.dry_run {
        match Redis::connect(url.expose(), &config.session.redis_prefix).await {
            Ok(redis) => (redis.location().to_string(), None),
            Err(e) => {
                crate::cli::say(
                    crate::cli::Say::Warning,
                    format_args!("{e} — the copy itself will need it"),
                );
                (url_location(url.expose()), None)
            }
        }
    } else {
        let redis = Redis::connect(url.expose(), &config.session.redis_prefix).await?;
        // Nothing to copy: leave the server untouched.
        let w = if snapshot == Snapshot::default() {
            crate::state::migrate::Written::default()
        } else {
            RedisImport::new(redis.clone()).write(&snapshot).await?
        };
        (redis.location().to_string(), Some(w))
    };
    let prefix = &config.session.redis_prefix;

    if args.json {
        let counts_json: serde_json::Map<String, serde_json::Value> = counts
            .lines()
            .iter()
            .map(|(label, n)| (camel(label), serde_json::json!(n)))
            .collect();
        let v = serde_json::json!({
            "from": db_path.display().to_string(),
            "to": location,
            "prefix": prefix,
            "dryRun": args.dry_run,
            "counts": counts_json,
            "sessionsWritten": written.as_ref().map(|w| w.sessions_changed),
            "sessionsKept": written.as_ref().map(|w| w.sessions_kept),
            "kept": written.as_ref().map(|w| {
                w.kept
                    .lines()
                    .iter()
                    .map(|(label, n)| (camel(label), serde_json::json!(n)))
                    .collect::<serde_json::Map<String, serde_json::Value>>()
            }),
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "state.db at {} → redis at {location}, prefix \"{prefix}\"",
        db_path.display(),
    );
    print_counts(&counts);
    match written {
        None => println!("--dry-run: nothing written"),
        Some(w) => {
            let kept = if w.sessions_kept == 0 {
                String::new()
            } else {
                format!(
                    ", {} kept as Redis has them (written there since they were copied)",
                    w.sessions_kept
                )
            };
            let others = w.kept.lines();
            if !others.is_empty() {
                let list: Vec<String> = others
                    .iter()
                    .map(|(label, n)| format!("{label} {n}"))
                    .collect();
                println!(
                    "kept as Redis has them (changed or removed there since they were copied, or made there): {}",
                    list.join(", ")
                );
            }
            println!(
                "copied: {} sessions written, {} already up to date{kept}. Set [session] store = \"redis\" to use it.",
                w.sessions_changed,
                counts
                    .sessions
                    .saturating_sub(w.sessions_changed + w.sessions_kept)
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `history entries` → `historyEntries`.
fn camel(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut upper = false;
    for c in label.chars() {
        if c == ' ' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// host:port of a Redis URL, without credentials (for the dry run's header when the
/// server cannot be reached).
fn url_location(url: &str) -> String {
    redis::Client::open(url)
        .map(|c| c.get_connection_info().addr().to_string())
        .unwrap_or_else(|_| "(unparsed URL)".to_string())
}

/// Open `state.db` and read it, on the blocking pool.
/// What `path` holds. A dry run writes nothing to it, not even the schema upgrade that
/// opening a state database does: it reads a private copy (`VACUUM INTO` from a read-only
/// connection, in a 0700 temporary directory removed afterwards).
async fn read(path: &Path, dry_run: bool) -> anyhow::Result<Snapshot> {
    let path = path.to_path_buf();
    let snapshot = tokio::task::spawn_blocking(move || -> anyhow::Result<Snapshot> {
        if !dry_run {
            let db = StateDb::open(&path)?;
            return Ok(Snapshot::read(&db)?);
        }
        let copy = PrivateCopy::of(&path)?;
        let db = StateDb::open(&copy.file)?;
        let snapshot = Snapshot::read(&db)?;
        // Its connections close before the copy's directory goes.
        drop(db);
        drop(copy);
        Ok(snapshot)
    })
    .await??;
    Ok(snapshot)
}

/// A copy of a state database in a temporary directory of its own, removed on drop.
struct PrivateCopy {
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
}

impl PrivateCopy {
    fn of(path: &Path) -> anyhow::Result<PrivateCopy> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("remoteclaw-migrate-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot make a directory for a copy of {}: {e}",
                    path.display()
                )
            })?;
        let copy = PrivateCopy {
            file: dir.join("state.db"),
            dir,
        };
        let source = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.execute("VACUUM INTO ?1", [copy.file.to_string_lossy()])
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} for a dry run: {e}. Check that it is RemoteClaw's state database.",
                path.display()
            )
        });
        source.map(|_| copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn print_counts(counts: &Counts) {
    for (label, n) in counts.lines() {
        println!("{label}: {n}");
    }
}
