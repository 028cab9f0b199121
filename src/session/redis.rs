//! The shared session store, in Redis (DESIGN §9): replicas of the gateway that point at
//! the same server and prefix see the same sessions.
//!
//! Layout, under the configured prefix (`session.redisPrefix`, default `remoteclaw:`):
//! - `<prefix>session:<key>` — a hash: `model`, `pin_profile`, `pin_source`, `pin_since`,
//!   `rev`, `generation`, `created_at`, `updated_at` (a field that is `None` is absent;
//!   `generation` is set when the hash is created, see [`Generations`]);
//! - `<prefix>history:<key>` — a list of JSON `{"role", "content"}` entries, oldest first;
//! - `<prefix>sessions` — a sorted set of session keys scored by `updated_at`, for listings.
//!
//! Session keys are used as they are (Redis keys are binary-safe); nothing secret goes
//! into a key name. Every write that bumps `rev` is one Lua script, so it is atomic and
//! concurrent writers never lose an update. The connection is a
//! [`ConnectionManager`], which reconnects by itself; every call is bounded by
//! [`CALL_TIMEOUT`], and a timeout or connection error becomes a
//! [`StoreError::Backend`] whose message starts with `state store unavailable: ` and
//! never contains the URL's password.

use super::store::{
    Pin, PinSource, SessionRecord, SessionStore, SessionSummary, StoreError, StoreFuture,
};
use crate::providers::{ChatMessage, Role};
use crate::state::redis::{Redis, as_i64};
use redis::{Script, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

pub use crate::state::redis::{CALL_TIMEOUT, DEFAULT_PREFIX};

/// Bumps `rev` (creating the session at 1, with generation `ARGV[2]`), sets `updated_at`
/// (and `created_at` when new) and the session's score in the listing. Shared head of
/// the write scripts; expects `KEYS[1]` = session hash, `KEYS[2]` = listing, `ARGV[1]` =
/// session key, `ARGV[2]` = a fresh generation, `ARGV[3]` = now.
const BUMP_LUA: &str = r#"
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
if rev == 1 then redis.call('HSET', KEYS[1], 'created_at', ARGV[3], 'generation', ARGV[2]) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
"#;

/// `set_choice`: ARGV[4] model or "" with ARGV[5] = "1" when present; ARGV[6] = "1" when
/// pinned, with profile, source and since in ARGV[7..9].
static SET_CHOICE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{BUMP_LUA}
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'model', ARGV[4])
else redis.call('HDEL', KEYS[1], 'model') end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'pin_profile', ARGV[7], 'pin_source', ARGV[8], 'pin_since', ARGV[9])
else redis.call('HDEL', KEYS[1], 'pin_profile', 'pin_source', 'pin_since') end
return rev
"#
    ))
});

/// `append_history`: KEYS[3] = history list, ARGV[4] = keep, ARGV[5..] = JSON entries.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{BUMP_LUA}
for i = 5, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
local keep = tonumber(ARGV[4])
local len = redis.call('LLEN', KEYS[3])
if keep == 0 then redis.call('DEL', KEYS[3])
elseif len > keep then redis.call('LTRIM', KEYS[3], len - keep, -1) end
return rev
"#
    ))
});

/// `clear_history`: KEYS[3] = history list.
static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{BUMP_LUA}
redis.call('DEL', KEYS[3])
return rev
"#
    ))
});

/// `delete`: KEYS as above; returns how many session hashes went (0 or 1).
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
"#,
    )
});

/// One history entry as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    role: String,
    content: String,
}

/// `<prefix>session:<key>`: the session hash (the layout above; `state migrate` writes it too).
pub(crate) fn session_key(redis: &Redis, key: &str) -> String {
    redis.key(&format!("session:{key}"))
}

/// `<prefix>history:<key>`: the session's history list.
pub(crate) fn history_key(redis: &Redis, key: &str) -> String {
    redis.key(&format!("history:{key}"))
}

/// `<prefix>sessions`: the listing (sorted set by `updated_at`).
pub(crate) fn listing_key(redis: &Redis) -> String {
    redis.key("sessions")
}

/// One history entry as the list holds it.
pub(crate) fn history_entry(role: &str, content: &str) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Entry {
        role: role.to_string(),
        content: content.to_string(),
    })
}

/// Fresh generations ([`SessionRecord::generation`]): a random part drawn once per
/// instance and a counter, so no two writes that create a session — in this process or
/// another, before or after Redis lost its data — hand out the same one.
#[derive(Debug)]
pub(crate) struct Generations {
    random: String,
    next: AtomicU64,
}

impl Generations {
    pub(crate) fn new() -> Generations {
        Generations {
            random: crate::pairing::random_code(),
            next: AtomicU64::new(0),
        }
    }

    /// One not handed out before.
    pub(crate) fn fresh(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.random)
    }
}

/// Sessions in Redis.
#[derive(Debug, Clone)]
pub struct RedisStore {
    redis: Redis,
    generations: Arc<Generations>,
}

impl RedisStore {
    /// Connect to `url` (`redis://[:password@]host:port[/db]`) with keys under `prefix`
    /// (see [`Redis::connect`]).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore::new(Redis::connect(url, prefix).await?))
    }

    /// Sessions over an open connection.
    pub fn new(redis: Redis) -> RedisStore {
        RedisStore {
            redis,
            generations: Arc::new(Generations::new()),
        }
    }

    fn session_key(&self, key: &str) -> String {
        session_key(&self.redis, key)
    }

    fn history_key(&self, key: &str) -> String {
        history_key(&self.redis, key)
    }

    fn listing_key(&self) -> String {
        listing_key(&self.redis)
    }

    /// Runs one of the write scripts for `key`; resolves to the new `rev`.
    fn write(&self, script: &'static Script, key: &str, mut args: Vec<String>) -> StoreFuture<i64> {
        let keys = vec![
            self.session_key(key),
            self.listing_key(),
            self.history_key(key),
        ];
        args.insert(0, key.to_string());
        args.insert(1, self.generations.fresh());
        self.redis.script(script, keys, args)
    }
}

/// Fields of the session hash as a map (empty when the session does not exist).
type Fields = HashMap<String, String>;

fn int_field(f: &Fields, name: &str) -> Result<i64, String> {
    match f.get(name) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| format!("field {name} of a session hash is not an integer")),
    }
}

fn pin_of(f: &Fields) -> Result<Option<Pin>, String> {
    Ok(match f.get("pin_profile") {
        Some(profile) => Some(Pin {
            profile: profile.clone(),
            source: PinSource::parse(f.get("pin_source").map(String::as_str).unwrap_or("")),
            since: int_field(f, "pin_since")?,
        }),
        None => None,
    })
}

fn summary_of(key: String, f: &Fields, history_len: usize) -> Result<SessionSummary, String> {
    Ok(SessionSummary {
        key,
        model: f.get("model").cloned(),
        pin: pin_of(f)?,
        history_len,
        updated_at: int_field(f, "updated_at")?,
    })
}

fn entries(raw: Vec<String>) -> Result<Vec<ChatMessage>, String> {
    raw.iter()
        .map(|s| {
            let e: Entry = serde_json::from_str(s)
                .map_err(|e| format!("a history entry is not valid JSON: {e}"))?;
            Ok(ChatMessage {
                role: Role::from_stored(&e.role),
                content: e.content,
                images: Vec::new(),
            })
        })
        .collect()
}

impl SessionStore for RedisStore {
    fn load(&self, key: &str, history_limit: usize) -> StoreFuture<Option<SessionRecord>> {
        let (skey, hkey, owned) = (
            self.session_key(key),
            self.history_key(key),
            key.to_string(),
        );
        self.redis.call(
            move |mut conn| async move {
                // One transaction: the revision and the history belong together.
                let mut pipe = redis::pipe();
                pipe.atomic().cmd("HGETALL").arg(&skey);
                if history_limit > 0 {
                    pipe.cmd("LRANGE")
                        .arg(&hkey)
                        .arg(-as_i64(history_limit))
                        .arg(-1);
                }
                pipe.query_async::<Vec<Value>>(&mut conn).await
            },
            move |mut answers: Vec<Value>| {
                let raw_history = if answers.len() > 1 {
                    redis::from_redis_value::<Vec<String>>(answers.remove(1))
                        .map_err(|e| e.to_string())?
                } else {
                    Vec::new()
                };
                let Some(first) = answers.pop() else {
                    return Err("an empty answer to a transaction".to_string());
                };
                let f: Fields = redis::from_redis_value(first).map_err(|e| e.to_string())?;
                if !f.contains_key("rev") {
                    return Ok(None);
                }
                Ok(Some(SessionRecord {
                    key: owned,
                    model: f.get("model").cloned(),
                    pin: pin_of(&f)?,
                    history: entries(raw_history)?,
                    rev: int_field(&f, "rev")?,
                    generation: f.get("generation").cloned().unwrap_or_default(),
                    updated_at: int_field(&f, "updated_at")?,
                }))
            },
        )
    }

    fn rev(&self, key: &str) -> StoreFuture<i64> {
        let skey = self.session_key(key);
        self.redis.call(
            move |mut conn| async move {
                redis::cmd("HGET")
                    .arg(&skey)
                    .arg("rev")
                    .query_async::<Option<i64>>(&mut conn)
                    .await
            },
            |rev| Ok(rev.unwrap_or(0)),
        )
    }

    fn load_if_changed(
        &self,
        key: &str,
        history_limit: usize,
        known_generation: &str,
        known_rev: i64,
    ) -> StoreFuture<Option<Option<SessionRecord>>> {
        let (this, key) = (self.clone(), key.to_string());
        let known = (known_generation.to_string(), known_rev);
        let skey = self.session_key(&key);
        Box::pin(async move {
            let now = this
                .redis
                .call(
                    move |mut conn| async move {
                        redis::cmd("HMGET")
                            .arg(&skey)
                            .arg("generation")
                            .arg("rev")
                            .query_async::<(Option<String>, Option<i64>)>(&mut conn)
                            .await
                    },
                    |(generation, rev)| Ok((generation.unwrap_or_default(), rev.unwrap_or(0))),
                )
                .await?;
            if now == known {
                return Ok(None);
            }
            Ok(Some(this.load(&key, history_limit).await?))
        })
    }

    fn set_choice(
        &self,
        key: &str,
        model: Option<&str>,
        pin: Option<&Pin>,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut args = vec![
            now_ms.to_string(),
            model.unwrap_or("").to_string(),
            flag(model.is_some()),
            flag(pin.is_some()),
        ];
        if let Some(p) = pin {
            args.extend([
                p.profile.clone(),
                p.source.as_str().to_string(),
                p.since.to_string(),
            ]);
        }
        self.write(&SET_CHOICE, key, args)
    }

    fn append_history(
        &self,
        key: &str,
        messages: &[ChatMessage],
        keep: usize,
        now_ms: i64,
    ) -> StoreFuture<i64> {
        let mut args = vec![now_ms.to_string(), as_i64(keep).to_string()];
        for m in messages {
            match history_entry(m.role.as_str(), &m.content) {
                Ok(json) => args.push(json),
                Err(e) => {
                    let err = self
                        .redis
                        .err(format!("a history entry could not be encoded: {e}"));
                    return Box::pin(async move { Err(err) });
                }
            }
        }
        self.write(&APPEND, key, args)
    }

    fn clear_history(&self, key: &str, now_ms: i64) -> StoreFuture<i64> {
        self.write(&CLEAR, key, vec![now_ms.to_string()])
    }

    fn delete(&self, key: &str) -> StoreFuture<bool> {
        let removed = self.write(&DELETE, key, Vec::new());
        Box::pin(async move { Ok(removed.await? > 0) })
    }

    fn list(&self) -> StoreFuture<Vec<SessionSummary>> {
        let this = self.clone();
        Box::pin(async move {
            let listing = this.listing_key();
            let keys: Vec<String> = this
                .redis
                .call(
                    move |mut conn| async move {
                        redis::cmd("ZRANGE")
                            .arg(&listing)
                            .arg(0)
                            .arg(-1)
                            .query_async::<Vec<String>>(&mut conn)
                            .await
                    },
                    Ok,
                )
                .await?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HGETALL").arg(this.session_key(k));
                pipe.cmd("LLEN").arg(this.history_key(k));
            }
            let mut out = this
                .redis
                .call(
                    move |mut conn| async move { pipe.query_async::<Vec<Value>>(&mut conn).await },
                    move |answers: Vec<Value>| {
                        let mut out = Vec::with_capacity(keys.len());
                        let mut answers = answers.into_iter();
                        for k in keys {
                            let (Some(f), Some(len)) = (answers.next(), answers.next()) else {
                                return Err("a short answer to a pipeline".to_string());
                            };
                            let f: Fields =
                                redis::from_redis_value(f).map_err(|e| e.to_string())?;
                            let len: usize =
                                redis::from_redis_value(len).map_err(|e| e.to_string())?;
                            // Deleted between the two calls: not listed.
                            if f.contains_key("rev") {
                                out.push(summary_of(k, &f, len)?);
                            }
                        }
                        Ok(out)
                    },
                )
                .await?;
            out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.key.cmp(&b.key)));
            Ok(out)
        })
    }

    fn summary(&self, key: &str) -> StoreFuture<Option<SessionSummary>> {
        let (skey, hkey, owned) = (
            self.session_key(key),
            self.history_key(key),
            key.to_string(),
        );
        self.redis.call(
            move |mut conn| async move {
                redis::pipe()
                    .atomic()
                    .cmd("HGETALL")
                    .arg(&skey)
                    .cmd("LLEN")
                    .arg(&hkey)
                    .query_async::<(Fields, usize)>(&mut conn)
                    .await
            },
            move |(f, len): (Fields, usize)| {
                if !f.contains_key("rev") {
                    return Ok(None);
                }
                Ok(Some(summary_of(owned, &f, len)?))
            },
        )
    }
}
