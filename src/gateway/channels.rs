//! The chat channels the gateway runs, each stoppable and restartable on its own
//! (DESIGN §11): a changed token, `enabled`, `apiRoot`/`apiBase` or webhook restarts
//! only that channel; every other channel key reaches the running channel through its
//! live section (`LiveSection`), read once per message.

use crate::app::App;
use crate::config::live::LiveSection;
use crate::config::{Config, DiscordConfig, TelegramConfig};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One running channel.
struct Running<T> {
    /// The channel's settings in force (updated on every reload).
    section: LiveSection<T>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl<T: Send + Sync + 'static> Running<T> {
    /// Run a channel with `cfg` as its live section until its own stop signal.
    fn spawn<F, Fut, E>(name: &'static str, cfg: T, run: F) -> Running<T>
    where
        F: FnOnce(LiveSection<T>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let section = crate::config::live::section(cfg);
        let (stop, stopped) = watch::channel(false);
        let running = run(section.clone(), stopped);
        let task = tokio::spawn(async move {
            if let Err(e) = running.await {
                tracing::error!("{name} channel stopped: {e}");
            }
        });
        Running {
            section,
            stop,
            task,
        }
    }

    /// Ask the channel to stop taking messages and wait until its turns in flight
    /// answered (or `grace` ran out).
    async fn stop(self, name: &str, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(
                "{name} channel did not finish its turns within {} s; stopping it",
                grace.as_secs()
            );
            task.abort();
            // Wait until it is gone: its turns end with it (they must not reply after
            // the restarted channel answers their messages from the journal/inbox).
            let _ = task.await;
        }
    }
}

/// The running chat channels.
#[derive(Default)]
pub struct Channels {
    telegram: Option<Running<TelegramConfig>>,
    discord: Option<Running<DiscordConfig>>,
}

impl Channels {
    /// Start every enabled channel of `config`; a channel that cannot start is logged
    /// and the gateway keeps serving the others.
    pub async fn start(app: &Arc<App>, config: &Config) -> Channels {
        let mut channels = Channels::default();
        channels.start_telegram(app, config).await;
        channels.start_discord(app, config).await;
        channels
    }

    async fn start_telegram(&mut self, app: &Arc<App>, config: &Config) {
        app.telegram_webhook
            .set_path(crate::gateway::telegram_webhook::path_of(config));
        let Some(cfg) = config.channels.telegram.clone().filter(|c| c.enabled) else {
            return;
        };
        match crate::channels::telegram::token(app, &cfg).await {
            Ok(token) => {
                let app = app.clone();
                self.telegram = Some(Running::spawn("Telegram", cfg, move |live, stopped| {
                    crate::channels::telegram::run(app, live, token, stopped)
                }));
            }
            Err(e) => tracing::error!("Telegram channel not started: {e}"),
        }
    }

    async fn start_discord(&mut self, app: &Arc<App>, config: &Config) {
        let Some(cfg) = config.channels.discord.clone().filter(|c| c.enabled) else {
            return;
        };
        match crate::channels::discord::token(app, &cfg).await {
            Ok(token) => {
                let app = app.clone();
                self.discord = Some(Running::spawn("Discord", cfg, move |live, stopped| {
                    crate::channels::discord::run(app, live, token, stopped)
                }));
            }
            Err(e) => tracing::error!("Discord channel not started: {e}"),
        }
    }

    /// Give the running channels the settings of `config` that apply live (allowlists,
    /// owners, groups, policies, agent, prompts, streaming).
    pub fn update(&self, config: &Config) {
        if let (Some(r), Some(cfg)) = (&self.telegram, &config.channels.telegram) {
            r.section.store(Arc::new(cfg.clone()));
        }
        if let (Some(r), Some(cfg)) = (&self.discord, &config.channels.discord) {
            r.section.store(Arc::new(cfg.clone()));
        }
    }

    /// Take `name` (`telegram` or `discord`) out of the running set, if it runs: the
    /// returned future stops it (its turns in flight finish within `grace`). The caller
    /// runs it without holding the channels' lock, so live edits go on meanwhile.
    pub fn take(
        &mut self,
        name: &str,
        grace: std::time::Duration,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        match name {
            "telegram" => {
                let r = self.telegram.take()?;
                tracing::info!("config changed: restarting the Telegram channel");
                Some(Box::pin(r.stop("Telegram", grace)))
            }
            "discord" => {
                let r = self.discord.take()?;
                tracing::info!("config changed: restarting the Discord channel");
                Some(Box::pin(r.stop("Discord", grace)))
            }
            _ => None,
        }
    }

    /// Start `name` from `config` if it is enabled there and not running.
    pub async fn start_one(&mut self, name: &str, app: &Arc<App>, config: &Config) {
        match name {
            "telegram" if self.telegram.is_none() => self.start_telegram(app, config).await,
            "discord" if self.discord.is_none() => self.start_discord(app, config).await,
            _ => {}
        }
    }

    /// Tell every channel to stop taking messages (gateway shutdown).
    pub fn stop_all(&self) {
        if let Some(r) = &self.telegram {
            let _ = r.stop.send(true);
        }
        if let Some(r) = &self.discord {
            let _ = r.stop.send(true);
        }
    }

    /// Wait for every channel to finish (after `stop_all`).
    pub async fn join(self) {
        for task in [self.telegram.map(|r| r.task), self.discord.map(|r| r.task)]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
    }
}
