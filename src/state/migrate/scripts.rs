//! The Lua scripts `state migrate` writes records with (see `migrate/import.rs`): each
//! checks what Redis holds and the ledger of earlier copies, and writes or keeps one
//! record atomically. Answers: 0 already there, 1 written, 2 kept as Redis has it.

use redis::Script;
use std::sync::LazyLock;

/// One session: KEYS session hash, listing, history list, ledger. ARGV[1] key, [2]
/// source rev, [3] created_at, [4] updated_at, [5] "1" when a model is chosen, [6] model,
/// [7] "1" when pinned, [8..10] pin profile, source, since; [11] ledger field; [12] a
/// fresh generation; [13..] history entries (JSON). Answers 0 when Redis already holds exactly this session
/// (nothing written), 2 when Redis has moved on from what a copy wrote (its `rev` is not
/// the `imported_rev` the copy left, or no copy made it, or it was deleted since a copy):
/// kept as it is; else 1, written, with a `rev` above any the replicas saw (max(source,
/// existing + 1)), `imported_rev` set to it and a new generation (a replica that cached
/// this session at the same `rev` before Redis lost it reloads it).
pub(super) static SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #cur, 2 do f[cur[i]] = cur[i + 1] end
if f.rev == nil and redis.call('HEXISTS', KEYS[4], ARGV[11]) == 1 then return 2 end
if f.rev ~= nil and f.imported_rev ~= f.rev then return 2 end
local want = {created_at = ARGV[3], updated_at = ARGV[4]}
if ARGV[5] == '1' then want.model = ARGV[6] end
if ARGV[7] == '1' then
  want.pin_profile = ARGV[8]; want.pin_source = ARGV[9]; want.pin_since = ARGV[10]
end
local same = f.rev ~= nil
if same then
  for k, _ in pairs(f) do
    if k ~= 'rev' and k ~= 'imported_rev' and k ~= 'generation' and f[k] ~= want[k] then
      same = false
    end
  end
  for k, _ in pairs(want) do
    if f[k] ~= want[k] then same = false end
  end
end
if same then
  local h = redis.call('LRANGE', KEYS[3], 0, -1)
  if #h ~= #ARGV - 12 then same = false
  else
    for i = 1, #h do
      if h[i] ~= ARGV[i + 12] then same = false; break end
    end
  end
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if same then
  redis.call('HSET', KEYS[4], ARGV[11], f.rev)
  return 0
end
local rev = tonumber(ARGV[2])
if f.rev then rev = math.max(rev, (tonumber(f.rev) or 0) + 1) end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('HSET', KEYS[1], 'rev', string.format('%.0f', rev))
redis.call('HSET', KEYS[1], 'imported_rev', string.format('%.0f', rev))
redis.call('HSET', KEYS[1], 'generation', ARGV[12])
for k, v in pairs(want) do redis.call('HSET', KEYS[1], k, v) end
for i = 13, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('HSET', KEYS[4], ARGV[11], string.format('%.0f', rev))
return 1
"#,
    )
});

/// A number field that only grows: KEYS hash, ARGV field, value. Sets it when absent or
/// smaller (a Telegram offset, a last-used time).
pub(super) static AT_LEAST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if cur ~= nil and cur >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#,
    )
});

/// The ledger check every record script but [`SESSION`] starts with. Expects `raw` (what
/// Redis holds now, or false), `new` (what the copy would write), `KEYS[#KEYS]` = the
/// ledger, `ARGV[#ARGV]` = the record's ledger field. Returns from the script with 0
/// when Redis holds `new` already, or 2 when a copy wrote this record and Redis has
/// changed or removed it since (kept). Leaves `copied` true when Redis still holds what
/// a copy wrote.
const LEDGER_LUA: &str = r#"
local ledger, lfield = KEYS[#KEYS], ARGV[#ARGV]
local seen = redis.call('HGET', ledger, lfield)
if raw == new then
  redis.call('HSET', ledger, lfield, redis.sha1hex(new))
  return 0
end
if seen and (not raw or redis.sha1hex(raw) ~= seen) then return 2 end
local copied = seen ~= false and seen ~= nil
"#;

/// Records in the ledger what the script wrote (`new`).
const LEDGER_DONE_LUA: &str = "redis.call('HSET', ledger, lfield, redis.sha1hex(new))\n";

/// One cooldown row: KEYS rows hash, ledger. ARGV field, row JSON, its `until`, ledger
/// field. A row Redis holds that no copy wrote (a replica's) is replaced only by one that
/// lasts longer (Redis's may hold a later failure than `state.db`); one a copy wrote and
/// Redis changed or cleared since is kept (see [`LEDGER_LUA`]).
pub(super) static COOLDOWN_ROW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local new = ARGV[2]
{LEDGER_LUA}
if raw and not copied then
  local ok, cur = pcall(cjson.decode, raw)
  if ok and type(cur) == 'table' and tonumber(cur['until']) ~= nil
     and tonumber(cur['until']) >= tonumber(ARGV[3]) then
    return 2
  end
end
redis.call('HSET', KEYS[1], ARGV[1], new)
{LEDGER_DONE_LUA}
return 1
"#
    ))
});

/// One pairing record: KEYS records, codes, channels, ledger. ARGV channel, sender, code,
/// record JSON, ledger field. Drops the code index entry of the sender's previous code.
/// A record Redis holds that no copy wrote (a replica's) is kept, and so is one a copy
/// wrote and Redis changed (approved) or removed (revoked) since ([`LEDGER_LUA`]).
pub(super) static PAIRING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local new = ARGV[4]
{LEDGER_LUA}
if raw and not copied then return 2 end
if raw then
  local ok, cur = pcall(cjson.decode, raw)
  if ok and type(cur) == 'table' and type(cur.code) == 'string' and cur.code ~= ARGV[3]
     and redis.call('HGET', KEYS[2], cur.code) == ARGV[2] then
    redis.call('HDEL', KEYS[2], cur.code)
  end
end
redis.call('HSET', KEYS[1], ARGV[2], new)
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
{LEDGER_DONE_LUA}
return 1
"#
    ))
});

/// One alert state: KEYS alerts hash, ledger. ARGV alert key, state, ledger field. A
/// state Redis holds that no copy wrote, or that it changed since a copy, is kept.
pub(super) static ALERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local new = ARGV[2]
{LEDGER_LUA}
if raw and not copied then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], new)
{LEDGER_DONE_LUA}
return 1
"#
    ))
});

/// One pending message: KEYS status, pending, payload, seq, ledger. ARGV id, seq,
/// record, ledger field. A message Redis already marks answered stays answered (never
/// answered twice); one already pending keeps its place; one a copy wrote that Redis no
/// longer holds (answered, and its mark pruned) is not brought back.
pub(super) static PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local st = redis.call('HGET', KEYS[1], ARGV[1])
if st == 'answered' then return 0 end
if not st and redis.call('HEXISTS', KEYS[5], ARGV[4]) == 1 then return 2 end
redis.call('HSET', KEYS[5], ARGV[4], '1')
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
pub(super) static USAGE: LazyLock<Script> = LazyLock::new(|| {
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
