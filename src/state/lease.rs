//! Coordination between replicas through Redis (DESIGN §9): the per-session turn
//! queue (turns of one session run one at a time across every replica, in the order
//! they took their tickets) and named leases (one Telegram poller per bot token, one
//! OAuth refresh per credential).
//!
//! Turn queue: a ticket lock. A turn takes the next ticket of its session
//! (`turn:<session>:seq`) and runs when the session's `serving` number reaches it. Every
//! live ticket has a key `turn:<session>:t:<n>` with a TTL ([`LEASE_TTL`]) that its
//! holder renews while it waits and while it runs, and deletes at the end; a waiter that
//! finds the serving ticket's key gone (ended, or its holder died and the TTL ran out)
//! moves `serving` on. So a dead holder blocks its session for at most the TTL.
//!
//! Leases: `lease:<name>` holds the holder's id with a TTL; taking it succeeds when it
//! is free or already ours (which renews it); releasing deletes it only when it is ours.

use super::StoreError;
use super::redis::Redis;
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How long a turn ticket or a lease outlives its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// How often a holder renews (a third of the TTL: two renewals may fail in a row).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Idle sessions' counters go away after this long without a turn.
const COUNTERS_TTL_MS: u64 = 86_400_000;

/// The longest pause between two looks at a busy session's queue.
const MAX_POLL: Duration = Duration::from_millis(25);

/// KEYS: seq, serving. ARGV: ticket key prefix, ttl ms, holder, counters ttl ms.
/// Takes a ticket; answers `{ticket, 1 if it may run now}`.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', ARGV[1] .. t, ARGV[3], 'PX', ARGV[2])
local s = tonumber(redis.call('GET', KEYS[2]) or t)
while s < t do
  if redis.call('EXISTS', ARGV[1] .. s) == 1 then break end
  s = s + 1
end
redis.call('SET', KEYS[2], s, 'PX', ARGV[4])
if s == t then return {t, 1} end
return {t, 0}
"#,
    )
});

/// KEYS: serving. ARGV: ticket key prefix, ticket, counters ttl ms. Moves `serving`
/// past ended tickets; 1 when the ticket may run, 0 when it waits, -1 when it was
/// passed over (its key expired while it waited).
static TRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = tonumber(ARGV[2])
local s = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
while s < t do
  if redis.call('EXISTS', ARGV[1] .. s) == 1 then
    redis.call('SET', KEYS[1], s, 'PX', ARGV[3])
    return 0
  end
  s = s + 1
end
redis.call('SET', KEYS[1], s, 'PX', ARGV[3])
if s == t and redis.call('EXISTS', ARGV[1] .. t) == 1 then return 1 end
return -1
"#,
    )
});

/// KEYS: serving. ARGV: ticket key prefix, ticket, counters ttl ms.
static DONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('DEL', ARGV[1] .. ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') == tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], tonumber(ARGV[2]) + 1, 'PX', ARGV[3])
end
return 1
"#,
    )
});

/// KEYS: lease. ARGV: holder, ttl ms. 1 when the lease is (now) ours.
static LEASE_TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#,
    )
});

/// KEYS: lease. ARGV: holder.
static LEASE_FREE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// Turn queues and leases of one replica.
#[derive(Debug, Clone)]
pub struct Coordinator {
    redis: Redis,
    /// This replica's id (process id and a random part): names it as a holder.
    holder: Arc<str>,
    ttl: Duration,
    /// The runtime the coordinator was made on (the gateway's): claims are renewed
    /// there, wherever they were taken (the Telegram poller has a runtime of its own,
    /// which ends when polling stops).
    runtime: Option<tokio::runtime::Handle>,
    /// The claims this process holds, by name: one set per process, whichever
    /// `Inbox` took them, so a claim is given back once and never twice.
    held: Arc<dashmap::DashMap<String, Claim>>,
}

impl Coordinator {
    pub fn new(redis: Redis) -> Coordinator {
        let holder = format!("{}:{}", std::process::id(), crate::pairing::random_code());
        Coordinator {
            redis,
            holder: holder.into(),
            ttl: LEASE_TTL,
            runtime: tokio::runtime::Handle::try_current().ok(),
            held: Arc::default(),
        }
    }

    fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        match &self.runtime {
            Some(rt) => rt.spawn(task),
            None => tokio::spawn(task),
        }
    }

    /// Use another TTL (tests: a quick takeover).
    pub fn with_ttl(mut self, ttl: Duration) -> Coordinator {
        self.ttl = ttl;
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_ms(&self) -> String {
        self.ttl.as_millis().to_string()
    }

    /// Wait for the session's turn across every replica. The ticket is renewed until
    /// the returned [`TurnTicket`] is dropped, which ends the turn.
    pub async fn turn(&self, session: &str) -> Result<TurnTicket, StoreError> {
        loop {
            let prefix = self.redis.key(&format!("turn:{session}:t:"));
            let serving = self.redis.key(&format!("turn:{session}:serving"));
            let (ticket, now): (i64, i64) = self
                .redis
                .script(
                    &TAKE,
                    vec![
                        self.redis.key(&format!("turn:{session}:seq")),
                        serving.clone(),
                    ],
                    vec![
                        prefix.clone(),
                        self.ttl_ms(),
                        self.holder.to_string(),
                        COUNTERS_TTL_MS.to_string(),
                    ],
                )
                .await?;
            let mut held = TurnTicket {
                redis: self.redis.clone(),
                serving,
                prefix,
                ticket,
                renewer: None,
            };
            held.renewer = Some(self.renew(held.ticket_key()));
            if now == 1 {
                return Ok(held);
            }
            let mut pause = Duration::from_millis(2);
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_POLL);
                let answer: i64 = self
                    .redis
                    .script(
                        &TRY,
                        vec![held.serving.clone()],
                        vec![
                            held.prefix.clone(),
                            ticket.to_string(),
                            COUNTERS_TTL_MS.to_string(),
                        ],
                    )
                    .await?;
                match answer {
                    1 => return Ok(held),
                    0 => continue,
                    // Passed over (the ticket expired while Redis was away): queue again.
                    _ => break,
                }
            }
            tracing::warn!(
                session,
                "a turn ticket expired while waiting: queueing again"
            );
        }
    }

    /// A task that keeps `key` alive until aborted.
    fn renew(&self, key: String) -> tokio::task::JoinHandle<()> {
        let (redis, ttl) = (self.redis.clone(), self.ttl);
        let every = ttl / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let alive: Result<i64, _> = redis
                    .cmd(
                        redis::cmd("PEXPIRE")
                            .arg(&key)
                            .arg(ttl.as_millis().to_string())
                            .clone(),
                    )
                    .await;
                match alive {
                    Ok(1) => {}
                    Ok(_) => {
                        tracing::warn!("a turn ticket expired before its turn ended");
                        return;
                    }
                    Err(e) => tracing::warn!("could not renew a turn ticket: {e}"),
                }
            }
        })
    }

    /// Take the lease `name` (or renew it when it is ours already). Whether it is ours.
    pub async fn take_lease(&self, name: &str) -> Result<bool, StoreError> {
        let answer: i64 = self
            .redis
            .script(
                &LEASE_TAKE,
                vec![self.redis.key(&format!("lease:{name}"))],
                vec![self.holder.to_string(), self.ttl_ms()],
            )
            .await?;
        Ok(answer == 1)
    }

    /// Give the lease `name` back if it is ours.
    pub async fn free_lease(&self, name: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .redis
            .script(
                &LEASE_FREE,
                vec![self.redis.key(&format!("lease:{name}"))],
                vec![self.holder.to_string()],
            )
            .await?;
        Ok(())
    }
}

impl Coordinator {
    /// Hold the claim `name` for this process (see [`Coordinator::claim`]) until
    /// [`Coordinator::release`]: `true` when it is held here (already, or now).
    pub async fn hold_claim(&self, name: &str) -> Result<bool, StoreError> {
        if self.held.contains_key(name) {
            return Ok(true);
        }
        match self.claim(name).await? {
            Some(claim) => {
                self.held.insert(name.to_string(), claim);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Give back the claim `name` if this process holds it.
    pub fn release(&self, name: &str) {
        self.held.remove(name);
    }

    /// Claim `name` for this replica (a lease renewed every third of the TTL until the
    /// [`Claim`] is dropped). `None` when another replica holds it.
    pub async fn claim(&self, name: &str) -> Result<Option<Claim>, StoreError> {
        if !self.take_lease(name).await? {
            return Ok(None);
        }
        let (c, n) = (self.clone(), name.to_string());
        let renewer = self.spawn(async move {
            loop {
                tokio::time::sleep(c.ttl / 3).await;
                match c.take_lease(&n).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(claim = %n, "a claim went to another replica while held");
                        return;
                    }
                    Err(e) => tracing::debug!(claim = %n, "could not renew a claim: {e}"),
                }
            }
        });
        Ok(Some(Claim {
            coordinator: self.clone(),
            name: name.to_string(),
            renewer,
        }))
    }
}

/// A lease this replica holds while it works on something (a message it answers);
/// renewed until dropped, then given back.
#[derive(Debug)]
pub struct Claim {
    coordinator: Coordinator,
    name: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.renewer.abort();
        let (c, name) = (self.coordinator.clone(), std::mem::take(&mut self.name));
        if c.runtime.is_some() || tokio::runtime::Handle::try_current().is_ok() {
            c.clone().spawn(async move {
                if let Err(e) = c.free_lease(&name).await {
                    tracing::debug!(claim = %name, "could not give a claim back: {e}");
                }
            });
        }
    }
}

/// A session's turn across replicas: held until dropped (then the next ticket runs).
#[derive(Debug)]
pub struct TurnTicket {
    redis: Redis,
    serving: String,
    prefix: String,
    ticket: i64,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl TurnTicket {
    fn ticket_key(&self) -> String {
        format!("{}{}", self.prefix, self.ticket)
    }

    /// End the turn now and wait until Redis has it (the drop does the same in the
    /// background).
    pub async fn finish(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let fut = self.done();
        self.ticket = 0;
        if let Err(e) = fut.await {
            tracing::warn!("could not end a turn in the store: {e}");
        }
    }

    /// Stop renewing without ending the turn, as a holder that died would (tests of
    /// the takeover).
    #[doc(hidden)]
    pub fn abandon(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        self.ticket = 0;
    }

    fn done(&self) -> crate::state::StoreFuture<i64> {
        self.redis.script(
            &DONE,
            vec![self.serving.clone()],
            vec![
                self.prefix.clone(),
                self.ticket.to_string(),
                COUNTERS_TTL_MS.to_string(),
            ],
        )
    }
}

impl Drop for TurnTicket {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.ticket == 0 {
            return;
        }
        let fut = self.done();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = fut.await {
                    tracing::warn!("could not end a turn in the store: {e}");
                }
            });
        }
    }
}
