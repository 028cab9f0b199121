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

pub use turn::{Attempt, TurnError, TurnInput, TurnResult};

use crate::auth::CredentialResolver;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::providers::{ProviderClient, ProviderError, ProviderSettings};
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::Arc;

/// Default reply-token budget when the config sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Default turn deadline (`agents.defaults.turnTimeoutSecs`).
pub const DEFAULT_TURN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug)]
pub struct Engine {
    pub config: Arc<Config>,
    pub catalog: Catalog,
    /// The default agent's resolver (`agents.defaultId`, or `--agent`).
    pub resolver: Arc<CredentialResolver>,
    /// Resolvers of the other agents that channels name (`channels.<c>.agent`): each
    /// agent has its own auth-profiles.json.
    agents: HashMap<String, Arc<CredentialResolver>>,
    pub metrics: Arc<Metrics>,
    clients: DashMap<String, ProviderClient>,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        resolver: Arc<CredentialResolver>,
        metrics: Arc<Metrics>,
    ) -> Engine {
        Engine {
            catalog: Catalog::from_config(&config),
            config,
            resolver,
            agents: HashMap::new(),
            metrics,
            clients: DashMap::new(),
        }
    }

    /// Add the resolver of another agent (its own auth-profiles.json).
    pub fn with_agent(mut self, id: &str, resolver: Arc<CredentialResolver>) -> Engine {
        self.agents.insert(id.to_string(), resolver);
        self
    }

    /// The resolver of `agent` (`None`, or an agent without its own: the default one).
    pub fn resolver_for(&self, agent: Option<&str>) -> &Arc<CredentialResolver> {
        agent
            .and_then(|a| self.agents.get(a))
            .unwrap_or(&self.resolver)
    }

    /// The other agents that have a resolver of their own, by id (the default agent's
    /// is `resolver`).
    pub fn agents(&self) -> impl Iterator<Item = (&str, &Arc<CredentialResolver>)> {
        self.agents.iter().map(|(id, r)| (id.as_str(), r))
    }

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

    /// How long a whole turn may take, every attempt included (at least 1 s).
    pub fn turn_timeout(&self) -> std::time::Duration {
        self.config
            .agents
            .defaults
            .turn_timeout_secs
            .map(|s| std::time::Duration::from_secs(s.max(1)))
            .unwrap_or(DEFAULT_TURN_TIMEOUT)
    }

    pub fn max_tokens(&self) -> u32 {
        self.config
            .agents
            .defaults
            .max_tokens
            .unwrap_or(DEFAULT_MAX_TOKENS)
    }
}
