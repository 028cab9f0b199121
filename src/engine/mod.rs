//! The turn engine: one chat turn from messages to reply. It picks the model chain
//! (chosen model, or default then fallbacks), asks the `Resolver` for candidate
//! credentials, and tries them in order — moving to the next credential only on a
//! rate-limit class error — recording every attempt for the decision trace.
//!
//! Every turn ends within `agents.defaults.turnTimeoutSecs` (default 600 s), whatever
//! the providers do.
//!
//! It does not parse chat commands or keep history: callers (session manager, HTTP
//! API, CLI) hand it the full message list.

mod turn;

pub use turn::{Attempt, TurnError, TurnInput, TurnResult, standing_fingerprint};

use crate::auth::CredentialResolver;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::config::live::LiveConfig;
use crate::metrics::Metrics;
use crate::providers::{ProviderClient, ProviderError, ProviderSettings};
use arc_swap::ArcSwap;
use dashmap::DashMap;
use std::sync::Arc;

/// Default reply-token budget when the config sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Default turn deadline (`agents.defaults.turnTimeoutSecs`).
pub const DEFAULT_TURN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the engine derives from one config: the model catalog and the provider
/// clients (their endpoints come from the config, so a reload starts a fresh set).
#[derive(Debug)]
pub struct Derived {
    pub config: Arc<Config>,
    pub catalog: Arc<Catalog>,
    clients: DashMap<String, ProviderClient>,
}

impl Derived {
    fn of(config: Arc<Config>) -> Derived {
        Derived {
            catalog: Arc::new(Catalog::from_config(&config)),
            config,
            clients: DashMap::new(),
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    /// The config in force (replaced by a reload, DESIGN §11).
    live: LiveConfig,
    /// Catalog and clients of the config `live` held when they were last asked for.
    derived: ArcSwap<Derived>,
    /// The default agent's resolver (`agents.defaultId`, or `--agent`).
    pub resolver: Arc<CredentialResolver>,
    /// Resolvers of the other agents that channels name (`channels.<c>.agent`): each
    /// agent has its own auth-profiles.json.
    agents: DashMap<String, Arc<CredentialResolver>>,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    pub fn new(
        config: impl Into<LiveConfig>,
        resolver: Arc<CredentialResolver>,
        metrics: Arc<Metrics>,
    ) -> Engine {
        let live = config.into();
        Engine {
            derived: ArcSwap::from_pointee(Derived::of(live.get())),
            live,
            resolver,
            agents: DashMap::new(),
            metrics,
        }
    }

    /// The catalog, clients and config in force: one snapshot for a whole turn.
    pub fn current(&self) -> Arc<Derived> {
        let config = self.live.get();
        let derived = self.derived.load_full();
        if Arc::ptr_eq(&derived.config, &config) {
            return derived;
        }
        let fresh = Arc::new(Derived::of(config));
        self.derived.store(fresh.clone());
        fresh
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.live.get()
    }

    /// The model catalog of the config in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current().catalog.clone()
    }

    /// Add the resolver of another agent (a reload that names a new agent).
    pub fn add_agent(&self, id: &str, resolver: Arc<CredentialResolver>) {
        self.agents.insert(id.to_string(), resolver);
    }

    pub fn has_agent(&self, id: &str) -> bool {
        self.agents.contains_key(id)
    }

    /// The resolver of `agent` (`None`, or an agent without its own: the default one).
    pub fn resolver_for(&self, agent: Option<&str>) -> Arc<CredentialResolver> {
        agent
            .and_then(|a| self.agents.get(a).map(|r| r.clone()))
            .unwrap_or_else(|| self.resolver.clone())
    }

    /// The other agents that have a resolver of their own, by id (the default agent's
    /// is `resolver`).
    pub fn agents(&self) -> Vec<(String, Arc<CredentialResolver>)> {
        self.agents
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    /// The (cached) client for a provider; `None` when the provider is unknown.
    pub fn client(&self, provider: &str) -> Option<Result<ProviderClient, ProviderError>> {
        self.current().client(provider)
    }

    /// How long a whole turn may take, every attempt included (at least 1 s).
    pub fn turn_timeout(&self) -> std::time::Duration {
        self.config()
            .agents
            .defaults
            .turn_timeout_secs
            .map(|s| std::time::Duration::from_secs(s.max(1)))
            .unwrap_or(DEFAULT_TURN_TIMEOUT)
    }

    pub fn max_tokens(&self) -> u32 {
        self.config()
            .agents
            .defaults
            .max_tokens
            .unwrap_or(DEFAULT_MAX_TOKENS)
    }
}

impl Derived {
    /// The (cached) client for a provider; `None` when the provider is unknown.
    pub fn client(&self, provider: &str) -> Option<Result<ProviderClient, ProviderError>> {
        if let Some(c) = self.clients.get(provider) {
            return Some(Ok(c.clone()));
        }
        let settings = ProviderSettings::resolve(&self.config, provider)?;
        Some(ProviderClient::new(settings).inspect(|c| {
            self.clients.insert(provider.to_string(), c.clone());
        }))
    }
}
