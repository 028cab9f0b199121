//! Cooldowns, pairing, the channels' inbox and usage totals in Redis (DESIGN §9), the
//! shared counterparts of the `state.db` tables. Every write that reads before it writes
//! is one Lua script, so replicas never lose each other's updates; plain reads are one
//! command or pipeline. Layout, under the prefix:
//!
//! - `cooldowns` — hash `["<credential>","<model>","<fingerprint>"]` →
//!   `{"fingerprint","reason","until","count"}` (one row per secret; fields of the older
//!   `["<credential>","<model>"]` shape are still read);
//!   `cooldowns:used` / `cooldowns:good` — hashes credential → epoch ms; `cooldowns:rev` —
//!   bumped by every change of a cooldown (the books' staleness check);
//!   `cooldowns:imports` — a set of imported files (paths).
//! - `pairing:<channel>` — hash sender → `{"code","label","status","createdAt","expiresAt","approvedAt"}`;
//!   `pairing-codes:<channel>` — hash code → sender; `pairing-channels` — a set.
//! - `inbox:<channel>` — hash id → `pending` | `answered`; `inbox:<channel>:pending` — sorted
//!   set of ids by arrival; `inbox:<channel>:payload` — hash id → `{"payload","receivedAt"}`;
//!   `inbox:<channel>:answered` — sorted set of ids by answer time; `inbox:<channel>:seq`.
//!   `offsets` — hash key → read position.
//! - `usage:session:<session>` — hash `in:<credential>`, `out:<credential>`,
//!   `turns:<credential>`; `usage:credentials` — hash `in:<credential>`, `out:<credential>`.
//! - `alerts` — hash alert key → the state last reported (`crate::alerts::redis`).
//!
//! Numbers inside JSON records are epoch milliseconds (13 digits), exact in Lua's cjson
//! (14 significant digits).

use super::redis::Redis;
use super::{StoreError, StoreFuture};
use crate::auth::cooldown::{CooldownRow, CooldownState, CooldownStore, ImportEntry, Reason};
use crate::inbox::{InboxStore, PendingMessage, Receipt};
use crate::pairing::{
    Approved, CODE_TTL_MS, CodeGenerator, PairingBackend, PairingEntry, PairingError,
    PairingRequest, PairingStatus,
};
use crate::providers::Usage;
use crate::usage::{Totals, UsageStore};
use redis::Script;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

// ---------------------------------------------------------------- cooldowns

/// One cooldown record (the value of a `cooldowns` field).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredRow {
    pub(crate) fingerprint: String,
    pub(crate) reason: String,
    pub(crate) until: i64,
    pub(crate) count: u32,
}

/// `[cooldowns, cooldowns:used, cooldowns:good, cooldowns:rev]` (the layout above).
pub(crate) fn cooldown_keys(redis: &Redis) -> [String; 4] {
    [
        redis.key("cooldowns"),
        redis.key("cooldowns:used"),
        redis.key("cooldowns:good"),
        redis.key("cooldowns:rev"),
    ]
}

/// `cooldowns:imports`: the set of imported files.
pub(crate) fn cooldown_imports_key(redis: &Redis) -> String {
    redis.key("cooldowns:imports")
}

/// `KEYS[1]` cooldowns, `KEYS[2]` rev; `ARGV[1]` = how many fields follow, then the
/// fields, then fingerprints: deletes each field whose row carries one of them (another
/// agent's credential of the same id keeps its row). Returns how many went.
static DELETE_FIELDS_WITH_FINGERPRINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local nf = tonumber(ARGV[1])
local n = 0
for i = 2, nf + 1 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local ok, row = pcall(cjson.decode, v)
    if ok and type(row) == 'table' then
      for j = nf + 2, #ARGV do
        if row['fingerprint'] == ARGV[j] then
          n = n + redis.call('HDEL', KEYS[1], ARGV[i])
          break
        end
      end
    end
  end
end
if n > 0 then redis.call('INCR', KEYS[2]) end
return n
"#,
    )
});

/// `KEYS[1]` cooldowns, `KEYS[2]` rev; ARGV[1] = field prefix of one credential, or ""
/// for all. Returns how many fields went.
static CLEAR_PREFIX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if ARGV[1] == '' or string.sub(f, 1, #ARGV[1]) == ARGV[1] then
    n = n + redis.call('HDEL', KEYS[1], f)
  end
end
if n > 0 then redis.call('INCR', KEYS[2]) end
return n
"#,
    )
});

/// `KEYS` imports, cooldowns, used, rev; ARGV[1] marker, ARGV[2] JSON
/// `[{"credential", "lastUsed": "<ms>"|null, "rows": [[field, json], ...]}]`.
static IMPORT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for _, e in ipairs(cjson.decode(ARGV[2])) do
  if type(e.lastUsed) == 'string' then
    local cur = tonumber(redis.call('HGET', KEYS[3], e.credential) or '0')
    if tonumber(e.lastUsed) > cur then redis.call('HSET', KEYS[3], e.credential, e.lastUsed) end
  end
  for _, r in ipairs(e.rows) do redis.call('HSETNX', KEYS[2], r[1], r[2]) end
end
redis.call('INCR', KEYS[4])
return 1
"#,
    )
});

/// Cooldowns in Redis.
#[derive(Debug, Clone)]
pub struct RedisCooldowns {
    redis: Redis,
}

impl RedisCooldowns {
    pub fn new(redis: Redis) -> RedisCooldowns {
        RedisCooldowns { redis }
    }

    fn keys(&self) -> [String; 4] {
        cooldown_keys(&self.redis)
    }

    /// Delete those of `fields` whose row carries one of `fingerprints`
    /// ([`DELETE_FIELDS_WITH_FINGERPRINT`]); how many went.
    fn delete_with_fingerprints(
        &self,
        fields: Vec<String>,
        fingerprints: &[String],
    ) -> StoreFuture<i64> {
        let [rows, _, _, rev] = self.keys();
        let mut args = vec![fields.len().to_string()];
        args.extend(fields);
        args.extend(fingerprints.iter().cloned());
        self.redis
            .script::<i64>(&DELETE_FIELDS_WITH_FINGERPRINT, vec![rows, rev], args)
    }
}

/// The hash field of (credential, model, secret fingerprint): a JSON array, so no
/// separator can be forged. One row per secret: two agents' profiles of one id keep a
/// row each.
pub(crate) fn field(credential: &str, model: &str, fingerprint: &str) -> String {
    serde_json::json!([credential, model, fingerprint]).to_string()
}

/// The field of a row written before rows were kept per secret (`[credential, model]`):
/// still read, and cleared with the others.
fn legacy_field(credential: &str, model: &str) -> String {
    serde_json::json!([credential, model]).to_string()
}

/// What every field of one credential starts with.
fn field_prefix(credential: &str) -> String {
    format!("[{},", serde_json::Value::from(credential))
}

fn encode<T: Serialize>(redis: &Redis, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| redis.err(format!("cannot encode a record: {e}")))
}

fn failed<T: Send + 'static>(e: StoreError) -> StoreFuture<T> {
    Box::pin(async move { Err(e) })
}

impl CooldownStore for RedisCooldowns {
    fn shared(&self) -> bool {
        true
    }

    fn version(&self) -> StoreFuture<i64> {
        let [.., rev] = self.keys();
        let fut = self
            .redis
            .cmd::<Option<i64>>(redis::cmd("GET").arg(rev).clone());
        Box::pin(async move { Ok(fut.await?.unwrap_or(0)) })
    }

    fn load(&self) -> StoreFuture<CooldownState> {
        let [rows, used, ..] = self.keys();
        let mut pipe = redis::pipe();
        pipe.atomic().hgetall(rows).hgetall(used);
        let fut = self
            .redis
            .pipe::<(HashMap<String, String>, HashMap<String, i64>)>(pipe);
        let redis = self.redis.clone();
        Box::pin(async move {
            let (rows, used) = fut.await?;
            let mut out = CooldownState::default();
            // Fields of the older `[credential, model]` shape first, so a newer row of
            // the same secret supersedes one (the book keeps one per model and secret).
            let mut fields: Vec<(Vec<String>, String)> = Vec::with_capacity(rows.len());
            for (f, json) in rows {
                match serde_json::from_str::<Vec<String>>(&f) {
                    Ok(parts) if matches!(parts.len(), 2 | 3) => fields.push((parts, json)),
                    _ => tracing::warn!(
                        "ignoring a malformed cooldown field in {}",
                        redis.location()
                    ),
                }
            }
            fields.sort_by_key(|(parts, _)| parts.len());
            for (parts, json) in fields {
                let mut parts = parts.into_iter();
                let (Some(cred), Some(model)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let row: StoredRow = serde_json::from_str(&json)
                    .map_err(|e| redis.err(format!("a cooldown record is not valid: {e}")))?;
                out.rows.push((
                    cred,
                    model,
                    CooldownRow {
                        fingerprint: row.fingerprint,
                        reason: Reason::parse(&row.reason),
                        until: row.until,
                        count: row.count,
                    },
                ));
            }
            out.last_used = used.into_iter().collect();
            Ok(out)
        })
    }

    fn set(&self, credential: &str, scope: &str, row: CooldownRow, now_ms: i64) -> StoreFuture<()> {
        let [rows, used, _, rev] = self.keys();
        let row_field = field(credential, scope, &row.fingerprint);
        let json = match encode(
            &self.redis,
            &StoredRow {
                fingerprint: row.fingerprint,
                reason: row.reason.as_str().to_string(),
                until: row.until,
                count: row.count,
            },
        ) {
            Ok(j) => j,
            Err(e) => return failed(e),
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(rows, row_field, json)
            .ignore()
            .hset(used, credential, now_ms)
            .ignore()
            .incr(rev, 1)
            .ignore();
        self.redis.pipe::<()>(pipe)
    }

    fn touch(&self, credential: &str, now_ms: i64, good: bool) -> StoreFuture<()> {
        // Last-use times order credentials; they do not bump the revision (other
        // replicas pick them up with the next cooldown change).
        let [_, used, good_key, _] = self.keys();
        let mut pipe = redis::pipe();
        pipe.atomic().hset(used, credential, now_ms).ignore();
        if good {
            pipe.hset(good_key, credential, now_ms).ignore();
        }
        self.redis.pipe::<()>(pipe)
    }

    fn clear_standing(
        &self,
        credential: &str,
        model: &str,
        fingerprints: &[String],
    ) -> StoreFuture<()> {
        // The row for this model and the credential-wide one, of each secret, in both
        // field shapes; those whose row carries one of the secrets go.
        let mut fields = vec![
            legacy_field(credential, model),
            legacy_field(credential, ""),
        ];
        for fp in fingerprints {
            fields.push(field(credential, model, fp));
            fields.push(field(credential, "", fp));
        }
        let fut = self.delete_with_fingerprints(fields, fingerprints);
        Box::pin(async move { fut.await.map(|_| ()) })
    }

    fn import_once(
        &self,
        marker: &str,
        entries: Vec<ImportEntry>,
        now_ms: i64,
    ) -> StoreFuture<bool> {
        let [rows, used, _, rev] = self.keys();
        let mut list = Vec::new();
        for e in &entries {
            let mut fields = Vec::new();
            for (reason, until, fp) in e.active(now_ms) {
                let row = StoredRow {
                    fingerprint: fp.to_string(),
                    reason: reason.as_str().to_string(),
                    until,
                    count: e.error_count.unwrap_or(1),
                };
                match encode(&self.redis, &row) {
                    Ok(j) => fields.push((field(&e.credential, "", fp), j)),
                    Err(err) => return failed(err),
                }
            }
            list.push(serde_json::json!({
                "credential": e.credential,
                "lastUsed": e.last_used.map(|t| t.to_string()),
                "rows": fields,
            }));
        }
        let fut = self.redis.script::<i64>(
            &IMPORT,
            vec![cooldown_imports_key(&self.redis), rows, used, rev],
            vec![
                marker.to_string(),
                serde_json::Value::from(list).to_string(),
            ],
        );
        Box::pin(async move { Ok(fut.await? == 1) })
    }

    fn clear_rows(&self, list: Vec<(String, String, String)>) -> StoreFuture<usize> {
        // One script call per row: its field, and the older-shape field when that row
        // carries the same secret.
        let calls: Vec<_> = list
            .iter()
            .map(|(credential, model, fp)| {
                self.delete_with_fingerprints(
                    vec![
                        field(credential, model, fp),
                        legacy_field(credential, model),
                    ],
                    std::slice::from_ref(fp),
                )
            })
            .collect();
        Box::pin(async move {
            let mut n = 0;
            for call in calls {
                n += usize::try_from(call.await?).unwrap_or(0);
            }
            Ok(n)
        })
    }

    fn clear(&self, credential: Option<&str>) -> StoreFuture<usize> {
        let [rows, _, _, rev] = self.keys();
        let prefix = credential.map(field_prefix).unwrap_or_default();
        let fut = self
            .redis
            .script::<i64>(&CLEAR_PREFIX, vec![rows, rev], vec![prefix]);
        Box::pin(async move { Ok(usize::try_from(fut.await?).unwrap_or(0)) })
    }
}

// ---------------------------------------------------------------- pairing

/// One pairing record (the value of a `pairing:<channel>` field).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredPairing {
    pub(crate) code: String,
    pub(crate) label: Option<String>,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) approved_at: Option<i64>,
}

/// `[pairing:<channel>, pairing-codes:<channel>]`.
pub(crate) fn pairing_keys(redis: &Redis, channel: &str) -> [String; 2] {
    [
        redis.key(&format!("pairing:{channel}")),
        redis.key(&format!("pairing-codes:{channel}")),
    ]
}

/// `pairing-channels`: the set of channels with pairing records.
pub(crate) fn pairing_channels_key(redis: &Redis) -> String {
    redis.key("pairing-channels")
}

/// KEYS: records, codes, channels. ARGV: channel, sender, label ("" = none), now,
/// candidate code, ttl, keep expired. Answers the request as JSON, or `taken` when the
/// candidate belongs to someone else.
static REQUEST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[4])
for _, s in ipairs(redis.call('HKEYS', KEYS[1])) do
  local e = cjson.decode(redis.call('HGET', KEYS[1], s))
  if e.status == 'pending' and e.expiresAt <= now - tonumber(ARGV[7]) then
    redis.call('HDEL', KEYS[1], s)
    if redis.call('HGET', KEYS[2], e.code) == s then redis.call('HDEL', KEYS[2], e.code) end
  end
end
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local cur = nil
if raw then cur = cjson.decode(raw) end
if cur and (cur.status == 'approved' or cur.expiresAt > now) then
  if ARGV[3] ~= '' then
    cur.label = ARGV[3]
    redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(cur))
  end
  return cjson.encode({code = cur.code, fresh = false, expiresAt = cur.expiresAt,
                       approved = cur.status == 'approved'})
end
local owner = redis.call('HGET', KEYS[2], ARGV[5])
if owner and owner ~= ARGV[2] then return 'taken' end
local label = cjson.null
if ARGV[3] ~= '' then label = ARGV[3] elseif cur and cur.label then label = cur.label end
if cur and redis.call('HGET', KEYS[2], cur.code) == ARGV[2] then redis.call('HDEL', KEYS[2], cur.code) end
local expires = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode({code = ARGV[5], label = label, status = 'pending',
  createdAt = now, expiresAt = expires, approvedAt = cjson.null}))
redis.call('HSET', KEYS[2], ARGV[5], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return cjson.encode({code = ARGV[5], fresh = true, expiresAt = expires, approved = false})
"#,
    )
});

/// KEYS: records, codes. ARGV: code, now. Answers `unknown`, or JSON
/// `{"outcome": "approved"|"already"|"expired", "sender", "record"}`.
static APPROVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local sender = redis.call('HGET', KEYS[2], ARGV[1])
if not sender then return 'unknown' end
local raw = redis.call('HGET', KEYS[1], sender)
if not raw then return 'unknown' end
local e = cjson.decode(raw)
if e.code ~= ARGV[1] then return 'unknown' end
if e.status == 'approved' then return cjson.encode({outcome = 'already', sender = sender, record = e}) end
if e.expiresAt <= tonumber(ARGV[2]) then return cjson.encode({outcome = 'expired', sender = sender, record = e}) end
e.status = 'approved'
e.approvedAt = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], sender, cjson.encode(e))
return cjson.encode({outcome = 'approved', sender = sender, record = e})
"#,
    )
});

/// KEYS: records, codes. ARGV: sender. 1 when something was forgotten.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local e = cjson.decode(raw)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], e.code) == ARGV[1] then redis.call('HDEL', KEYS[2], e.code) end
return 1
"#,
    )
});

/// How long expired requests are kept (so approving a stale code says "expired").
const EXPIRED_KEEP_MS: i64 = 7 * 24 * 3_600_000;
const MAX_ATTEMPTS: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestAnswer {
    code: String,
    fresh: bool,
    expires_at: i64,
    approved: bool,
}

#[derive(Debug, Deserialize)]
struct ApproveAnswer {
    outcome: String,
    sender: String,
    record: StoredPairing,
}

/// Pairing requests and approvals in Redis.
#[derive(Debug, Clone)]
pub struct RedisPairing {
    redis: Redis,
}

impl RedisPairing {
    pub fn new(redis: Redis) -> RedisPairing {
        RedisPairing { redis }
    }

    fn keys(&self, channel: &str) -> [String; 2] {
        pairing_keys(&self.redis, channel)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(redis: &Redis, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| redis.err(format!("a pairing record is not valid: {e}")))
}

impl PairingBackend for RedisPairing {
    fn request(
        &self,
        channel: &str,
        sender: &str,
        label: Option<&str>,
        now_ms: i64,
        codes: CodeGenerator,
    ) -> StoreFuture<PairingRequest> {
        let mut keys = self.keys(channel).to_vec();
        keys.push(pairing_channels_key(&self.redis));
        let redis = self.redis.clone();
        let args = [
            channel.to_string(),
            sender.to_string(),
            label.unwrap_or("").to_string(),
            now_ms.to_string(),
        ];
        let channel = channel.to_string();
        Box::pin(async move {
            for _ in 0..MAX_ATTEMPTS {
                // The generator reads the OS random source (a file): not on a runtime worker.
                let draw = codes.clone();
                let candidate = tokio::task::spawn_blocking(move || draw())
                    .await
                    .map_err(|e| redis.err(format!("the pairing code task failed: {e}")))?;
                let mut argv = args.to_vec();
                argv.extend([
                    candidate,
                    CODE_TTL_MS.to_string(),
                    EXPIRED_KEEP_MS.to_string(),
                ]);
                let answer: String = redis.script(&REQUEST, keys.clone(), argv).await?;
                if answer == "taken" {
                    continue;
                }
                let a: RequestAnswer = parse_json(&redis, &answer)?;
                return Ok(PairingRequest {
                    code: a.code,
                    fresh: a.fresh,
                    expires_at: a.expires_at,
                    approved: a.approved,
                });
            }
            Err(redis.err(format!(
                "could not find an unused pairing code for {channel} after {MAX_ATTEMPTS} attempts"
            )))
        })
    }

    fn is_approved(&self, channel: &str, sender: &str) -> StoreFuture<bool> {
        let [records, _] = self.keys(channel);
        let fut = self
            .redis
            .cmd::<Option<String>>(redis::cmd("HGET").arg(records).arg(sender).clone());
        let redis = self.redis.clone();
        Box::pin(async move {
            match fut.await? {
                Some(raw) => {
                    let e: StoredPairing = parse_json(&redis, &raw)?;
                    Ok(e.status == "approved")
                }
                None => Ok(false),
            }
        })
    }

    fn approve(
        &self,
        channel: &str,
        code: &str,
        now_ms: i64,
    ) -> StoreFuture<Result<Approved, PairingError>> {
        let fut = self.redis.script::<String>(
            &APPROVE,
            self.keys(channel).to_vec(),
            vec![code.to_string(), now_ms.to_string()],
        );
        let (redis, channel, code) = (self.redis.clone(), channel.to_string(), code.to_string());
        Box::pin(async move {
            let answer = fut.await?;
            if answer == "unknown" {
                return Ok(Err(PairingError::UnknownCode { channel, code }));
            }
            let a: ApproveAnswer = parse_json(&redis, &answer)?;
            let label = a.record.label;
            Ok(match a.outcome.as_str() {
                "already" => Err(PairingError::AlreadyApproved {
                    channel,
                    sender: a.sender,
                    label,
                }),
                "expired" => Err(PairingError::Expired {
                    channel,
                    code,
                    sender: a.sender,
                    label,
                }),
                _ => Ok(Approved {
                    channel,
                    sender: a.sender,
                    label,
                    approved_at: a.record.approved_at.unwrap_or(now_ms),
                }),
            })
        })
    }

    fn list(&self, now_ms: i64) -> StoreFuture<Vec<PairingEntry>> {
        let redis = self.redis.clone();
        let this = self.clone();
        Box::pin(async move {
            let channels: Vec<String> = redis
                .cmd(
                    redis::cmd("SMEMBERS")
                        .arg(pairing_channels_key(&redis))
                        .clone(),
                )
                .await?;
            let mut out = Vec::new();
            for channel in channels {
                let [records, _] = this.keys(&channel);
                let all: HashMap<String, String> = redis
                    .cmd(redis::cmd("HGETALL").arg(records).clone())
                    .await?;
                for (sender, raw) in all {
                    let e: StoredPairing = parse_json(&redis, &raw)?;
                    let approved = e.status == "approved";
                    if !approved && e.expires_at <= now_ms {
                        continue;
                    }
                    out.push(PairingEntry {
                        channel: channel.clone(),
                        sender,
                        code: (!approved).then_some(e.code),
                        label: e.label,
                        status: if approved {
                            PairingStatus::Approved
                        } else {
                            PairingStatus::Pending
                        },
                        created_at: e.created_at,
                        expires_at: e.expires_at,
                        approved_at: e.approved_at,
                    });
                }
            }
            // Pending first, oldest first; then approved, most recent first.
            out.sort_by(|a, b| {
                let key = |e: &PairingEntry| match e.status {
                    PairingStatus::Pending => (0, e.created_at),
                    PairingStatus::Approved => (1, -e.approved_at.unwrap_or(0)),
                };
                key(a)
                    .cmp(&key(b))
                    .then_with(|| a.channel.cmp(&b.channel))
                    .then_with(|| a.sender.cmp(&b.sender))
            });
            Ok(out)
        })
    }

    fn revoke(&self, channel: &str, sender: &str) -> StoreFuture<bool> {
        let fut = self.redis.script::<i64>(
            &REVOKE,
            self.keys(channel).to_vec(),
            vec![sender.to_string()],
        );
        Box::pin(async move { Ok(fut.await? > 0) })
    }
}

// ---------------------------------------------------------------- inbox

/// KEYS: status, pending, payload, seq. ARGV: id, payload JSON.
static RECEIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local st = redis.call('HGET', KEYS[1], ARGV[1])
if st then return st end
redis.call('HSET', KEYS[1], ARGV[1], 'pending')
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 'new'
"#,
    )
});

/// KEYS: status, pending, payload, answered. ARGV: id, now. (`state migrate` copies
/// answered marks with it too.)
pub(crate) static ANSWERED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HSET', KEYS[1], ARGV[1], 'answered')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: status, answered. ARGV: cutoff (exclusive).
static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for _, id in ipairs(ids) do redis.call('HDEL', KEYS[1], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
return #ids
"#,
    )
});

/// A pending message's record (the value of an `inbox:<channel>:payload` field).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredPending {
    pub(crate) payload: String,
    pub(crate) received_at: i64,
}

/// `inbox:<channel>` (`part` empty) or `inbox:<channel>:<part>`.
pub(crate) fn inbox_key(redis: &Redis, channel: &str, part: &str) -> String {
    if part.is_empty() {
        redis.key(&format!("inbox:{channel}"))
    } else {
        redis.key(&format!("inbox:{channel}:{part}"))
    }
}

/// `offsets`: the channels' read positions.
pub(crate) fn offsets_key(redis: &Redis) -> String {
    redis.key("offsets")
}

/// The channels' inbox in Redis: of two replicas receiving one message, exactly one
/// is told it is new.
#[derive(Debug, Clone)]
pub struct RedisInbox {
    redis: Redis,
}

impl RedisInbox {
    pub fn new(redis: Redis) -> RedisInbox {
        RedisInbox { redis }
    }

    fn key(&self, channel: &str, part: &str) -> String {
        inbox_key(&self.redis, channel, part)
    }
}

impl InboxStore for RedisInbox {
    fn receive(&self, channel: &str, id: &str, payload: &str, now_ms: i64) -> StoreFuture<Receipt> {
        let record = match encode(
            &self.redis,
            &StoredPending {
                payload: payload.to_string(),
                received_at: now_ms,
            },
        ) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let fut = self.redis.script::<String>(
            &RECEIVE,
            vec![
                self.key(channel, ""),
                self.key(channel, "pending"),
                self.key(channel, "payload"),
                self.key(channel, "seq"),
            ],
            vec![id.to_string(), record],
        );
        Box::pin(async move {
            Ok(match fut.await?.as_str() {
                "new" => Receipt::New,
                "answered" => Receipt::Answered,
                _ => Receipt::Pending,
            })
        })
    }

    fn answered(&self, channel: &str, id: &str, now_ms: i64) -> StoreFuture<()> {
        let fut = self.redis.script::<i64>(
            &ANSWERED,
            vec![
                self.key(channel, ""),
                self.key(channel, "pending"),
                self.key(channel, "payload"),
                self.key(channel, "answered"),
            ],
            vec![id.to_string(), now_ms.to_string()],
        );
        Box::pin(async move { fut.await.map(|_| ()) })
    }

    fn pending(&self, channel: &str) -> StoreFuture<Vec<PendingMessage>> {
        let (redis, pending, payload) = (
            self.redis.clone(),
            self.key(channel, "pending"),
            self.key(channel, "payload"),
        );
        Box::pin(async move {
            let ids: Vec<String> = redis
                .cmd(redis::cmd("ZRANGE").arg(pending).arg(0).arg(-1).clone())
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let bodies: Vec<Option<String>> = redis
                .cmd(redis::cmd("HMGET").arg(payload).arg(&ids).clone())
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            for (id, body) in ids.into_iter().zip(bodies) {
                // Answered between the two calls: not pending any more.
                let Some(body) = body else { continue };
                let p: StoredPending = serde_json::from_str(&body)
                    .map_err(|e| redis.err(format!("an inbox record is not valid: {e}")))?;
                out.push(PendingMessage {
                    id,
                    payload: p.payload,
                    received_at: p.received_at,
                });
            }
            Ok(out)
        })
    }

    fn prune(&self, channel: &str, cutoff_ms: i64) -> StoreFuture<usize> {
        let fut = self.redis.script::<i64>(
            &PRUNE,
            vec![self.key(channel, ""), self.key(channel, "answered")],
            vec![cutoff_ms.to_string()],
        );
        Box::pin(async move { Ok(usize::try_from(fut.await?).unwrap_or(0)) })
    }

    fn offset(&self, key: &str) -> StoreFuture<Option<i64>> {
        self.redis.cmd(
            redis::cmd("HGET")
                .arg(offsets_key(&self.redis))
                .arg(key)
                .clone(),
        )
    }

    fn set_offset(&self, key: &str, value: i64) -> StoreFuture<()> {
        self.redis.cmd(
            redis::cmd("HSET")
                .arg(offsets_key(&self.redis))
                .arg(key)
                .arg(value)
                .clone(),
        )
    }
}

// ---------------------------------------------------------------- usage

/// KEYS: session hash, credentials hash. ARGV: credential, input, output. Saturates at
/// the largest integer Redis holds instead of failing.
static ADD_USAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local function add(key, f, n)
  local ok = redis.pcall('HINCRBY', key, f, n)
  if type(ok) == 'table' and ok.err then redis.call('HSET', key, f, '9223372036854775807') end
end
add(KEYS[1], 'in:' .. ARGV[1], ARGV[2])
add(KEYS[1], 'out:' .. ARGV[1], ARGV[3])
add(KEYS[1], 'turns:' .. ARGV[1], 1)
add(KEYS[2], 'in:' .. ARGV[1], ARGV[2])
add(KEYS[2], 'out:' .. ARGV[1], ARGV[3])
return 1
"#,
    )
});

/// `usage:session:<session>`: one session's totals per credential.
pub(crate) fn usage_session_key(redis: &Redis, session: &str) -> String {
    redis.key(&format!("usage:session:{session}"))
}

/// `usage:credentials`: totals per credential over every session.
pub(crate) fn usage_credentials_key(redis: &Redis) -> String {
    redis.key("usage:credentials")
}

/// Usage totals in Redis.
#[derive(Debug, Clone)]
pub struct RedisUsage {
    redis: Redis,
}

impl RedisUsage {
    pub fn new(redis: Redis) -> RedisUsage {
        RedisUsage { redis }
    }
}

/// Sums the `in:`/`out:`/`turns:` fields of a usage hash, per credential.
fn per_credential(fields: HashMap<String, i64>) -> BTreeMap<String, (Totals, u64)> {
    let mut out: BTreeMap<String, (Totals, u64)> = BTreeMap::new();
    for (f, v) in fields {
        let v = crate::usage::from_db(v);
        let Some((kind, cred)) = f.split_once(':') else {
            continue;
        };
        let e = out.entry(cred.to_string()).or_default();
        match kind {
            "in" => e.0.input_tokens = e.0.input_tokens.saturating_add(v),
            "out" => e.0.output_tokens = e.0.output_tokens.saturating_add(v),
            "turns" => e.1 = e.1.saturating_add(v),
            _ => {}
        }
    }
    out
}

impl UsageStore for RedisUsage {
    fn record(
        &self,
        session: &str,
        credential: &str,
        usage: Usage,
        _now_ms: i64,
    ) -> StoreFuture<()> {
        let fut = self.redis.script::<i64>(
            &ADD_USAGE,
            vec![
                usage_session_key(&self.redis, session),
                usage_credentials_key(&self.redis),
            ],
            vec![
                credential.to_string(),
                crate::usage::to_db(usage.input_tokens).to_string(),
                crate::usage::to_db(usage.output_tokens).to_string(),
            ],
        );
        Box::pin(async move { fut.await.map(|_| ()) })
    }

    fn session(&self, session: &str) -> StoreFuture<(Totals, u64)> {
        let fut = self.redis.cmd::<HashMap<String, i64>>(
            redis::cmd("HGETALL")
                .arg(usage_session_key(&self.redis, session))
                .clone(),
        );
        Box::pin(async move {
            let mut total = Totals::default();
            let mut turns = 0u64;
            for (t, n) in per_credential(fut.await?).into_values() {
                total.input_tokens = total.input_tokens.saturating_add(t.input_tokens);
                total.output_tokens = total.output_tokens.saturating_add(t.output_tokens);
                turns = turns.saturating_add(n);
            }
            Ok((total, turns))
        })
    }

    fn by_credential(&self) -> StoreFuture<BTreeMap<String, Totals>> {
        let fut = self.redis.cmd::<HashMap<String, i64>>(
            redis::cmd("HGETALL")
                .arg(usage_credentials_key(&self.redis))
                .clone(),
        );
        Box::pin(async move {
            Ok(per_credential(fut.await?)
                .into_iter()
                .map(|(k, (t, _))| (k, t))
                .collect())
        })
    }
}
