//! `remoteclaw state migrate --to redis` (DESIGN §9): what `state.db` holds, read in one
//! go ([`Snapshot::read`]), counted per kind ([`Counts`]) and copied into Redis
//! ([`RedisImport`], in `migrate/import.rs`) with absolute values, so running the copy
//! twice leaves Redis as once. This module owns the reading and the counting; the key
//! layout stays with the Redis backends (`session::redis`, `state::redis_stores`).

mod import;
mod scripts;

pub use import::{Kept, RedisImport, Written, ledger_key};

use super::{StateDb, StoreError};
use crate::session::Pin;
use rusqlite::Connection;

/// Where the Telegram journal keeps its update offset (`telegram:offset:<botId>`, see
/// `channels::telegram::journal`): `meta` keys with these prefixes are channel offsets.
pub const OFFSET_PREFIXES: &[&str] = &["telegram:offset:"];

/// `meta` keys of cooldown imports done (`usage_import:<file>`, see
/// `auth::cooldown::sqlite`); in Redis the set `cooldowns:imports` holds `<file>`.
pub const IMPORT_MARKER_PREFIX: &str = "usage_import:";

/// One session with its whole history, oldest entry first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub key: String,
    pub model: Option<String>,
    pub pin: Option<Pin>,
    pub rev: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// (role, content), as `Role::as_str` names the role.
    pub history: Vec<(String, String)>,
}

/// One row of `credential_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownRecord {
    pub credential: String,
    /// The model it applies to, or `""` for every model.
    pub model: String,
    pub fingerprint: String,
    pub reason: String,
    pub until: i64,
    pub count: u32,
}

/// One row of `credential_usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    pub credential: String,
    pub last_used: Option<i64>,
    pub last_good: Option<i64>,
}

/// One row of `pairing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRow {
    pub channel: String,
    pub sender: String,
    pub code: String,
    pub label: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_at: Option<i64>,
}

/// One row of `inbox`: answered (a mark) or pending (with what answers it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub channel: String,
    pub id: String,
    pub seq: i64,
    pub payload: String,
    pub answered: bool,
    pub received_at: i64,
    pub answered_at: Option<i64>,
}

/// One row of `usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub session: String,
    pub credential: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub turns: i64,
}

/// Everything `state.db` holds that a Redis store holds too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sessions: Vec<SessionRow>,
    pub cooldowns: Vec<CooldownRecord>,
    pub last_use: Vec<LastUse>,
    /// Cooldown imports done (the `<file>` of `usage_import:<file>`).
    pub import_markers: Vec<String>,
    pub pairing: Vec<PairingRow>,
    pub inbox: Vec<InboxRow>,
    /// (`meta` key, offset)
    pub offsets: Vec<(String, i64)>,
    pub usage: Vec<UsageRow>,
    /// Alert states reported (`alerts` table): (alert key, state).
    pub alerts: Vec<(String, String)>,
}

/// How many records of each kind a copy carries (what the command prints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sessions: usize,
    pub pins: usize,
    pub history_entries: usize,
    pub cooldowns: usize,
    pub pairing: usize,
    pub channel_offsets: usize,
    pub usage_rows: usize,
    pub inbox_marks: usize,
    pub inbox_pending: usize,
    pub alerts: usize,
}

impl Counts {
    /// `(label, count)` in the order the command prints them.
    pub fn lines(&self) -> [(&'static str, usize); 10] {
        [
            ("sessions", self.sessions),
            ("pins", self.pins),
            ("history entries", self.history_entries),
            ("cooldowns", self.cooldowns),
            ("pairing", self.pairing),
            ("channel offsets", self.channel_offsets),
            ("usage rows", self.usage_rows),
            ("inbox marks", self.inbox_marks),
            ("inbox pending", self.inbox_pending),
            ("alerts sent", self.alerts),
        ]
    }
}

impl Snapshot {
    /// Read every table in one read transaction (a consistent view while a gateway
    /// writes). Blocking: from async code run it on the blocking pool.
    pub fn read(db: &StateDb) -> Result<Snapshot, StoreError> {
        db.read(read_all)
    }

    pub fn counts(&self) -> Counts {
        Counts {
            sessions: self.sessions.len(),
            pins: self.sessions.iter().filter(|s| s.pin.is_some()).count(),
            history_entries: self.sessions.iter().map(|s| s.history.len()).sum(),
            cooldowns: self.cooldowns.len(),
            pairing: self.pairing.len(),
            channel_offsets: self.offsets.len(),
            usage_rows: self.usage.len(),
            inbox_marks: self.inbox.iter().filter(|r| r.answered).count(),
            inbox_pending: self.inbox.iter().filter(|r| !r.answered).count(),
            alerts: self.alerts.len(),
        }
    }
}

fn read_all(c: &mut Connection) -> rusqlite::Result<Snapshot> {
    let tx = c.transaction()?;
    let mut out = Snapshot::default();

    let mut stmt = tx.prepare(
        "SELECT key, model, pin_profile, pin_source, pin_since, rev, created_at, updated_at
         FROM sessions ORDER BY key",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out.sessions.push(SessionRow {
            key: r.get(0)?,
            model: r.get(1)?,
            pin: crate::session::sqlite::read_pin(r, 2)?,
            rev: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            history: Vec::new(),
        });
    }
    drop(rows);
    drop(stmt);
    let mut stmt =
        tx.prepare("SELECT role, content FROM history WHERE session_key = ?1 ORDER BY seq")?;
    for s in &mut out.sessions {
        let entries = stmt.query_map([&s.key], |r| {
            let role: String = r.get(0)?;
            Ok((
                crate::providers::Role::from_stored(&role)
                    .as_str()
                    .to_string(),
                r.get::<_, String>(1)?,
            ))
        })?;
        s.history = entries.collect::<rusqlite::Result<_>>()?;
    }
    drop(stmt);

    let mut stmt = tx.prepare(
        "SELECT credential, model, fingerprint, reason, until_ms, error_count
         FROM credential_state ORDER BY credential, model",
    )?;
    out.cooldowns = stmt
        .query_map([], |r| {
            Ok(CooldownRecord {
                credential: r.get(0)?,
                model: r.get(1)?,
                fingerprint: r.get(2)?,
                reason: r.get(3)?,
                until: r.get(4)?,
                count: u32::try_from(r.get::<_, i64>(5)?.max(0)).unwrap_or(u32::MAX),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    let mut stmt = tx.prepare(
        "SELECT credential, last_used, last_good FROM credential_usage ORDER BY credential",
    )?;
    out.last_use = stmt
        .query_map([], |r| {
            Ok(LastUse {
                credential: r.get(0)?,
                last_used: r.get(1)?,
                last_good: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    let mut stmt = tx.prepare("SELECT key, value FROM meta ORDER BY key")?;
    let meta: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    for (key, value) in meta {
        if let Some(marker) = key.strip_prefix(IMPORT_MARKER_PREFIX) {
            out.import_markers.push(marker.to_string());
        } else if OFFSET_PREFIXES.iter().any(|p| key.starts_with(p)) {
            // The journal writes integers; anything else is not an offset it could read.
            match value.parse::<i64>() {
                Ok(v) => out.offsets.push((key, v)),
                Err(_) => tracing::warn!("skipping {key} in meta: its value is not an integer"),
            }
        }
    }

    let mut stmt = tx.prepare("SELECT key, state FROM alerts ORDER BY key")?;
    out.alerts = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    let mut stmt = tx.prepare(
        "SELECT channel, sender, code, label, status, created_at, expires_at, approved_at
         FROM pairing ORDER BY channel, sender",
    )?;
    out.pairing = stmt
        .query_map([], |r| {
            Ok(PairingRow {
                channel: r.get(0)?,
                sender: r.get(1)?,
                code: r.get(2)?,
                label: r.get(3)?,
                status: r.get(4)?,
                created_at: r.get(5)?,
                expires_at: r.get(6)?,
                approved_at: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    let mut stmt = tx.prepare(
        "SELECT channel, id, seq, payload, status, received_at, answered_at
         FROM inbox ORDER BY channel, seq, id",
    )?;
    out.inbox = stmt
        .query_map([], |r| {
            Ok(InboxRow {
                channel: r.get(0)?,
                id: r.get(1)?,
                seq: r.get(2)?,
                payload: r.get(3)?,
                answered: r.get::<_, String>(4)? == "answered",
                received_at: r.get(5)?,
                answered_at: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    let mut stmt = tx.prepare(
        "SELECT session, credential, input_tokens, output_tokens, turns
         FROM usage ORDER BY session, credential",
    )?;
    out.usage = stmt
        .query_map([], |r| {
            Ok(UsageRow {
                session: r.get(0)?,
                credential: r.get(1)?,
                input_tokens: r.get::<_, i64>(2)?.max(0),
                output_tokens: r.get::<_, i64>(3)?.max(0),
                turns: r.get::<_, i64>(4)?.max(0),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);

    tx.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_offsets_and_import_markers_from_meta_and_counts_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db")).unwrap();
        db.write(|c| {
            c.execute_batch(
                "INSERT INTO meta VALUES ('telegram:offset:42', '1001');
                 INSERT INTO meta VALUES ('telegram:offset:7', 'garbage');
                 INSERT INTO meta VALUES ('usage_import:/x/auth-profiles.json', '5');
                 INSERT INTO meta VALUES ('something:else', '3');
                 INSERT INTO sessions (key, model, pin_profile, pin_source, pin_since, rev, created_at, updated_at)
                   VALUES ('web:a', 'openai/gpt-4o', 'openai:work', NULL, NULL, 3, 1, 2);
                 INSERT INTO history VALUES ('web:a', 2, 'assistant', 'b', 2);
                 INSERT INTO history VALUES ('web:a', 1, 'user', 'a', 1);
                 INSERT INTO inbox VALUES ('telegram:42', '9', 1, '{}', 'pending', 5, NULL);
                 INSERT INTO inbox VALUES ('telegram:42', '8', 0, '', 'answered', 4, 6);",
            )
        })
        .unwrap();
        let snap = Snapshot::read(&db).unwrap();
        assert_eq!(snap.offsets, vec![("telegram:offset:42".to_string(), 1001)]);
        assert_eq!(
            snap.import_markers,
            vec!["/x/auth-profiles.json".to_string()]
        );
        let s = &snap.sessions[0];
        assert_eq!(
            s.history,
            vec![
                ("user".to_string(), "a".to_string()),
                ("assistant".to_string(), "b".to_string())
            ]
        );
        let pin = s.pin.as_ref().unwrap();
        assert_eq!((pin.profile.as_str(), pin.since), ("openai:work", 0));
        let counts = snap.counts();
        assert_eq!(
            counts,
            Counts {
                sessions: 1,
                pins: 1,
                history_entries: 2,
                channel_offsets: 1,
                inbox_marks: 1,
                inbox_pending: 1,
                ..Counts::default()
            }
        );
    }
}
