//! One suite for every `SessionStore` backend (issue 13): each test below is written once
//! against `Arc<dyn SessionStore>` and run twice by `both_backends!`, on the embedded
//! SQLite store and on a Redis store backed by a private `redis-server` (see
//! `support::redis`). Redis alone also has to survive its server going away: a clear
//! error within the call timeout, then service again once the server is back, with the
//! same store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::clock::ManualClock;
use remoteclaw::providers::ChatMessage;
use remoteclaw::session::redis::RedisStore;
use remoteclaw::session::sqlite::SqliteStore;
use remoteclaw::session::{Pin, PinSource, SessionManager, SessionStore};
use remoteclaw::state::redis::{IDLE_PROBE_MS, Redis};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis::RedisServer;

/// A store and what keeps it alive (its directory or its server).
struct Backend {
    store: Arc<dyn SessionStore>,
    _dir: Option<tempfile::TempDir>,
    server: Option<RedisServer>,
}

impl Backend {
    async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        Backend {
            store: Arc::new(store),
            _dir: Some(dir),
            server: None,
        }
    }

    async fn redis() -> Backend {
        let server = RedisServer::start();
        let store = RedisStore::connect(&server.url(), "rc-test:")
            .await
            .unwrap();
        Backend {
            store: Arc::new(store),
            _dir: None,
            server: Some(server),
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = super::Backend::sqlite().await;
                    super::$name(b.store.clone()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = super::Backend::redis().await;
                    super::$name(b.store.clone()).await;
                }
            )*
        }
    };
}

both_backends!(
    set_choice_creates_the_session,
    pins_round_trip_and_can_be_cleared,
    rev_increments_on_every_write,
    history_is_bounded_by_keep,
    clear_history_keeps_model_and_pin,
    delete_removes_everything,
    list_and_summary,
    load_honours_history_limit,
    keys_with_odd_characters_stay_apart,
    concurrent_appends_all_land,
    load_if_changed_skips_an_unchanged_session,
);

fn pin(profile: &str, source: PinSource, since: i64) -> Pin {
    Pin {
        profile: profile.into(),
        source,
        since,
    }
}

fn exchange(i: usize) -> [ChatMessage; 2] {
    [
        ChatMessage::user(format!("u{i}")),
        ChatMessage::assistant(format!("a{i}")),
    ]
}

fn texts(history: &[ChatMessage]) -> Vec<&str> {
    history.iter().map(|m| m.content.as_str()).collect()
}

async fn set_choice_creates_the_session(s: Arc<dyn SessionStore>) {
    assert_eq!(s.rev("web:a").await.unwrap(), 0);
    assert!(s.load("web:a", 10).await.unwrap().is_none());
    assert!(s.summary("web:a").await.unwrap().is_none());
    let rev = s
        .set_choice("web:a", Some("openai/gpt-4o"), None, 1_000)
        .await
        .unwrap();
    assert_eq!(rev, 1, "a new session starts at rev 1");
    let rec = s.load("web:a", 10).await.unwrap().unwrap();
    assert_eq!(rec.key, "web:a");
    assert_eq!(rec.model.as_deref(), Some("openai/gpt-4o"));
    assert_eq!(rec.pin, None);
    assert!(rec.history.is_empty());
    assert_eq!(rec.rev, 1);
    assert_eq!(rec.updated_at, 1_000);
}

async fn pins_round_trip_and_can_be_cleared(s: Arc<dyn SessionStore>) {
    let user = pin("anthropic:work", PinSource::User, 5);
    s.set_choice("k", Some("anthropic/claude-opus-4-5"), Some(&user), 10)
        .await
        .unwrap();
    let rec = s.load("k", 0).await.unwrap().unwrap();
    assert_eq!(rec.model.as_deref(), Some("anthropic/claude-opus-4-5"));
    assert_eq!(rec.pin, Some(user));

    let auto = pin("anthropic:backup", PinSource::Auto, -7);
    s.set_choice("k", Some("anthropic/claude-opus-4-5"), Some(&auto), 11)
        .await
        .unwrap();
    assert_eq!(s.load("k", 0).await.unwrap().unwrap().pin, Some(auto));

    s.set_choice("k", Some("openai/gpt-4o"), None, 12)
        .await
        .unwrap();
    let rec = s.load("k", 0).await.unwrap().unwrap();
    assert_eq!(rec.pin, None, "a choice without a pin clears the pin");
    assert_eq!(rec.model.as_deref(), Some("openai/gpt-4o"));

    s.set_choice("k", None, None, 13).await.unwrap();
    let rec = s.load("k", 0).await.unwrap().unwrap();
    assert_eq!(rec.model, None, "back to the configured default");
    assert_eq!(rec.pin, None);
}

async fn rev_increments_on_every_write(s: Arc<dyn SessionStore>) {
    let mut expected = 0;
    let mut check = |rev: i64| {
        expected += 1;
        assert_eq!(rev, expected);
    };
    check(s.set_choice("k", Some("m/x"), None, 1).await.unwrap());
    check(s.append_history("k", &exchange(0), 10, 2).await.unwrap());
    check(s.clear_history("k", 3).await.unwrap());
    check(
        s.set_choice("k", None, Some(&pin("p", PinSource::User, 1)), 4)
            .await
            .unwrap(),
    );
    check(s.append_history("k", &exchange(1), 10, 5).await.unwrap());
    assert_eq!(s.rev("k").await.unwrap(), 5);
    assert_eq!(s.load("k", 10).await.unwrap().unwrap().rev, 5);
    // A first write of any kind creates the session at 1.
    assert_eq!(s.clear_history("fresh", 6).await.unwrap(), 1);
    assert_eq!(
        s.append_history("fresh2", &exchange(0), 10, 6)
            .await
            .unwrap(),
        1
    );
}

async fn history_is_bounded_by_keep(s: Arc<dyn SessionStore>) {
    for i in 0..6 {
        s.append_history("k", &exchange(i), 4, i as i64)
            .await
            .unwrap();
    }
    let rec = s.load("k", 100).await.unwrap().unwrap();
    assert_eq!(texts(&rec.history), ["u4", "a4", "u5", "a5"]);
    assert_eq!(
        rec.history.iter().map(|m| m.role).collect::<Vec<_>>(),
        [
            remoteclaw::providers::Role::User,
            remoteclaw::providers::Role::Assistant,
            remoteclaw::providers::Role::User,
            remoteclaw::providers::Role::Assistant,
        ]
    );
    assert_eq!(s.summary("k").await.unwrap().unwrap().history_len, 4);
    // An odd bound keeps the newest messages, even mid-exchange.
    s.append_history("k", &exchange(6), 3, 7).await.unwrap();
    let rec = s.load("k", 100).await.unwrap().unwrap();
    assert_eq!(texts(&rec.history), ["a5", "u6", "a6"]);
}

async fn clear_history_keeps_model_and_pin(s: Arc<dyn SessionStore>) {
    let p = pin("openai:x", PinSource::User, 1);
    s.set_choice("k", Some("openai/gpt-4o"), Some(&p), 1)
        .await
        .unwrap();
    s.append_history("k", &exchange(0), 10, 2).await.unwrap();
    s.clear_history("k", 3).await.unwrap();
    let rec = s.load("k", 10).await.unwrap().unwrap();
    assert!(rec.history.is_empty());
    assert_eq!(rec.model.as_deref(), Some("openai/gpt-4o"));
    assert_eq!(rec.pin, Some(p));
    assert_eq!(rec.updated_at, 3);
    assert_eq!(s.summary("k").await.unwrap().unwrap().history_len, 0);
}

async fn delete_removes_everything(s: Arc<dyn SessionStore>) {
    s.set_choice("gone", Some("m/x"), Some(&pin("p", PinSource::Auto, 1)), 1)
        .await
        .unwrap();
    s.append_history("gone", &exchange(0), 10, 2).await.unwrap();
    s.set_choice("stays", Some("m/y"), None, 3).await.unwrap();
    assert!(s.delete("gone").await.unwrap());
    assert!(!s.delete("gone").await.unwrap(), "already gone");
    assert!(s.load("gone", 10).await.unwrap().is_none());
    assert_eq!(s.rev("gone").await.unwrap(), 0);
    assert!(s.summary("gone").await.unwrap().is_none());
    let keys: Vec<String> = s.list().await.unwrap().into_iter().map(|x| x.key).collect();
    assert_eq!(keys, ["stays"]);
    // A session created again under that key starts afresh.
    s.append_history("gone", &exchange(1), 10, 4).await.unwrap();
    let rec = s.load("gone", 10).await.unwrap().unwrap();
    assert_eq!(rec.rev, 1);
    assert_eq!(rec.model, None);
    assert_eq!(rec.pin, None);
    assert_eq!(texts(&rec.history), ["u1", "a1"]);
}

async fn list_and_summary(s: Arc<dyn SessionStore>) {
    assert!(s.list().await.unwrap().is_empty());
    s.set_choice("b", Some("m/b"), None, 20).await.unwrap();
    s.append_history("a", &exchange(0), 10, 10).await.unwrap();
    s.append_history("a", &exchange(1), 10, 30).await.unwrap();
    let p = pin("prof", PinSource::User, 9);
    s.set_choice("c", None, Some(&p), 5).await.unwrap();
    let list = s.list().await.unwrap();
    let order: Vec<(&str, i64, usize)> = list
        .iter()
        .map(|x| (x.key.as_str(), x.updated_at, x.history_len))
        .collect();
    assert_eq!(
        order,
        [("a", 30, 4), ("b", 20, 0), ("c", 5, 0)],
        "newest first"
    );
    assert_eq!(list[1].model.as_deref(), Some("m/b"));
    assert_eq!(list[2].pin, Some(p.clone()));
    let one = s.summary("c").await.unwrap().unwrap();
    assert_eq!(one, list[2]);
    assert_eq!(one.pin, Some(p));
    assert!(s.summary("nope").await.unwrap().is_none());
}

async fn load_honours_history_limit(s: Arc<dyn SessionStore>) {
    for i in 0..3 {
        s.append_history("k", &exchange(i), 100, 1).await.unwrap();
    }
    let newest = |n: usize| {
        let s = s.clone();
        async move { s.load("k", n).await.unwrap().unwrap().history }
    };
    assert!(
        newest(0).await.is_empty(),
        "limit 0: the session without history"
    );
    assert_eq!(texts(&newest(1).await), ["a2"]);
    assert_eq!(texts(&newest(3).await), ["a1", "u2", "a2"]);
    assert_eq!(newest(6).await.len(), 6);
    assert_eq!(newest(1_000).await.len(), 6);
    assert_eq!(newest(usize::MAX).await.len(), 6);
}

async fn keys_with_odd_characters_stay_apart(s: Arc<dyn SessionStore>) {
    let keys = [
        "telegram:-100123:topic:7",
        "telegram:-100123",
        "web:with space",
        "web:ünï 🙂",
        "discord:*?[x]",
        "line\nbreak",
        "session:web:a",
        "history:web:a",
        "web:a",
    ];
    for (i, k) in keys.iter().enumerate() {
        let model = format!("m/{i}");
        s.set_choice(k, Some(&model), None, i as i64).await.unwrap();
        s.append_history(k, &exchange(i), 10, i as i64)
            .await
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        let rec = s.load(k, 10).await.unwrap().unwrap();
        assert_eq!(rec.key, *k);
        assert_eq!(rec.model, Some(format!("m/{i}")), "{k:?}");
        assert_eq!(texts(&rec.history), [format!("u{i}"), format!("a{i}")]);
        assert_eq!(rec.rev, 2, "{k:?}");
    }
    let listed: BTreeSet<String> = s.list().await.unwrap().into_iter().map(|x| x.key).collect();
    assert_eq!(listed, keys.iter().map(|k| k.to_string()).collect());
    assert!(s.delete("telegram:-100123").await.unwrap());
    assert!(
        s.load("telegram:-100123:topic:7", 1)
            .await
            .unwrap()
            .is_some()
    );
}

async fn concurrent_appends_all_land(s: Arc<dyn SessionStore>) {
    const TASKS: usize = 16;
    const EACH: usize = 8;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..EACH {
                let n = t * EACH + i;
                revs.push(
                    s.append_history("busy", &exchange(n), 10_000, n as i64)
                        .await
                        .unwrap(),
                );
            }
            revs
        }));
    }
    let mut revs = BTreeSet::new();
    for h in handles {
        revs.extend(h.await.unwrap());
    }
    let writes = (TASKS * EACH) as i64;
    assert_eq!(
        revs,
        (1..=writes).collect::<BTreeSet<_>>(),
        "every write got its own rev"
    );
    let rec = s.load("busy", usize::MAX).await.unwrap().unwrap();
    assert_eq!(rec.rev, writes);
    assert_eq!(rec.history.len(), TASKS * EACH * 2, "no lost update");
    // Each exchange stays together: a user message is followed by its own reply.
    for pair in rec.history.chunks(2) {
        assert_eq!(pair[0].content[1..], pair[1].content[1..]);
    }
    assert_eq!(
        s.summary("busy").await.unwrap().unwrap().history_len,
        TASKS * EACH * 2
    );
}

async fn load_if_changed_skips_an_unchanged_session(s: Arc<dyn SessionStore>) {
    // Not stored yet: rev 0. Known as absent, nothing to load; unknown (-1), absent.
    assert_eq!(s.load_if_changed("k", 10, "", 0).await.unwrap(), None);
    assert_eq!(
        s.load_if_changed("k", 10, "", -1).await.unwrap(),
        Some(None)
    );
    let rev = s.append_history("k", &exchange(0), 10, 1).await.unwrap();
    let generation = s.load("k", 0).await.unwrap().unwrap().generation;
    assert_eq!(
        s.load_if_changed("k", 10, &generation, rev).await.unwrap(),
        None
    );
    assert!(
        s.load_if_changed("k", 10, "another", rev)
            .await
            .unwrap()
            .is_some(),
        "the same rev of another generation is another session"
    );
    let rec = s
        .load_if_changed("k", 1, &generation, rev - 1)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(rec.rev, rev);
    assert_eq!(texts(&rec.history), ["a0"]);
}

/// Regression (audit s9, repro 4): Redis restarted empty, and a replica kept serving its
/// cached session (old pin, old history) because the session, written anew by another
/// replica, had reached the same revision again. The cache compares the generation too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cached_before_redis_lost_its_data_is_reloaded_at_the_same_rev() {
    let server = RedisServer::start();
    let one = Arc::new(
        RedisStore::connect(&server.url(), "rc-test:")
            .await
            .unwrap(),
    );
    let other = RedisStore::connect(&server.url(), "rc-test:")
        .await
        .unwrap();
    let clock = ManualClock::new(1_000);
    let manager = SessionManager::new(one.clone(), 10, clock);
    let old_pin = pin("openai:a", PinSource::User, 1);
    one.set_choice("web:x", Some("openai/gpt-4o"), Some(&old_pin), 1)
        .await
        .unwrap();
    let rev = one
        .append_history("web:x", &exchange(0), 10, 2)
        .await
        .unwrap();
    {
        let turn = manager.begin("web:x").await.unwrap();
        assert_eq!(turn.state().pin.as_ref(), Some(&old_pin));
        assert_eq!(texts(&turn.state().history), ["u0", "a0"]);
    }

    // Redis loses everything; another replica makes the session again, up to the same rev.
    let admin = Redis::connect(&server.url(), "rc-test:").await.unwrap();
    admin.cmd::<String>(::redis::cmd("FLUSHALL")).await.unwrap();
    let new_pin = pin("openai:b", PinSource::User, 3);
    other
        .set_choice("web:x", Some("openai/gpt-4o"), Some(&new_pin), 3)
        .await
        .unwrap();
    let again = other
        .append_history("web:x", &exchange(9), 10, 4)
        .await
        .unwrap();
    assert_eq!(again, rev, "the new session reached the cached rev");

    let turn = manager.begin("web:x").await.unwrap();
    assert_eq!(turn.state().pin.as_ref(), Some(&new_pin));
    assert_eq!(texts(&turn.state().history), ["u9", "a9"]);
}

/// The Redis store with its server gone answers with a clear error within the call
/// timeout (no hang), and answers again once the server is back, with the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_reported_and_recovered_from() {
    let mut b = Backend::redis().await;
    let s = b.store.clone();
    s.set_choice("k", Some("m/x"), None, 1).await.unwrap();

    let server = b.server.as_mut().unwrap();
    server.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let err = s
            .append_history("k", &exchange(attempt), 10, 2)
            .await
            .expect_err("no server, no write");
        let took = started.elapsed();
        assert!(
            err.to_string().starts_with("state store unavailable: "),
            "{err}"
        );
        assert!(took < Duration::from_secs(3), "answered in {took:?}");
    }
    let started = Instant::now();
    let err = s.load("k", 10).await.expect_err("no server, no read");
    assert!(
        err.to_string().starts_with("state store unavailable: "),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    server.restart();
    // The restarted server is empty; the same store reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rev = loop {
        match s.set_choice("k", Some("m/y"), None, 3).await {
            Ok(rev) => break rev,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the store did not come back after the server did: {e}"
            ),
        }
    };
    assert_eq!(rev, 1, "a fresh server holds nothing");
    let rec = s.load("k", 10).await.unwrap().unwrap();
    assert_eq!(rec.model.as_deref(), Some("m/y"));
}

/// Regression (audit s9, repro 10): after Redis restarted, an idle replica's first call
/// failed with "state store unavailable: broken pipe" however long Redis had been back
/// (the connection manager notices a dead connection only when a command fails on it).
/// A call after a second without one first checks the connection with a PING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_after_redis_restarted_succeeds() {
    let mut server = RedisServer::start();
    let clock = ManualClock::new(1_000_000);
    let redis = Redis::connect(&server.url(), "rc-test:")
        .await
        .unwrap()
        .with_clock(clock.clone());
    let s = RedisStore::new(redis);
    s.set_choice("k", Some("m/x"), None, 1).await.unwrap();
    for round in 0..3 {
        // `restart` returns once the new server answers PING.
        server.restart();
        clock.advance_ms(IDLE_PROBE_MS);
        let rev = s
            .set_choice("k", Some("m/y"), None, 2)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(rev, 1, "a restarted server is empty");
        let rec = s.load("k", 10).await.unwrap().unwrap();
        assert_eq!(rec.model.as_deref(), Some("m/y"));
    }
}

/// Connecting to a server that is not there fails fast, and the URL's password appears
/// in no message.
#[tokio::test]
async fn redis_connect_failure_is_clear_and_keeps_the_password_out() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://:canary-redis-password@127.0.0.1:{port}/0");
    let started = Instant::now();
    let err = RedisStore::connect(&url, "rc-test:").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = format!("{err} {err:?}");
    assert!(text.contains("state store unavailable"), "{text}");
    assert!(!text.contains("canary-redis-password"), "{text}");

    let err = RedisStore::connect("not a url :canary-redis-password", "p:")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("canary-redis-password"), "{text}");
}

/// A store with a password that the server checks works, and its Debug shows no password.
#[tokio::test]
async fn redis_store_debug_shows_no_password() {
    let server = RedisServer::start();
    let url = server
        .url()
        .replace("redis://", "redis://:canary-redis-password@");
    // The private server has no password set: AUTH fails, and says so without the secret.
    match RedisStore::connect(&url, "p:").await {
        Ok(store) => assert!(!format!("{store:?}").contains("canary-redis-password")),
        Err(err) => assert!(!format!("{err} {err:?}").contains("canary-redis-password")),
    }
    let store = RedisStore::connect(&server.url(), "p:").await.unwrap();
    assert!(format!("{store:?}").contains("127.0.0.1"));
}
