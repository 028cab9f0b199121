//! Writing a [`Snapshot`] into Redis with absolute values, in the layout the Redis
//! backends read (their key helpers build every key here). Idempotent: a second run
//! over the same snapshot leaves Redis as the first did (a session already equal is not
//! touched, usage fields are set rather than added to, answered marks stay answered).
//! Records Redis holds that `state.db` does not are left alone, and so is what Redis has
//! moved on since: a session a replica wrote after it was copied (or that a replica
//! made) keeps Redis's version and its usage, a Telegram offset never goes back, and a
//! cooldown row is replaced only by one that lasts longer. A run after the switch cannot
//! undo an acknowledged `/model` change or lose a conversation.

use super::{InboxRow, Snapshot, UsageRow};
use crate::session::redis::{history_entry, history_key, listing_key, session_key};
use crate::state::StoreError;
use crate::state::redis::Redis;
use crate::state::redis_stores::{
    ANSWERED, StoredPairing, StoredPending, StoredRow, cooldown_imports_key, cooldown_keys, field,
    inbox_key, offsets_key, pairing_channels_key, pairing_keys, usage_credentials_key,
    usage_session_key,
};
use redis::Script;
use std::sync::LazyLock;

/// Most commands one transaction carries (each call is bounded by `CALL_TIMEOUT`).
const BATCH: usize = 256;

/// One session: KEYS session hash, listing, history list. ARGV[1] key, [2] source rev,
/// [3] created_at, [4] updated_at, [5] "1" when a model is chosen, [6] model, [7] "1"
/// when pinned, [8..10] pin profile, source, since; [11..] history entries (JSON).
/// Answers 0 when Redis already holds exactly this session (nothing written), 2 when
/// Redis has moved on from what a copy wrote (its `rev` is not the `imported_rev` the
/// copy left, or no copy made it): kept as it is; else 1, written, with a `rev` above any
/// the replicas saw (max(source, existing + 1)) and `imported_rev` set to it.
static SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #cur, 2 do f[cur[i]] = cur[i + 1] end
if f.rev ~= nil and f.imported_rev ~= f.rev then return 2 end
local want = {created_at = ARGV[3], updated_at = ARGV[4]}
if ARGV[5] == '1' then want.model = ARGV[6] end
if ARGV[7] == '1' then
  want.pin_profile = ARGV[8]; want.pin_source = ARGV[9]; want.pin_since = ARGV[10]
end
local same = f.rev ~= nil
if same then
  for k, _ in pairs(f) do
    if k ~= 'rev' and k ~= 'imported_rev' and f[k] ~= want[k] then same = false end
  end
  for k, _ in pairs(want) do
    if f[k] ~= want[k] then same = false end
  end
end
if same then
  local h = redis.call('LRANGE', KEYS[3], 0, -1)
  if #h ~= #ARGV - 10 then same = false
  else
    for i = 1, #h do
      if h[i] ~= ARGV[i + 10] then same = false; break end
    end
  end
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if same then return 0 end
local rev = tonumber(ARGV[2])
if f.rev then rev = math.max(rev, (tonumber(f.rev) or 0) + 1) end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('HSET', KEYS[1], 'rev', string.format('%.0f', rev))
redis.call('HSET', KEYS[1], 'imported_rev', string.format('%.0f', rev))
for k, v in pairs(want) do redis.call('HSET', KEYS[1], k, v) end
for i = 11, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
return 1
"#,
    )
});

/// A number field that only grows: KEYS hash, ARGV field, value. Sets it when absent or
/// smaller (a Telegram offset, a last-used time).
static AT_LEAST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if cur ~= nil and cur >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// One cooldown row: KEYS rows hash, ARGV field, row JSON, its `until`. Replaces a row
/// only by one that lasts longer (Redis's may hold a later failure than `state.db`).
static COOLDOWN_ROW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local ok, cur = pcall(cjson.decode, raw)
  if ok and type(cur) == 'table' and tonumber(cur['until']) ~= nil
     and tonumber(cur['until']) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// One pairing record: KEYS records, codes, channels. ARGV channel, sender, code,
/// record JSON. Drops the code index entry of the sender's previous code.
static PAIRING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if raw then
  local ok, cur = pcall(cjson.decode, raw)
  if ok and type(cur) == 'table' and type(cur.code) == 'string' and cur.code ~= ARGV[3]
     and redis.call('HGET', KEYS[2], cur.code) == ARGV[2] then
    redis.call('HDEL', KEYS[2], cur.code)
  end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"#,
    )
});

/// One pending message: KEYS status, pending, payload, seq. ARGV id, seq, record.
/// A message Redis already marks answered stays answered (never answered twice); one
/// already pending keeps its place.
static PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == 'answered' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'pending')
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[4]) or '0') then
  redis.call('SET', KEYS[4], ARGV[2])
end
return 1
"#,
    )
});

/// One (session, credential) usage row: KEYS session hash, credentials hash. ARGV
/// credential, input, output, turns. Sets the session's fields to these totals and
/// moves the credential's totals by the difference, so they stay the sum over the
/// sessions (exact below 2^53 tokens; saturates like `ADD_USAGE`).
static USAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local c = ARGV[1]
local function num(v) return tonumber(v or '0') or 0 end
local old_in = num(redis.call('HGET', KEYS[1], 'in:' .. c))
local old_out = num(redis.call('HGET', KEYS[1], 'out:' .. c))
redis.call('HSET', KEYS[1], 'in:' .. c, ARGV[2], 'out:' .. c, ARGV[3], 'turns:' .. c, ARGV[4])
local function add(f, d)
  if d == 0 then return end
  local ok = redis.pcall('HINCRBY', KEYS[2], f, string.format('%.0f', d))
  if type(ok) == 'table' and ok.err then redis.call('HSET', KEYS[2], f, '9223372036854775807') end
end
add('in:' .. c, tonumber(ARGV[2]) - old_in)
add('out:' .. c, tonumber(ARGV[3]) - old_out)
return 1
"#,
    )
});

/// What a copy changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Sessions written (the others were already equal in Redis, or kept).
    pub sessions_changed: usize,
    /// Sessions Redis has moved on from since they were copied (or that replicas made):
    /// kept as Redis has them, with their usage.
    pub sessions_kept: usize,
}

/// Writes a snapshot of `state.db` into the Redis store.
#[derive(Debug, Clone)]
pub struct RedisImport {
    redis: Redis,
}

impl RedisImport {
    pub fn new(redis: Redis) -> RedisImport {
        RedisImport { redis }
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
        self.cooldowns(snap).await?;
        for p in &snap.pairing {
            self.pairing(p).await?;
        }
        for row in &snap.inbox {
            self.inbox(row).await?;
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
        let commands = snap
            .alerts
            .iter()
            .map(|(k, v)| redis::cmd("HSET").arg(&hash).arg(k).arg(v).clone())
            .collect();
        self.run(commands).await?;
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
        ];
        self.redis.script::<i64>(&SESSION, keys, args).await
    }

    async fn cooldowns(&self, snap: &Snapshot) -> Result<(), StoreError> {
        let [rows, used, good, _] = cooldown_keys(&self.redis);
        for c in &snap.cooldowns {
            let json = self.encode(&StoredRow {
                fingerprint: c.fingerprint.clone(),
                reason: c.reason.clone(),
                until: c.until,
                count: c.count,
            })?;
            let args = vec![
                field(&c.credential, &c.model, &c.fingerprint),
                json,
                c.until.to_string(),
            ];
            self.redis
                .script::<i64>(&COOLDOWN_ROW, vec![rows.clone()], args)
                .await?;
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
        self.run(commands).await
    }

    async fn pairing(&self, p: &super::PairingRow) -> Result<(), StoreError> {
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
        let args = vec![p.channel.clone(), p.sender.clone(), p.code.clone(), json];
        self.redis.script::<i64>(&PAIRING, keys, args).await?;
        Ok(())
    }

    async fn inbox(&self, row: &InboxRow) -> Result<(), StoreError> {
        let key = |part: &str| inbox_key(&self.redis, &row.channel, part);
        if row.answered {
            let at = row.answered_at.unwrap_or(row.received_at);
            let keys = vec![key(""), key("pending"), key("payload"), key("answered")];
            self.redis
                .script::<i64>(&ANSWERED, keys, vec![row.id.clone(), at.to_string()])
                .await?;
        } else {
            let record = self.encode(&StoredPending {
                payload: row.payload.clone(),
                received_at: row.received_at,
            })?;
            let keys = vec![key(""), key("pending"), key("payload"), key("seq")];
            let args = vec![row.id.clone(), row.seq.to_string(), record];
            self.redis.script::<i64>(&PENDING, keys, args).await?;
        }
        Ok(())
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
