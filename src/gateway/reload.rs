//! Live config reload (DESIGN §11): the gateway looks at `remoteclaw.toml` every
//! [`POLL_EVERY`] (a `stat` on the blocking pool; the text is read only when the
//! file's size, mtime or inode moved) and, when the text changed:
//! - valid: the new config is put in force for the next message ([`App::apply_config`]),
//!   the running channels get their live sections, a channel whose connection settings
//!   changed is restarted on its own, and keys that need a restart are named in the log;
//! - invalid: the running config stays in force, the error (file, line, key) is logged
//!   once and shown on `/health` as `configError` until the file is valid again;
//! - gone (it was there): the same, until the file is back.
//!
//! On the same tick it looks at each agent's auth-profiles.json (the resolver's
//! cached copy, checked at most every `state::RECHECK_EVERY`), so a changed file is
//! taken up — its `usageStats` imported, a corrupt version logged and shown on
//! `/health` as `credentialsError` — without waiting for a turn.

use super::channels::Channels;
use crate::app::App;
use crate::config::live::classify;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the config file is looked at (a change is noticed within 2 s).
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// Polls in a row that must see the same `stat` before a changed file is read.
const SETTLE: u32 = 2;
/// The same for a file that became empty (most likely an editor between truncating
/// and writing it): read after about 2 s.
const SETTLE_EMPTY: u32 = 4;

/// What `stat` says about the file; `None` when it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// Watches the config file of a running gateway.
pub struct Reloader {
    app: Arc<App>,
    channels: Arc<tokio::sync::Mutex<Channels>>,
    path: PathBuf,
    /// The operator named the file (`REMOTECLAW_CONFIG_PATH`): its absence is an error.
    required: bool,
    stamp: Option<Stamp>,
    /// The text last looked at (valid or not), so one edit is handled once.
    text: Option<String>,
    /// The TOML of the config in force, to tell what an edit changed.
    good: toml::Table,
    /// Channel restarts under way: each stops its channel (letting its turns finish,
    /// up to the grace) and starts it again from the config in force by then, while
    /// the reloader keeps applying edits. One at a time per channel.
    restarts: tokio::task::JoinSet<()>,
    restarting: Arc<[(&'static str, tokio::sync::Mutex<()>); 2]>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// A `stat` not yet acted on, and on how many polls in a row it was seen.
    pending: Option<(Option<Stamp>, u32)>,
    /// The last read failed (not UTF-8, a directory, no permission).
    unreadable: bool,
}

impl Reloader {
    /// Start from the config the gateway loaded at start-up.
    pub async fn new(app: Arc<App>, channels: Arc<tokio::sync::Mutex<Channels>>) -> Reloader {
        let path = app.config_path.clone();
        let p = path.clone();
        let (stamp, text) =
            tokio::task::spawn_blocking(move || (stamp(&p), std::fs::read_to_string(&p).ok()))
                .await
                .unwrap_or((None, None));
        let good = text
            .as_deref()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .unwrap_or_default();
        Reloader {
            required: app.paths.config_explicit,
            app,
            channels,
            path,
            stamp,
            text,
            good,
            restarts: tokio::task::JoinSet::new(),
            restarting: Arc::new([
                ("telegram", tokio::sync::Mutex::new(())),
                ("discord", tokio::sync::Mutex::new(())),
            ]),
            stopping: tokio::sync::watch::channel(false).1,
            pending: None,
            unreadable: false,
        }
    }

    /// Poll until `stop` turns true (the gateway stops); a reload under way (a channel
    /// restart) finishes first.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        self.stopping = stop.clone();
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.poll().await;
                    self.poll_credentials().await;
                }
                () = stopped(&mut stop) => break,
                Some(_) = self.restarts.join_next(), if !self.restarts.is_empty() => {}
            }
        }
        // A restart under way finishes (it starts nothing once the gateway stops).
        while self.restarts.join_next().await.is_some() {}
    }

    /// Restart channel `name` in the background: stop it (outside the channels' lock),
    /// then start it from the config in force at that point, unless the gateway stops.
    fn restart(&mut self, name: &str) {
        let Some(index) = self.restarting.iter().position(|(n, _)| *n == name) else {
            return;
        };
        let (restarting, channels, app) = (
            self.restarting.clone(),
            self.channels.clone(),
            self.app.clone(),
        );
        let stopping = self.stopping.clone();
        self.restarts.spawn(async move {
            let (name, one_at_a_time) = &restarting[index];
            let _one = one_at_a_time.lock().await;
            let grace = Duration::from_secs(app.config().gateway.shutdown_grace_secs);
            let old = channels.lock().await.take(name, grace);
            if let Some(stop) = old {
                stop.await;
            }
            // Under the lock: a live edit applied meanwhile is in the config read here,
            // and a gateway that began stopping starts nothing.
            let mut held = channels.lock().await;
            if *stopping.borrow() {
                return;
            }
            let config = app.config();
            held.start_one(name, &app, &config).await;
        });
    }

    /// Look at the file once; apply a changed text once it has settled: the same
    /// `stat` on [`SETTLE`] polls in a row (an editor that truncates the file and then
    /// writes it is not read halfway), [`SETTLE_EMPTY`] for a file that became empty.
    pub async fn poll(&mut self) {
        let path = self.path.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || stamp(&path)).await else {
            return;
        };
        if now == self.stamp {
            self.pending = None;
            return;
        }
        let seen = match &self.pending {
            Some((s, n)) if *s == now => n.saturating_add(1),
            _ => 1,
        };
        self.pending = Some((now.clone(), seen));
        let emptied = now.as_ref().is_some_and(|s| s.len == 0)
            && self.text.as_deref().is_some_and(|t| !t.trim().is_empty());
        if seen < if emptied { SETTLE_EMPTY } else { SETTLE } {
            return;
        }
        self.pending = None;
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => crate::config::text_of(&path, bytes)
                .map(Some)
                .map_err(|e| format!("{e}; the running config stays in force")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "cannot read config file {}: {e}; the running config stays in force",
                path.display()
            )),
        })
        .await;
        let Ok(text) = read else {
            return;
        };
        self.stamp = now;
        match text {
            Ok(text) => self.changed(text).await,
            Err(e) => {
                // Whatever comes next (the same text as before included) is looked at.
                self.unreadable = true;
                self.invalid(one_line(&crate::config::redact_values(&e)));
            }
        }
    }

    /// Look at every agent's auth-profiles.json (a `stat`; a read when it changed), and
    /// import its `usageStats` if that is still to do (or to try again).
    async fn poll_credentials(&self) {
        for (_, resolver) in self.app.resolvers() {
            resolver.import_usage_stats().await;
        }
    }

    async fn changed(&mut self, text: Option<String>) {
        if text == self.text && !std::mem::take(&mut self.unreadable) {
            return;
        }
        let had_file = self.text.is_some();
        self.text = text.clone();
        let parsed = match &text {
            // A loader message may quote a value: never a secret in a log or on /health.
            Some(t) => crate::config::parse(&self.path, t)
                .map_err(|e| one_line(&crate::config::redact_values(&e.to_string()))),
            None if self.required => Err(format!(
                "config file {} is gone (REMOTECLAW_CONFIG_PATH names it); the running config stays in force",
                self.path.display()
            )),
            // A file that vanishes (deleted, or moved away while being replaced) is not an
            // edit to the defaults: dropping every channel token and provider setting
            // because of it would be worse than keeping what runs.
            None if had_file => Err(format!(
                "config file {} is gone; the running config stays in force until the file is back (an empty file means the defaults)",
                self.path.display()
            )),
            // Still no file at the default location: the empty config, as at start-up.
            None => Ok(crate::config::Config::default()),
        };
        let config = match parsed {
            Ok(c) => c,
            Err(e) => return self.invalid(e),
        };
        let table = text
            .as_deref()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .unwrap_or_default();
        let changes = classify(&self.good, &table);
        // What needs a restart keeps its running value (`apply_config`), so it is what
        // the next edit is compared with: undoing such an edit is no change.
        self.good = keep_running(&self.good, table);
        let config = Arc::new(config);
        self.app.apply_config(config.clone());
        if self.app.take_config_error() {
            tracing::info!(config = %self.path.display(), "config file is valid again");
        }
        if changes.is_empty() {
            return;
        }
        self.channels.lock().await.update(&config);
        for name in &changes.restart_channels {
            self.restart(name);
        }
        if !changes.live.is_empty() {
            tracing::info!(
                config = %self.path.display(),
                keys = %changes.live.join(", "),
                "config reloaded: the change applies to the next message"
            );
        }
        if !changes.need_restart.is_empty() {
            tracing::warn!(
                config = %self.path.display(),
                keys = %changes.need_restart.join(", "),
                "config changed keys that take effect only after a restart of the gateway; until then the old values stay in force"
            );
        }
    }

    fn invalid(&mut self, message: String) {
        if self.app.set_config_error(&message) {
            tracing::error!(
                config = %self.path.display(),
                "config file changed but is invalid; the running config stays in force: {message}"
            );
        }
    }
}

/// `new` with the restart-only parts (`gateway`, `session`, `env`, `agents.defaultId`)
/// as they are in `running`.
fn keep_running(running: &toml::Table, mut new: toml::Table) -> toml::Table {
    for table in ["gateway", "session", "env"] {
        match running.get(table) {
            Some(v) => new.insert(table.to_string(), v.clone()),
            None => new.remove(table),
        };
    }
    let default_id = running
        .get("agents")
        .and_then(|a| a.get("defaultId"))
        .cloned();
    let agents = new
        .entry("agents")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(agents) = agents.as_table_mut() {
        match default_id {
            Some(v) => agents.insert("defaultId".to_string(), v),
            None => agents.remove("defaultId"),
        };
    }
    if new
        .get("agents")
        .and_then(toml::Value::as_table)
        .is_some_and(toml::Table::is_empty)
        && !running.contains_key("agents")
    {
        new.remove("agents");
    }
    new
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A multi-line config error on one line (for `/health` and one log record).
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undoing_a_restart_only_edit_is_no_change() {
        let start: toml::Table = "[gateway]\nport = 1\n".parse().unwrap();
        let edited: toml::Table = "[gateway]\nport = 2\n[agents]\ndefaultId = \"x\"\n"
            .parse()
            .unwrap();
        let first = classify(&start, &edited);
        assert_eq!(first.need_restart, vec!["gateway.port", "agents.defaultId"]);
        let running = keep_running(&start, edited);
        assert_eq!(running, start);
        let undone: toml::Table = "[gateway]\nport = 1\n".parse().unwrap();
        assert!(classify(&running, &undone).is_empty());
    }
}
