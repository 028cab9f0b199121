//! The connection every Redis-backed store shares (DESIGN §9): one
//! [`ConnectionManager`] (it reconnects by itself), keys under the configured prefix
//! (`session.redisPrefix`, default `remoteclaw:`), every call bounded by
//! [`CALL_TIMEOUT`]. A timeout or connection error becomes a [`StoreError::Backend`]
//! whose message starts with `state store unavailable: ` and never holds the URL's
//! password; nothing secret goes into a key name.
//!
//! The manager notices a dead connection (Redis restarted, a proxy dropped it) only when
//! a command fails on it. So a call made after [`IDLE_PROBE_MS`] without one succeeding
//! first sends a PING: on a dead connection the PING fails, the manager reconnects, and
//! the call itself goes out on the new connection. A PING may always be repeated; the
//! call may not (a write failing with "broken pipe" may or may not have reached Redis),
//! so the call is never retried.

use super::{StoreError, StoreFuture};
use crate::clock::{Clock, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The longest one store call may take before it is reported as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection may go without a successful call before the next call checks it
/// with a PING first (see the module doc).
pub const IDLE_PROBE_MS: i64 = 1_000;

/// The default key prefix (`session.redisPrefix`).
pub const DEFAULT_PREFIX: &str = "remoteclaw:";

/// The start of every error message about an unreachable store.
pub const UNAVAILABLE: &str = "state store unavailable: ";

/// A connection to the shared store, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: Arc<str>,
    /// Where the server is (host:port, no credentials): names the store in errors.
    location: Arc<str>,
    /// The URL's password, scrubbed from every error message.
    password: Option<Arc<str>>,
    /// Measures idleness (`IDLE_PROBE_MS`).
    clock: Arc<dyn Clock>,
    /// When a call last succeeded (`clock` ms; 0 before the first).
    last_ok: Arc<AtomicI64>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("location", &self.location)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The error for a store that cannot be used now; `detail` must hold no secret.
pub fn unavailable(location: &str, detail: &str) -> StoreError {
    StoreError::Backend {
        path: format!("redis at {location}"),
        message: format!("{UNAVAILABLE}{detail}"),
    }
}

/// Whether `e` says the store could not be reached (rather than refusing a value).
pub fn is_unavailable(e: &StoreError) -> bool {
    match e {
        StoreError::Backend { message, .. } => message.starts_with(UNAVAILABLE),
    }
}

/// Whether `url` is a Redis URL this build can connect to; why not, in words that never
/// hold the URL (it may carry a password).
pub fn check_url(url: &str) -> Result<(), String> {
    if url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("rediss://")
    {
        return Err(
            "rediss:// (Redis over TLS) is not supported: use redis:// on a private network, or through a TLS tunnel such as stunnel".into(),
        );
    }
    redis::Client::open(url).map(|_| ()).map_err(|e| {
        format!(
            "the Redis URL does not parse ({:?}): expected redis://[:password@]host:port[/db]",
            e.kind()
        )
    })
}

impl Redis {
    /// Connect to `url` (`redis://[:password@]host:port[/db]`) with keys under `prefix`.
    /// Fails (with a message that never holds the password) when the URL does not parse
    /// or the server does not answer within [`CALL_TIMEOUT`].
    pub async fn connect(url: &str, prefix: &str) -> Result<Redis, StoreError> {
        Self::open(url, prefix, false).await
    }

    /// Like [`Redis::connect`], but without reaching the server now: the first call
    /// connects (and fails with "state store unavailable" while it cannot). A gateway
    /// starts like this, so it serves `/health` 503 until Redis answers.
    pub async fn connect_lazily(url: &str, prefix: &str) -> Result<Redis, StoreError> {
        Self::open(url, prefix, true).await
    }

    async fn open(url: &str, prefix: &str, lazy: bool) -> Result<Redis, StoreError> {
        // Not "unavailable": no server would help; the URL itself needs fixing.
        check_url(url).map_err(|message| StoreError::Backend {
            path: "redis (the URL of session.redisUrl or session.redisUrlRef)".into(),
            message,
        })?;
        let client = redis::Client::open(url)
            .map_err(|e| unavailable("(unparsed URL)", &format!("{:?}", e.kind())))?;
        // TCP_NODELAY: a command goes out at once instead of waiting for the server's
        // delayed ACK of the previous one (Nagle), which added up to 40 ms to a turn.
        let info = client.get_connection_info().clone();
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let client = redis::Client::open(info.set_tcp_settings(tcp))
            .map_err(|e| unavailable("(unparsed URL)", &format!("{:?}", e.kind())))?;
        let info = client.get_connection_info();
        let location: Arc<str> = info.addr().to_string().into();
        let password: Option<Arc<str>> = info
            .redis_settings()
            .password()
            .filter(|p| !p.is_empty())
            .map(Arc::from);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let scrub_e = |e: RedisError| scrub(password.as_deref(), &e.to_string());
        let conn = if lazy {
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| unavailable(&location, &scrub_e(e)))?
        } else {
            match tokio::time::timeout(
                CALL_TIMEOUT,
                client.get_connection_manager_with_config(config),
            )
            .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(unavailable(&location, &scrub_e(e))),
                Err(_) => {
                    return Err(unavailable(
                        &location,
                        &format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                    ));
                }
            }
        };
        Ok(Redis {
            conn,
            prefix: prefix.into(),
            location,
            password,
            clock: Arc::new(SystemClock),
            last_ok: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The same connection, measuring idleness on `clock` (tests pass a manual one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Redis {
        self.clock = clock;
        self
    }

    /// `<prefix><rest>`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// host:port of the server (no credentials).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A store error about a value the server holds (not about reaching it).
    pub fn err(&self, message: impl Into<String>) -> StoreError {
        StoreError::Backend {
            path: format!("redis at {}", self.location),
            message: scrub(self.password.as_deref(), &message.into()),
        }
    }

    /// Runs `call` on a clone of the connection, bounded by [`CALL_TIMEOUT`], mapping
    /// Redis errors to [`StoreError`] and the raw answer through `then`.
    pub fn call<R, T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
        then: impl FnOnce(R) -> Result<T, String> + Send + 'static,
    ) -> StoreFuture<T>
    where
        F: Future<Output = Result<R, RedisError>> + Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
    {
        let fut = call(self.conn.clone());
        let (location, password) = (self.location.clone(), self.password.clone());
        let idle = self
            .clock
            .now_ms()
            .saturating_sub(self.last_ok.load(Ordering::Relaxed));
        let probe = (idle >= IDLE_PROBE_MS).then(|| self.conn.clone());
        let (clock, last_ok) = (self.clock.clone(), self.last_ok.clone());
        let checked = async move {
            if let Some(mut conn) = probe {
                // Its answer does not matter: failing on a dead connection is what makes
                // the manager reconnect before `fut` sends anything.
                let _ = redis::cmd("PING").query_async::<()>(&mut conn).await;
            }
            fut.await
        };
        Box::pin(async move {
            let answer = match tokio::time::timeout(CALL_TIMEOUT, checked).await {
                Ok(Ok(answer)) => {
                    last_ok.store(clock.now_ms(), Ordering::Relaxed);
                    answer
                }
                Ok(Err(e)) => return Err(redis_error(&location, password.as_deref(), &e)),
                Err(_) => {
                    return Err(unavailable(
                        &location,
                        &format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                    ));
                }
            };
            then(answer).map_err(|m| StoreError::Backend {
                path: format!("redis at {location}"),
                message: scrub(password.as_deref(), &m),
            })
        })
    }

    /// One command, its answer converted to `T`.
    pub fn cmd<T>(&self, cmd: redis::Cmd) -> StoreFuture<T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        self.call(
            move |mut conn| async move { cmd.query_async::<T>(&mut conn).await },
            Ok,
        )
    }

    /// A pipeline (atomic when built with `.atomic()`), its answer converted to `T`.
    pub fn pipe<T>(&self, pipe: redis::Pipeline) -> StoreFuture<T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        self.call(
            move |mut conn| async move { pipe.query_async::<T>(&mut conn).await },
            Ok,
        )
    }

    /// Runs `script` with `keys` and `args`; its answer converted to `T`.
    pub fn script<T>(
        &self,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> StoreFuture<T>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        self.call(
            move |mut conn| async move {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async::<T>(&mut conn).await
            },
            Ok,
        )
    }

    /// Whether the server answers now (`/health`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.cmd::<String>(redis::cmd("PING")).await.map(|_| ())
    }
}

/// `text` with every occurrence of `password` masked.
fn scrub(password: Option<&str>, text: &str) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_string(),
    }
}

/// A Redis error as a [`StoreError`]: connection trouble is "unavailable", anything
/// else (a server-side error) is reported as the server's answer.
fn redis_error(location: &str, password: Option<&str>, e: &RedisError) -> StoreError {
    let detail = scrub(password, &e.to_string());
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        unavailable(location, &detail)
    } else {
        StoreError::Backend {
            path: format!("redis at {location}"),
            message: format!("Redis answered with an error: {detail}"),
        }
    }
}

/// `n` as a Redis integer argument (saturating).
pub fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
