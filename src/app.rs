//! Start-up wiring: environment → paths → `.env` → config → shell env → resolver →
//! engine → sessions. Every entry point (gateway, chat, agent) builds one `App`.

use crate::auth::CredentialResolver;
use crate::auth::cooldown::CooldownBook;
use crate::clock::{Clock, SystemClock};
use crate::config::env::{EnvMap, import_shell_env, load_env_file};
use crate::config::live::LiveConfig;
use crate::config::paths::Paths;
use crate::config::{self, Config, LoadedConfig};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::session::SessionManager;
use crate::state::StateDb;
use crate::state::redis::Redis;
use crate::state::stores::Stores;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct App {
    pub paths: Paths,
    pub config_path: std::path::PathBuf,
    pub config_exists: bool,
    /// The configuration in force; a reload replaces it (`config()`, `apply_config`).
    live: LiveConfig,
    /// Why the config file on disk is not in force (invalid since the last reload).
    config_error: ArcSwapOption<String>,
    pub env: Arc<EnvMap>,
    /// What `[env.shellEnv]` did at start.
    pub shell_env: ShellEnvImport,
    pub agent_id: String,
    pub engine: Engine,
    pub sessions: SessionManager,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Where sessions, cooldowns, pairing, the inbox and usage live (`state.db` or Redis).
    pub stores: Stores,
    /// `gateway.maxConcurrentTurns`: one limit for the HTTP API and every chat channel.
    pub turns: Arc<crate::limit::TurnLimiter>,
    /// Bookkeeping writes made after a reply (usage totals): a reply never waits for
    /// `state.db`; a process that is about to exit waits for them (`settle`).
    pub background: crate::tasks::Tasks,
    /// Telegram webhook mode: where the gateway's listener finds the running channel.
    pub telegram_webhook: Arc<crate::channels::telegram::WebhookIntake>,
    /// Answered marks the channels' inboxes are trying again (one registry per process).
    mark_retries: Arc<crate::inbox::MarkRetries>,
}

/// The outcome of `[env.shellEnv]` at start (shown by `models status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEnvImport {
    /// `enabled = false`.
    Off,
    /// Variables the login shell had and the process did not.
    Imported(usize),
    /// The import failed or timed out (the reason, no variable values).
    Skipped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    NoHome(#[from] config::paths::NoHome),
    #[error(transparent)]
    EnvFile(#[from] config::env::EnvFileError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::session::StoreError),
    #[error("session.redisUrlRef: {0}")]
    RedisUrlRef(String),
    #[error("agent id \"{0}\" is not a plain name: use letters, digits, '_' or '-'")]
    BadAgent(String),
}

/// The credential resolver of agent `id`: its own auth-profiles.json, the shared
/// config, environment, cooldown book and store coordinator.
fn agent_resolver(
    live: &LiveConfig,
    env: &Arc<EnvMap>,
    paths: &Paths,
    clock: &Arc<dyn Clock>,
    cooldowns: &Arc<CooldownBook>,
    coordinator: &Option<crate::state::lease::Coordinator>,
    id: &str,
) -> Arc<CredentialResolver> {
    Arc::new(
        CredentialResolver::new(
            live.clone(),
            env.clone(),
            paths.auth_profiles(id),
            clock.clone(),
            cooldowns.clone(),
        )
        .with_coordinator(coordinator.clone()),
    )
}

/// The agents that channels name (`channels.<c>.agent`).
fn channel_agents(config: &Config) -> Vec<String> {
    let telegram = config
        .channels
        .telegram
        .as_ref()
        .and_then(|c| c.agent.clone());
    let discord = config
        .channels
        .discord
        .as_ref()
        .and_then(|c| c.agent.clone());
    [telegram, discord].into_iter().flatten().collect()
}

/// `--agent ID` becomes a directory name: plain names only (config values are checked
/// when the config loads).
fn check_agent_id(id: &str) -> Result<(), StartupError> {
    if !crate::config::is_plain_agent_id(id) {
        return Err(StartupError::BadAgent(id.to_string()));
    }
    Ok(())
}

impl App {
    /// The configuration in force now (a reload may replace it between two calls: take
    /// it once per message or task step, not once per process).
    pub fn config(&self) -> Arc<Config> {
        self.live.get()
    }

    /// The shared handle of the config in force (components that read it per message).
    pub fn live_config(&self) -> &LiveConfig {
        &self.live
    }

    /// Put a reloaded config in force for the next message. The keys that need a
    /// restart (`gateway`, `session`, `env`, `agents.defaultId`) keep their running
    /// values, so what runs is what the config in force says.
    pub fn apply_config(&self, config: Arc<Config>) {
        let old = self.live.get();
        let mut config = Arc::unwrap_or_clone(config);
        config.gateway = old.gateway.clone();
        config.session = old.session.clone();
        config.env = old.env.clone();
        config.agents.default_id = old.agents.default_id.clone();
        self.engine
            .resolver
            .cooldowns
            .set_config(config.auth.cooldowns.clone());
        for a in channel_agents(&config) {
            if a != self.agent_id && !self.engine.has_agent(&a) {
                let r = self.resolver(&a);
                self.engine.add_agent(&a, r);
            }
        }
        self.live.replace(Arc::new(config));
    }

    /// The credential resolver of agent `id` (its own auth-profiles.json), sharing this
    /// app's config, cooldowns and store.
    fn resolver(&self, id: &str) -> Arc<CredentialResolver> {
        agent_resolver(
            &self.live,
            &self.env,
            &self.paths,
            &self.clock,
            &self.engine.resolver.cooldowns,
            &self.stores.coordinator,
            id,
        )
    }

    /// The config error shown on `/health` (`configError`), if the file is invalid.
    pub fn config_error(&self) -> Option<Arc<String>> {
        self.config_error.load_full()
    }

    /// Record why the file is not in force; `false` when that was already known.
    pub fn set_config_error(&self, message: &str) -> bool {
        if self
            .config_error
            .load()
            .as_deref()
            .is_some_and(|m| m == message)
        {
            return false;
        }
        self.config_error.store(Some(Arc::new(message.to_string())));
        true
    }

    /// Clear the config error; `true` when there was one.
    pub fn take_config_error(&self) -> bool {
        self.config_error.swap(None).is_some()
    }

    /// Why an agent's auth-profiles.json, as last looked at, is not in force (it is
    /// unreadable or corrupt; the last valid version, or none, is used meanwhile):
    /// `/health`'s `credentialsError`. Each problem names its file and line.
    pub fn credentials_error(&self) -> Option<String> {
        let problems: Vec<String> = self
            .resolvers()
            .into_iter()
            .filter_map(|(_, r)| r.profiles_problem())
            .map(|p| p.to_string())
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// Every agent's credential resolver, by agent id: this app's agent first, then the
    /// others that channels name, in id order.
    pub fn resolvers(&self) -> Vec<(String, Arc<crate::auth::resolver::CredentialResolver>)> {
        let mut others = self.engine.agents();
        others.sort_by(|a, b| a.0.cmp(&b.0));
        std::iter::once((self.agent_id.clone(), self.engine.resolver.clone()))
            .chain(others)
            .collect()
    }

    /// Build from a process environment. `agent` overrides `agents.defaultId`.
    pub async fn load(env: EnvMap, agent: Option<&str>) -> Result<App, StartupError> {
        Self::load_with(env, agent, false).await
    }

    /// [`App::load`] for a gateway: a Redis store is not reached at start, so a gateway
    /// started while Redis is down serves (`/health` 503, turns "state store
    /// unavailable") and recovers by itself when Redis answers (DESIGN §9).
    pub async fn load_for_gateway(env: EnvMap) -> Result<App, StartupError> {
        Self::load_with(env, None, true).await
    }

    async fn load_with(
        mut env: EnvMap,
        agent: Option<&str>,
        lazy_store: bool,
    ) -> Result<App, StartupError> {
        let paths = Paths::from_env(&env)?;
        if let Err(e) = crate::config::paths::ensure_private_dir(&paths.state_dir) {
            tracing::warn!(
                "cannot create state directory {}: {e}",
                paths.state_dir.display()
            );
        }
        let added = load_env_file(&paths.env_file(), &mut env)?;
        let paths = paths.refresh_config_path(&env);
        let LoadedConfig {
            config,
            path,
            exists,
        } = config::load(&paths.config_path, paths.config_explicit)?;
        if added > 0 {
            tracing::debug!(count = added, file = %paths.env_file().display(), "loaded variables from .env");
        }
        let shell_env = if config.env.shell_env.enabled {
            match import_shell_env(
                &mut env,
                Duration::from_millis(config.env.shell_env.timeout_ms),
            )
            .await
            {
                Ok(n) => {
                    tracing::info!(count = n, "imported variables from the login shell");
                    ShellEnvImport::Imported(n)
                }
                Err(e) => {
                    tracing::warn!("shell environment import skipped: {e}");
                    ShellEnvImport::Skipped(e)
                }
            }
        } else {
            ShellEnvImport::Off
        };
        let agent_id = agent.unwrap_or(&config.agents.default_id).to_string();
        check_agent_id(&agent_id)?;
        // Agents that channels name (`channels.<c>.agent`) get their own resolver.
        let channel_agents: Vec<String> = channel_agents(&config)
            .into_iter()
            .filter(|a| *a != agent_id)
            .collect();
        let config = Arc::new(config);
        let live = LiveConfig::new(config.clone());
        let env = Arc::new(env);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let stores = open_stores(&config, &env, &paths, lazy_store).await?;
        let cooldowns = Arc::new(CooldownBook::with_store(
            stores.cooldowns.clone(),
            config.auth.cooldowns.clone(),
        ));
        let resolver_of = |id: &str| {
            agent_resolver(
                &live,
                &env,
                &paths,
                &clock,
                &cooldowns,
                &stores.coordinator,
                id,
            )
        };
        let resolver = resolver_of(&agent_id);
        resolver.import_usage_stats().await;
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::new(live.clone(), resolver, metrics.clone());
        let sessions = SessionManager::new(
            stores.sessions.clone(),
            config.session.history_turns,
            clock.clone(),
        )
        .with_coordinator(stores.coordinator.clone())
        // `state.db` may be shared with other processes (the gateway and a CLI `agent`):
        // their turns of one session wait for each other through lock files beside it;
        // past a turn's longest life (and a margin) the holder is taken to be stuck.
        .with_turn_locks(stores.db.is_some().then(|| {
            crate::session::turn_lock::TurnLocks::in_state_dir(&paths.state_dir)
                .with_max_wait(engine.turn_timeout() + Duration::from_secs(30))
        }));
        for a in &channel_agents {
            let r = resolver_of(a);
            r.import_usage_stats().await;
            engine.add_agent(a, r);
        }
        let turns = Arc::new(crate::limit::TurnLimiter::from_config(
            config.gateway.max_concurrent_turns,
        ));
        Ok(App {
            paths,
            config_path: path,
            config_exists: exists,
            live,
            config_error: ArcSwapOption::empty(),
            env,
            shell_env,
            agent_id,
            engine,
            sessions,
            clock,
            stores,
            metrics,
            turns,
            background: Default::default(),
            telegram_webhook: Arc::default(),
            mark_retries: Arc::default(),
        })
    }

    /// Pairing requests and approvals, in this app's store.
    pub fn pairing(&self) -> crate::pairing::PairingStore {
        crate::pairing::PairingStore::with_backend(self.stores.pairing.clone(), self.clock.clone())
    }

    /// The channels' inbox, in this app's store.
    pub fn inbox(&self) -> crate::inbox::Inbox {
        crate::inbox::Inbox::with_store(self.stores.inbox.clone(), self.clock.clone())
            .with_claims(self.stores.coordinator.clone())
            .with_retries(self.mark_retries.clone())
    }

    /// Usage totals, in this app's store.
    pub fn usage(&self) -> &crate::usage::UsageBook {
        &self.stores.usage
    }

    /// Run `work` after the reply, off the turn's path (finished ones are reaped here).
    pub fn in_background(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.background.spawn(work);
    }

    /// Wait up to `limit` for the background writes (a CLI before it exits, the gateway
    /// after its drain).
    pub async fn settle(&self, limit: std::time::Duration) {
        let started = tokio::time::Instant::now();
        if !self.background.wait(limit).await {
            tracing::warn!("some bookkeeping writes (usage totals) did not finish before exit");
        }
        let left = limit.saturating_sub(started.elapsed());
        self.mark_retries
            .finish(left.max(std::time::Duration::from_secs(1)))
            .await;
    }
}

/// The Redis URL of `[session]`: `redisUrl`, or `redisUrlRef` resolved (whatever
/// `session.store` says: `state migrate` needs it before the switch). `None` when
/// neither is set.
pub async fn redis_url(
    config: &Arc<Config>,
    env: &Arc<EnvMap>,
) -> Result<Option<crate::secret::Secret>, StartupError> {
    if let Some(url) = &config.session.redis_url {
        return Ok(Some(crate::secret::Secret::new(&**url)));
    }
    let Some(r) = &config.session.redis_url_ref else {
        return Ok(None);
    };
    crate::auth::secrets::SecretResolver::new(config.clone(), env.clone())
        .resolve_input(&crate::config::SecretInput::Ref(r.clone()))
        .await
        .map(Some)
        .map_err(|e| StartupError::RedisUrlRef(e.to_string()))
}

/// The stores `session.store` chooses: `state.db`, or Redis — connected now (a server
/// that does not answer stops start-up with "state store unavailable"), or with `lazy`
/// at its first use.
pub async fn open_stores(
    config: &Arc<Config>,
    env: &Arc<EnvMap>,
    paths: &Paths,
    lazy: bool,
) -> Result<Stores, StartupError> {
    match config.session.store {
        crate::config::SessionStoreKind::Sqlite => {
            Ok(Stores::sqlite(StateDb::open(&paths.state_db())?))
        }
        crate::config::SessionStoreKind::Redis => {
            let Some(url) = redis_url(config, env).await? else {
                return Err(StartupError::RedisUrlRef(
                    "session.store = \"redis\" needs redisUrl or redisUrlRef".to_string(),
                ));
            };
            let redis = if lazy {
                Redis::connect_lazily(url.expose(), &config.session.redis_prefix).await?
            } else {
                Redis::connect(url.expose(), &config.session.redis_prefix).await?
            };
            Ok(Stores::redis(redis))
        }
    }
}
