//! Alert states in Redis (DESIGN §9): one hash `alerts` under the prefix, alert key →
//! state. Setting a state is one Lua script (compare, then write), so two replicas that
//! see the same change at once get one `true` between them and post one alert.

use super::store::AlertStore;
use crate::state::StoreFuture;
use crate::state::redis::Redis;
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

/// `KEYS[1]` alerts; ARGV[1] key, ARGV[2] state. 1 when the field changed.
static SET_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// Alert states in Redis.
#[derive(Debug, Clone)]
pub struct RedisAlerts {
    redis: Redis,
}

impl RedisAlerts {
    pub fn new(redis: Redis) -> RedisAlerts {
        RedisAlerts { redis }
    }

    /// `<prefix>alerts`.
    pub fn key(redis: &Redis) -> String {
        redis.key("alerts")
    }
}

impl AlertStore for RedisAlerts {
    fn load(&self) -> StoreFuture<Vec<(String, String)>> {
        let fut = self.redis.cmd::<HashMap<String, String>>(
            redis::cmd("HGETALL")
                .arg(RedisAlerts::key(&self.redis))
                .clone(),
        );
        Box::pin(async move { Ok(fut.await?.into_iter().collect()) })
    }

    fn set(&self, key: &str, state: Option<&str>, _now_ms: i64) -> StoreFuture<bool> {
        let hash = RedisAlerts::key(&self.redis);
        match state {
            None => {
                let fut = self
                    .redis
                    .cmd::<i64>(redis::cmd("HDEL").arg(hash).arg(key).clone());
                Box::pin(async move { Ok(fut.await? > 0) })
            }
            Some(state) => {
                let fut = self.redis.script::<i64>(
                    &SET_STATE,
                    vec![hash],
                    vec![key.to_string(), state.to_string()],
                );
                Box::pin(async move { Ok(fut.await? == 1) })
            }
        }
    }
}
