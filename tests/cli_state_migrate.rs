//! `remoteclaw state migrate --to redis [--dry-run]` (DESIGN §9, issue 13), through the
//! real binary: a state.db filled by the real SQLite stores is copied into a private
//! `redis-server`, read back through the Redis stores, copied again without change, and
//! served by `sessions show` once the config says `store = "redis"`. Errors: no Redis
//! URL, no state.db, Redis down (the password never printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::cooldown::{CooldownBook, CooldownRow, Reason, Standing};
use remoteclaw::clock::{Clock, ManualClock, SystemClock};
use remoteclaw::config::CooldownConfig;
use remoteclaw::inbox::{Inbox, PendingMessage, Receipt};
use remoteclaw::pairing::PairingStore;
use remoteclaw::providers::{ChatMessage, Role, Usage};
use remoteclaw::session::{Pin, PinSource};
use remoteclaw::state::StateDb;
use remoteclaw::state::redis::Redis;
use remoteclaw::state::stores::Stores;
use std::collections::BTreeMap;
use std::time::Duration;
use support::home::{TestHome, stderr, stdout};
use support::redis::RedisServer;

const PREFIX: &str = "rc-mig:";
const MODEL: &str = "anthropic/claude-sonnet-4-5";
const PASSWORD: &str = "hunter2-canary-pw";

fn config(url: Option<&str>, redis_store: bool) -> String {
    let mut c = String::from("[session]\n");
    if redis_store {
        c.push_str("store = \"redis\"\n");
    }
    if let Some(u) = url {
        c.push_str(&format!("redisUrl = \"{u}\"\nredisPrefix = \"{PREFIX}\"\n"));
    }
    c
}

/// The counts lines every run prints for the state below.
const COUNTS: &[&str] = &[
    "sessions: 2",
    "pins: 1",
    "history entries: 6",
    "cooldowns: 1",
    "pairing: 2",
    "channel offsets: 1",
    "usage rows: 3",
    "inbox marks: 1",
    "inbox pending: 1",
    "alerts sent: 1",
];

/// What was put in state.db, to compare with what Redis serves.
struct Filled {
    now: i64,
    pairing: Vec<remoteclaw::pairing::PairingEntry>,
    by_credential: BTreeMap<String, remoteclaw::usage::Totals>,
}

/// Two sessions (model, pin, history), a cooldown, a pairing approval and a pending
/// request, an answered and a pending inbox message, a Telegram offset, usage.
async fn fill(home: &TestHome) -> Filled {
    let app = home.app().await;
    let s = &app.stores;
    assert!(s.db.is_some(), "the default store is state.db");
    let now = SystemClock.now_ms();
    let pin = Pin {
        profile: "anthropic:work".into(),
        source: PinSource::User,
        since: now - 5,
    };
    s.sessions
        .set_choice("telegram:100", Some(MODEL), Some(&pin), now)
        .await
        .unwrap();
    let talk = [
        ChatMessage::user("hello"),
        ChatMessage::assistant("hi there"),
        ChatMessage::user("again, with\nnewlines  and spaces"),
        ChatMessage::assistant("sure"),
    ];
    s.sessions
        .append_history("telegram:100", &talk, 50, now + 1)
        .await
        .unwrap();
    s.sessions
        .append_history(
            "web:b",
            &[ChatMessage::user("one"), ChatMessage::assistant("two")],
            50,
            now + 2,
        )
        .await
        .unwrap();
    s.sessions
        .set_choice("web:b", Some("openai/gpt-4o"), None, now + 3)
        .await
        .unwrap();
    s.cooldowns
        .set(
            "anthropic:work",
            MODEL,
            CooldownRow {
                fingerprint: "fp1".into(),
                reason: Reason::RateLimit,
                until: now + 60_000,
                count: 2,
            },
            now,
        )
        .await
        .unwrap();
    let clock = ManualClock::new(now);
    let pairing = PairingStore::with_backend(s.pairing.clone(), clock.clone());
    let alice = pairing
        .request("telegram", "111", Some("alice"))
        .await
        .unwrap();
    pairing.approve("telegram", &alice.code).await.unwrap();
    pairing
        .request("discord", "222", Some("bob"))
        .await
        .unwrap();
    let inbox = Inbox::with_store(s.inbox.clone(), clock.clone());
    inbox
        .receive("telegram:42", "500", r#"{"text":"done"}"#)
        .await
        .unwrap();
    inbox.answered("telegram:42", "500").await.unwrap();
    inbox
        .receive("telegram:42", "501", r#"{"text":"waiting"}"#)
        .await
        .unwrap();
    inbox.set_offset("telegram:offset:42", 1001).await.unwrap();
    assert!(
        s.alerts
            .set("telegram:7|cred:main:anthropic:work", Some("expired"), now)
            .await
            .unwrap()
    );
    let u = |i, o| Usage {
        input_tokens: i,
        output_tokens: o,
    };
    s.usage
        .record("telegram:100", "anthropic:work", u(10, 5), now)
        .await
        .unwrap();
    s.usage
        .record("telegram:100", "anthropic:work", u(3, 2), now)
        .await
        .unwrap();
    s.usage
        .record("web:b", "anthropic:work", u(1, 1), now)
        .await
        .unwrap();
    s.usage
        .record("web:b", "env:OPENAI_API_KEY", u(7, 4), now)
        .await
        .unwrap();
    Filled {
        now,
        pairing: pairing.list().await.unwrap(),
        by_credential: s.usage.by_credential().await.unwrap(),
    }
}

async fn redis(server: &RedisServer) -> Redis {
    Redis::connect(&server.url(), PREFIX).await.unwrap()
}

async fn dbsize(server: &RedisServer) -> i64 {
    redis(server)
        .await
        .cmd::<i64>(redis::cmd("DBSIZE"))
        .await
        .unwrap()
}

/// Every key and its value (hashes, lists, sets, sorted sets), for comparing two runs.
async fn dump(server: &RedisServer) -> BTreeMap<String, String> {
    let r = redis(server).await;
    let keys: Vec<String> = r.cmd(redis::cmd("KEYS").arg("*").clone()).await.unwrap();
    let mut out = BTreeMap::new();
    for k in keys {
        let kind: String = r.cmd(redis::cmd("TYPE").arg(&k).clone()).await.unwrap();
        let value = match kind.as_str() {
            "string" => r
                .cmd::<String>(redis::cmd("GET").arg(&k).clone())
                .await
                .unwrap(),
            "hash" => format!(
                "{:?}",
                r.cmd::<BTreeMap<String, String>>(redis::cmd("HGETALL").arg(&k).clone())
                    .await
                    .unwrap()
            ),
            "list" => format!(
                "{:?}",
                r.cmd::<Vec<String>>(redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).clone())
                    .await
                    .unwrap()
            ),
            "set" => {
                let mut m: Vec<String> =
                    r.cmd(redis::cmd("SMEMBERS").arg(&k).clone()).await.unwrap();
                m.sort();
                format!("{m:?}")
            }
            "zset" => format!(
                "{:?}",
                r.cmd::<Vec<String>>(
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .clone()
                )
                .await
                .unwrap()
            ),
            other => panic!("unexpected type {other} of {k}"),
        };
        out.insert(k, format!("{kind} {value}"));
    }
    out
}

fn assert_counts(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    for want in COUNTS {
        assert!(lines.contains(want), "missing {want:?} in:\n{out}");
    }
}

/// Everything in `fill` reads back through the Redis stores.
async fn check_redis(server: &RedisServer, filled: &Filled) {
    let stores = Stores::redis(redis(server).await);
    assert_eq!(
        stores.alerts.load().await.unwrap(),
        vec![(
            "telegram:7|cred:main:anthropic:work".to_string(),
            "expired".to_string()
        )],
        "the alerts already sent are carried over"
    );
    let now = filled.now;
    let rec = stores
        .sessions
        .load("telegram:100", 100)
        .await
        .unwrap()
        .expect("session copied");
    assert_eq!(rec.model.as_deref(), Some(MODEL));
    assert_eq!(
        rec.pin,
        Some(Pin {
            profile: "anthropic:work".into(),
            source: PinSource::User,
            since: now - 5,
        })
    );
    let history: Vec<(Role, &str)> = rec
        .history
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        history,
        vec![
            (Role::User, "hello"),
            (Role::Assistant, "hi there"),
            (Role::User, "again, with\nnewlines  and spaces"),
            (Role::Assistant, "sure"),
        ],
        "history in order, not doubled"
    );
    let web = stores.sessions.load("web:b", 100).await.unwrap().unwrap();
    assert_eq!(
        (web.model.as_deref(), web.pin.is_none(), web.history.len()),
        (Some("openai/gpt-4o"), true, 2)
    );
    let listed: Vec<String> = stores
        .sessions
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(
        listed,
        vec!["web:b", "telegram:100"],
        "listing by updated_at"
    );

    let book = CooldownBook::with_store(stores.cooldowns.clone(), CooldownConfig::default())
        .with_recheck(Duration::ZERO);
    let view = book.view().await;
    assert_eq!(
        view.standing("anthropic:work", "fp1", MODEL, now + 1),
        Some(Standing {
            reason: Reason::RateLimit,
            until: now + 60_000
        })
    );
    assert_eq!(view.last_used("anthropic:work"), Some(now));
    assert_eq!(book.list(now + 1).await.unwrap()[0].error_count, 2);

    let clock = ManualClock::new(now);
    let pairing = PairingStore::with_backend(stores.pairing.clone(), clock.clone());
    assert_eq!(pairing.list().await.unwrap(), filled.pairing);
    assert!(pairing.is_approved("telegram", "111").await.unwrap());
    assert!(!pairing.is_approved("discord", "222").await.unwrap());

    let inbox = Inbox::with_store(stores.inbox.clone(), clock.clone());
    assert_eq!(
        inbox.receive("telegram:42", "500", "{}").await.unwrap(),
        Receipt::Answered,
        "an answered message is never answered again after the switch"
    );
    assert_eq!(
        inbox.pending("telegram:42").await.unwrap(),
        vec![PendingMessage {
            id: "501".into(),
            payload: r#"{"text":"waiting"}"#.into(),
            received_at: now,
        }]
    );
    assert_eq!(
        inbox.offset("telegram:offset:42").await.unwrap(),
        Some(1001)
    );

    let (t, turns) = stores.usage.session("telegram:100").await.unwrap();
    assert_eq!((t.input_tokens, t.output_tokens, turns), (13, 7, 2));
    let (t, turns) = stores.usage.session("web:b").await.unwrap();
    assert_eq!((t.input_tokens, t.output_tokens, turns), (8, 5, 2));
    assert_eq!(
        stores.usage.by_credential().await.unwrap(),
        filled.by_credential,
        "credential totals are the sum over the copied sessions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_every_kind_once_and_is_idempotent() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    let filled = fill(&home).await;
    let db = home.state_dir().join("state.db");

    let dry = home
        .run(&["state", "migrate", "--to", "redis", "--dry-run"])
        .await;
    assert!(dry.status.success(), "stderr: {}", stderr(&dry));
    let out = stdout(&dry);
    assert_eq!(
        out.lines().next().unwrap(),
        format!(
            "state.db at {} → redis at 127.0.0.1:{}, prefix \"{PREFIX}\"",
            db.display(),
            server.port()
        )
    );
    assert_counts(&out);
    assert!(out.contains("--dry-run: nothing written"), "{out}");
    assert_eq!(dbsize(&server).await, 0, "a dry run writes nothing");

    let first = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(first.status.success(), "stderr: {}", stderr(&first));
    let out = stdout(&first);
    assert_counts(&out);
    assert!(!out.contains("nothing written"), "{out}");
    assert!(
        out.contains("2 sessions written, 0 already up to date"),
        "{out}"
    );
    let mut once = dump(&server).await;
    check_redis(&server, &filled).await;

    let second = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(second.status.success(), "stderr: {}", stderr(&second));
    let out = stdout(&second);
    assert_counts(&out);
    assert!(
        out.contains("0 sessions written, 2 already up to date"),
        "{out}"
    );
    let mut twice = dump(&server).await;
    // The cooldown revision moves with every run (gateways reload); nothing else does.
    let rev = format!("{PREFIX}cooldowns:rev");
    let (r1, r2) = (once.remove(&rev).unwrap(), twice.remove(&rev).unwrap());
    assert_eq!((r1.as_str(), r2.as_str()), ("string 1", "string 2"));
    assert_eq!(once, twice, "a second run leaves Redis as the first did");
    check_redis(&server, &filled).await;

    // The sessions CLI serves the copy once the config says so (state.db gone to be sure).
    std::fs::write(
        home.config_path(),
        config(Some(&server.url()), true).as_bytes(),
    )
    .unwrap();
    std::fs::rename(&db, db.with_extension("db.bak")).unwrap();
    let show = home
        .run(&["sessions", "show", "telegram:100", "--json"])
        .await;
    assert!(show.status.success(), "stderr: {}", stderr(&show));
    let j: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(j["key"], "telegram:100");
    assert_eq!(j["model"], MODEL);
    assert_eq!(j["modelSource"], "session");
    assert_eq!(j["pin"]["profile"], "anthropic:work");
    assert_eq!(j["pin"]["source"], "user");
    assert_eq!(j["historyLength"], 4);
    assert_eq!(j["usage"]["inputTokens"], 13);
}

/// A second copy never undoes what Redis moved on since the first: a session a replica
/// wrote (an acknowledged `/model` change, a longer conversation) keeps Redis's version,
/// and its usage stays. A session only state.db moved on (the gateway still on SQLite
/// between two copies) is rewritten, with a `rev` above any a replica saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_copy_keeps_what_redis_moved_on_and_updates_the_rest() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    fill(&home).await;
    let first = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(first.status.success(), "stderr: {}", stderr(&first));
    let stores = Stores::redis(redis(&server).await);
    // A replica already on Redis moves web:b on.
    stores
        .sessions
        .append_history("web:b", &[ChatMessage::user("three")], 50, 7)
        .await
        .unwrap();
    stores
        .sessions
        .set_choice("web:b", Some("openai/o3"), None, 8)
        .await
        .unwrap();
    let replica_rev = stores.sessions.rev("web:b").await.unwrap();
    // Replicas polled on: the Telegram offset moved forward in Redis, and web:b's usage grew.
    let clock = std::sync::Arc::new(SystemClock);
    let inbox = Inbox::with_store(stores.inbox.clone(), clock);
    inbox.set_offset("telegram:offset:42", 2000).await.unwrap();
    let turn = Usage {
        input_tokens: 100,
        output_tokens: 50,
    };
    stores
        .usage
        .record("web:b", "anthropic:work", turn, 10)
        .await
        .unwrap();
    let (usage_before, _) = stores.usage.session("web:b").await.unwrap();
    // state.db moves telegram:100 on.
    let before = stores.sessions.rev("telegram:100").await.unwrap();
    {
        let app = home.app().await;
        app.stores
            .sessions
            .append_history("telegram:100", &[ChatMessage::user("later")], 50, 9)
            .await
            .unwrap();
    }
    let again = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(again.status.success(), "stderr: {}", stderr(&again));
    assert!(
        stdout(&again).contains(
            "1 sessions written, 0 already up to date, 1 kept as Redis has them (written there since they were copied)"
        ),
        "{}",
        stdout(&again)
    );
    let kept = stores.sessions.load("web:b", 100).await.unwrap().unwrap();
    assert_eq!(
        kept.model.as_deref(),
        Some("openai/o3"),
        "the acknowledged change stays"
    );
    assert_eq!(kept.history.len(), 3, "and the replica's conversation");
    assert_eq!(kept.rev, replica_rev);
    let updated = stores
        .sessions
        .load("telegram:100", 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.history.len(), 5, "state.db's newer history");
    assert!(
        updated.rev > before,
        "replicas that saw rev {before} notice the copy"
    );
    assert_eq!(
        inbox.offset("telegram:offset:42").await.unwrap(),
        Some(2000),
        "an offset never goes back (state.db has 1001)"
    );
    assert_eq!(
        stores.usage.session("web:b").await.unwrap().0,
        usage_before,
        "the replica's usage of the kept session stays"
    );
    // A third run changes nothing.
    let third = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(
        stdout(&third).contains("0 sessions written, 1 already up to date, 1 kept"),
        "{}",
        stdout(&third)
    );
}

/// Regression (audit s9, repro 5): a copy run again after the switch brought back a
/// pairing revoked in Redis, reset an approval made there to pending, restored a
/// cooldown cleared there, and re-created a session deleted there. A record a copy wrote
/// and Redis changed or removed since stays as Redis has it, and the run says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_run_again_never_brings_back_what_redis_revoked_cleared_or_deleted() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    let filled = fill(&home).await;
    let first = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(first.status.success(), "stderr: {}", stderr(&first));
    assert!(!stdout(&first).contains("kept"), "{}", stdout(&first));

    // On Redis now: alice revoked, bob approved, the cooldown cleared, web:b deleted, the
    // pending message answered and its mark pruned, the alert resolved.
    let stores = Stores::redis(redis(&server).await);
    let clock = ManualClock::new(filled.now);
    let pairing = PairingStore::with_backend(stores.pairing.clone(), clock.clone());
    assert!(pairing.revoke("telegram", "111").await.unwrap());
    let bob = filled
        .pairing
        .iter()
        .find(|e| e.sender == "222")
        .and_then(|e| e.code.clone())
        .unwrap();
    pairing.approve("discord", &bob).await.unwrap();
    assert_eq!(stores.cooldowns.clear(None).await.unwrap(), 1);
    assert!(stores.sessions.delete("web:b").await.unwrap());
    let inbox = Inbox::with_store(stores.inbox.clone(), clock.clone());
    inbox.answered("telegram:42", "501").await.unwrap();
    inbox.prune("telegram:42", -1).await.unwrap();
    assert!(
        stores
            .alerts
            .set("telegram:7|cred:main:anthropic:work", None, filled.now)
            .await
            .unwrap()
    );

    let again = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(again.status.success(), "stderr: {}", stderr(&again));
    let out = stdout(&again);
    assert_counts(&out);
    assert!(
        !pairing.is_approved("telegram", "111").await.unwrap(),
        "a revoked pairing stays revoked"
    );
    assert!(
        pairing.is_approved("discord", "222").await.unwrap(),
        "an approval made in Redis is not reset to pending"
    );
    let book = CooldownBook::with_store(stores.cooldowns.clone(), CooldownConfig::default())
        .with_recheck(Duration::ZERO);
    assert_eq!(
        book.view()
            .await
            .standing("anthropic:work", "fp1", MODEL, filled.now + 1),
        None,
        "a cleared cooldown stays cleared"
    );
    assert_eq!(
        stores.sessions.load("web:b", 100).await.unwrap(),
        None,
        "a deleted session stays deleted"
    );
    assert_eq!(
        inbox.pending("telegram:42").await.unwrap(),
        vec![],
        "an answered message does not come back as pending"
    );
    assert_eq!(stores.alerts.load().await.unwrap(), vec![]);
    assert!(
        out.contains("0 sessions written, 1 already up to date, 1 kept as Redis has them"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l
            == "kept as Redis has them (changed or removed there since they were copied, or made there): \
                cooldowns 1, pairing 2, inbox pending 1, alerts sent 1"),
        "{out}"
    );

    // And so on every later run.
    let third = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert!(third.status.success(), "stderr: {}", stderr(&third));
    assert!(!pairing.is_approved("telegram", "111").await.unwrap());
    assert_eq!(
        book.view()
            .await
            .standing("anthropic:work", "fp1", MODEL, filled.now + 1),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redis_url_is_an_error_naming_the_key() {
    let home = TestHome::new("");
    StateDb::open(&home.state_dir().join("state.db")).unwrap();
    let out = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("session.redisUrl"), "{err}");
    assert!(
        err.contains("redisUrl = \"redis://"),
        "says how to fix it: {err}"
    );
    assert!(stdout(&out).is_empty());
}

/// No state.db is an empty state: every count 0, exit 0, a note naming the path, and
/// nothing created or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_state_db_copies_nothing_and_names_the_path() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    let out = home.run(&["state", "migrate", "--to", "redis"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = home.state_dir().join("state.db");
    assert!(
        stderr(&out).contains(&db.display().to_string()),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "sessions: 0"), "{text}");
    assert!(text.lines().any(|l| l == "history entries: 0"), "{text}");
    assert!(!db.exists(), "no state.db is created");
    assert_eq!(dbsize(&server).await, 0);
}

/// `--json`: the same counts under camelCase keys, the source and the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_carries_the_counts() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    StateDb::open(&home.state_dir().join("state.db")).unwrap();
    let out = home
        .run(&["state", "migrate", "--to", "redis", "--dry-run", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["to"], format!("127.0.0.1:{}", server.port()));
    assert_eq!(v["counts"]["sessions"], 0);
    assert_eq!(v["counts"]["historyEntries"], 0);
    assert_eq!(v["counts"]["channelOffsets"], 0);
    assert_eq!(v["sessionsWritten"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_state_store_unavailable_without_the_password() {
    let mut server = RedisServer::start();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port());
    server.stop();
    let home = TestHome::new(&config(Some(&url), false));
    StateDb::open(&home.state_dir().join("state.db")).unwrap();
    // The copy fails; the dry run still counts (and warns).
    for (args, code) in [
        (&["state", "migrate", "--to", "redis"][..], 1),
        (&["state", "migrate", "--to", "redis", "--dry-run"][..], 0),
    ] {
        let out = home.run(args).await;
        assert_eq!(out.status.code(), Some(code));
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(e.contains("state store unavailable"), "{e}");
        if code == 0 {
            assert!(o.lines().any(|l| l == "sessions: 0"), "{o}");
            assert!(o.contains("--dry-run: nothing written"), "{o}");
        }
        assert!(
            !o.contains(PASSWORD) && !e.contains(PASSWORD),
            "the password leaked: {o}{e}"
        );
    }
}

/// `--dry-run` writes nothing to state.db, not even the schema that opening a state
/// database adds: a SQLite file of another program's, and an ordinary state.db, stay
/// byte for byte as they were, and the counts are still printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_leaves_the_state_database_untouched() {
    let server = RedisServer::start();
    let home = TestHome::new(&config(Some(&server.url()), false));
    let db = home.state_dir().join("state.db");
    std::fs::create_dir_all(home.state_dir()).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let out = home
        .run(&["state", "migrate", "--to", "redis", "--dry-run"])
        .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("sessions: 0"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "another program's database"
    );

    std::fs::remove_file(&db).unwrap();
    fill(&home).await;
    // The app that filled it closes its connections on threads of its own; the last
    // one to close folds the WAL into state.db and removes it. Compare from then on.
    let wal = home.state_dir().join("state.db-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while wal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "state.db never closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = std::fs::read(&db).unwrap();
    let out = home
        .run(&["state", "migrate", "--to", "redis", "--dry-run"])
        .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_counts(&stdout(&out));
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(dbsize(&server).await, 0, "and nothing in Redis");
}
