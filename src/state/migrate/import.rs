//! Writing a [`Snapshot`] into Redis with absolute values, in the layout the Redis
//! backends read (their key helpers build every key here). Idempotent: a second run
//! over the same snapshot leaves Redis as the first did (a session already equal is not
//! touched, usage fields are set rather than added to, answered marks stay answered).
//! Records Redis holds that `state.db` does not are left alone, and so is what Redis has
//! moved on since: a session a replica wrote after it was copied (or that a replica
//! made) keeps Redis's version and its usage, a Telegram offset never goes back, and a
//! cooldown row is replaced only by one that lasts longer. A run after the switch cannot
//! undo an acknowledged `/model` change or lose a conversation.
//!
//! What a copy wrote is remembered in Redis, in the hash `<prefix>migrate:copied` (the
//! ledger: one field per record — session, cooldown row, pairing record, pending
//! message, alert state — holding a digest of the value written). A record the ledger
//! names is written again only while Redis still holds exactly what the copy left: one
//! Redis changed (a revoked or approved pairing, a cooldown a replica set) or removed (a
//! revoked pairing, a cleared cooldown, a deleted session, a pending message answered
//! and pruned) since is kept as Redis has it, and never re-created.

use super::scripts::{ALERT, AT_LEAST, COOLDOWN_ROW, PAIRING, PENDING, SESSION, USAGE};
use super::{InboxRow, Snapshot, UsageRow};
use crate::session::redis::{Generations, history_entry, history_key, listing_key, session_key};
use crate::state::StoreError;
use crate::state::redis::Redis;
use crate::state::redis_stores::{
    ANSWERED, StoredPairing, StoredPending, StoredRow, cooldown_imports_key, cooldown_keys, field,
    inbox_key, offsets_key, pairing_channels_key, pairing_keys, usage_credentials_key,
    usage_session_key,
};
use std::sync::Arc;

/// Most commands one transaction carries (each call is bounded by `CALL_TIMEOUT`).
const BATCH: usize = 256;

/// What a copy changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Sessions written (the others were already equal in Redis, or kept).
    pub sessions_changed: usize,
    /// Sessions Redis has moved on from since they were copied (or that replicas made,
    /// or that were deleted there since a copy): kept as Redis has them, with their usage.
    pub sessions_kept: usize,
    /// Other records kept as Redis has them (changed or removed there since a copy, or
    /// made there), per kind.
    pub kept: Kept,
}

/// Records other than sessions a copy left as Redis has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    pub cooldowns: usize,
    pub pairing: usize,
    pub inbox_pending: usize,
    pub alerts: usize,
}

impl Kept {
    /// `(label, count)` in the order of [`super::Counts::lines`], zeros left out.
    pub fn lines(&self) -> Vec<(&'static str, usize)> {
        [
            ("cooldowns", self.cooldowns),
            ("pairing", self.pairing),
            ("inbox pending", self.inbox_pending),
            ("alerts sent", self.alerts),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// `<prefix>migrate:copied`: the ledger of what copies wrote (see the module doc).
pub fn ledger_key(redis: &Redis) -> String {
    redis.key("migrate:copied")
}

/// The ledger field of one record: its kind and its id parts (as a JSON array, so no
/// two ids share a field whatever characters they hold).
fn ledger_field(kind: &str, parts: &[&str]) -> String {
    format!("{kind}:{}", serde_json::json!(parts))
}

/// Adds 1 to `n` when a record script answered 2 (kept).
fn count_kept(n: &mut usize, answer: i64) {
    if answer == 2 {
        *n += 1;
    }
}

/// Writes a snapshot of `state.db` into the Redis store.
#[derive(Debug, Clone)]
pub struct RedisImport {
    redis: Redis,
    generations: Arc<Generations>,
}

impl RedisImport {
    pub fn new(redis: Redis) -> RedisImport {
        RedisImport {
            redis,
            generations: Arc::new(Generations::new()),
        }
    }

    /// Copy everything; `cooldowns:rev` is bumped once at the end, so running gateways
    /// reload their cooldown books.
    pub async fn write(&self, snap: &Snapshot) -> Result<Written, StoreError> {
        let mut written = Written::default();
        let mut kept = std::collections::HashSet::new();
        for s in &snap.sessions {
            match self.session(s).await? {
                1 => written.sessions_changed += 1,
                2 => {
                    written.sessions_kept += 1;
                    kept.insert(s.key.as_str());
                }
                _ => {}
            }
        }
        written.kept.cooldowns = self.cooldowns(snap).await?;
        for p in &snap.pairing {
            count_kept(&mut written.kept.pairing, self.pairing(p).await?);
        }
        for row in &snap.inbox {
            count_kept(&mut written.kept.inbox_pending, self.inbox(row).await?);
        }
        self.offsets(snap).await?;
        for u in snap
            .usage
            .iter()
            .filter(|u| !kept.contains(u.session.as_str()))
        {
            self.usage(u).await?;
        }
        // What the alerts task reported, so the switch does not repeat an alert.
        let hash = crate::alerts::redis::RedisAlerts::key(&self.redis);
        for (k, v) in &snap.alerts {
            let keys = vec![hash.clone(), ledger_key(&self.redis)];
            let args = vec![k.clone(), v.clone(), ledger_field("alert", &[k])];
            let answer = self.redis.script::<i64>(&ALERT, keys, args).await?;
            count_kept(&mut written.kept.alerts, answer);
        }
        let [.., rev] = cooldown_keys(&self.redis);
        self.redis
            .cmd::<i64>(redis::cmd("INCR").arg(rev).clone())
            .await?;
        Ok(written)
    }

    /// 0 already equal, 1 written, 2 kept (see [`SESSION`]).
    async fn session(&self, s: &super::SessionRow) -> Result<i64, StoreError> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut args = vec![
            s.key.clone(),
            s.rev.to_string(),
            s.created_at.to_string(),
            s.updated_at.to_string(),
            flag(s.model.is_some()),
            s.model.clone().unwrap_or_default(),
            flag(s.pin.is_some()),
        ];
        match &s.pin {
            Some(p) => args.extend([
                p.profile.clone(),
                p.source.as_str().to_string(),
                p.since.to_string(),
            ]),
            None => args.extend([String::new(), String::new(), String::new()]),
        }
        args.push(ledger_field("session", &[&s.key]));
        args.push(self.generations.fresh());
        for (role, content) in &s.history {
            let json = history_entry(role, content).map_err(|e| {
                self.redis
                    .err(format!("a history entry could not be encoded: {e}"))
            })?;
            args.push(json);
        }
        let keys = vec![
            session_key(&self.redis, &s.key),
            listing_key(&self.redis),
            history_key(&self.redis, &s.key),
            ledger_key(&self.redis),
        ];
        self.redis.script::<i64>(&SESSION, keys, args).await
    }

    /// Resolves to how many rows were kept as Redis has them.
    async fn cooldowns(&self, snap: &Snapshot) -> Result<usize, StoreError> {
        let [rows, used, good, _] = cooldown_keys(&self.redis);
        let mut kept = 0;
        for c in &snap.cooldowns {
            let json = self.encode(&StoredRow {
                fingerprint: c.fingerprint.clone(),
                reason: c.reason.clone(),
                until: c.until,
                count: c.count,
            })?;
            let row = field(&c.credential, &c.model, &c.fingerprint);
            let args = vec![
                row.clone(),
                json,
                c.until.to_string(),
                ledger_field("cooldown", &[&row]),
            ];
            let keys = vec![rows.clone(), ledger_key(&self.redis)];
            let answer = self.redis.script::<i64>(&COOLDOWN_ROW, keys, args).await?;
            count_kept(&mut kept, answer);
        }
        for u in &snap.last_use {
            for (hash, at) in [(&used, u.last_used), (&good, u.last_good)] {
                if let Some(t) = at {
                    self.at_least(hash, &u.credential, t).await?;
                }
            }
        }
        let mut commands: Vec<redis::Cmd> = Vec::new();
        let imports = cooldown_imports_key(&self.redis);
        for m in &snap.import_markers {
            commands.push(redis::cmd("SADD").arg(&imports).arg(m).clone());
        }
        self.run(commands).await?;
        Ok(kept)
    }

    /// 0 already there, 1 written, 2 kept (see [`PAIRING`]).
    async fn pairing(&self, p: &super::PairingRow) -> Result<i64, StoreError> {
        let json = self.encode(&StoredPairing {
            code: p.code.clone(),
            label: p.label.clone(),
            status: p.status.clone(),
            created_at: p.created_at,
            expires_at: p.expires_at,
            approved_at: p.approved_at,
        })?;
        let mut keys = pairing_keys(&self.redis, &p.channel).to_vec();
        keys.push(pairing_channels_key(&self.redis));
        keys.push(ledger_key(&self.redis));
        let args = vec![
            p.channel.clone(),
            p.sender.clone(),
            p.code.clone(),
            json,
            ledger_field("pairing", &[&p.channel, &p.sender]),
        ];
        self.redis.script::<i64>(&PAIRING, keys, args).await
    }

    /// 2 when a pending message is kept out (see [`PENDING`]), else 0 or 1.
    async fn inbox(&self, row: &InboxRow) -> Result<i64, StoreError> {
        let key = |part: &str| inbox_key(&self.redis, &row.channel, part);
        if row.answered {
            let at = row.answered_at.unwrap_or(row.received_at);
            let keys = vec![key(""), key("pending"), key("payload"), key("answered")];
            self.redis
                .script::<i64>(&ANSWERED, keys, vec![row.id.clone(), at.to_string()])
                .await
        } else {
            let record = self.encode(&StoredPending {
                payload: row.payload.clone(),
                received_at: row.received_at,
            })?;
            let keys = vec![
                key(""),
                key("pending"),
                key("payload"),
                key("seq"),
                ledger_key(&self.redis),
            ];
            let args = vec![
                row.id.clone(),
                row.seq.to_string(),
                record,
                ledger_field("pending", &[&row.channel, &row.id]),
            ];
            self.redis.script::<i64>(&PENDING, keys, args).await
        }
    }

    async fn offsets(&self, snap: &Snapshot) -> Result<(), StoreError> {
        let key = offsets_key(&self.redis);
        for (k, v) in &snap.offsets {
            self.at_least(&key, k, *v).await?;
        }
        Ok(())
    }

    /// `hash.field = value` unless it already holds as much ([`AT_LEAST`]).
    async fn at_least(&self, hash: &str, field: &str, value: i64) -> Result<(), StoreError> {
        let args = vec![field.to_string(), value.to_string()];
        self.redis
            .script::<i64>(&AT_LEAST, vec![hash.to_string()], args)
            .await?;
        Ok(())
    }

    async fn usage(&self, u: &UsageRow) -> Result<(), StoreError> {
        let keys = vec![
            usage_session_key(&self.redis, &u.session),
            usage_credentials_key(&self.redis),
        ];
        let args = vec![
            u.credential.clone(),
            u.input_tokens.to_string(),
            u.output_tokens.to_string(),
            u.turns.to_string(),
        ];
        self.redis.script::<i64>(&USAGE, keys, args).await?;
        Ok(())
    }

    /// Runs `commands` in transactions of at most [`BATCH`].
    async fn run(&self, commands: Vec<redis::Cmd>) -> Result<(), StoreError> {
        for chunk in commands.chunks(BATCH) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for c in chunk {
                pipe.add_command(c.clone()).ignore();
            }
            self.redis.pipe::<()>(pipe).await?;
        }
        Ok(())
    }

    fn encode<T: serde::Serialize>(&self, value: &T) -> Result<String, StoreError> {
        serde_json::to_string(value)
            .map_err(|e| self.redis.err(format!("cannot encode a record: {e}")))
    }
}
