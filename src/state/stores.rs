//! Every store a gateway uses, from one backend (DESIGN §9): the embedded `state.db`
//! (default) or Redis shared by replicas. Nothing falls back from one to the other:
//! with `session.store = "redis"` no state is kept in a private `state.db`.

use super::lease::Coordinator;
use super::redis::Redis;
use super::{StateDb, StoreError};
use crate::alerts::store::{AlertStore, SqliteAlerts};
use crate::auth::cooldown::{CooldownStore, SqliteCooldowns};
use crate::inbox::{InboxStore, SqliteInbox};
use crate::pairing::{PairingBackend, SqlitePairing};
use crate::session::sqlite::SqliteStore;
use crate::session::store::SessionStore;
use crate::usage::{SqliteUsage, UsageBook};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Stores {
    pub sessions: Arc<dyn SessionStore>,
    pub cooldowns: Arc<dyn CooldownStore>,
    pub pairing: Arc<dyn PairingBackend>,
    pub inbox: Arc<dyn InboxStore>,
    pub usage: UsageBook,
    /// Credential alerts already reported (DESIGN §11).
    pub alerts: Arc<dyn AlertStore>,
    /// The shared store when there is one (health checks, leases, locks).
    pub redis: Option<Redis>,
    /// The embedded database when it is the store.
    pub db: Option<Arc<StateDb>>,
    /// Turn queues and leases across replicas (Redis only: one process needs none).
    pub coordinator: Option<Coordinator>,
}

impl Stores {
    /// Everything in `state.db`.
    pub fn sqlite(db: Arc<StateDb>) -> Stores {
        Stores {
            sessions: Arc::new(SqliteStore::new(db.clone())),
            cooldowns: Arc::new(SqliteCooldowns::new(db.clone())),
            pairing: Arc::new(SqlitePairing::new(db.clone())),
            inbox: Arc::new(SqliteInbox::new(db.clone())),
            usage: UsageBook::with_store(Arc::new(SqliteUsage::new(db.clone()))),
            alerts: Arc::new(SqliteAlerts::new(db.clone())),
            redis: None,
            db: Some(db),
            coordinator: None,
        }
    }

    /// Everything in Redis, over one connection.
    pub fn redis(redis: Redis) -> Stores {
        use super::redis_stores::{RedisCooldowns, RedisInbox, RedisPairing, RedisUsage};
        Stores {
            sessions: Arc::new(crate::session::redis::RedisStore::new(redis.clone())),
            cooldowns: Arc::new(RedisCooldowns::new(redis.clone())),
            pairing: Arc::new(RedisPairing::new(redis.clone())),
            inbox: Arc::new(RedisInbox::new(redis.clone())),
            usage: UsageBook::with_store(Arc::new(RedisUsage::new(redis.clone()))),
            alerts: Arc::new(crate::alerts::redis::RedisAlerts::new(redis.clone())),
            coordinator: Some(Coordinator::new(redis.clone())),
            redis: Some(redis),
            db: None,
        }
    }

    /// Whether the store answers now (`/health`): always for `state.db`.
    pub async fn check(&self) -> Result<(), StoreError> {
        match &self.redis {
            Some(r) => r.ping().await,
            None => Ok(()),
        }
    }
}
