//! Two gateway processes (the real binary, each with its own home as on two hosts) over
//! one Redis (DESIGN §9, issue 13): what one replica does the other sees, turns of one
//! session never overlap across them, a killed replica's session is served by the
//! other, and a Redis outage gives clear errors and then recovers without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::{fake_home, spawn_binary, sse_events};
use support::home::TestHome;
use support::redis::RedisServer;

const PROFILES: &str = r#"{"version": 1, "profiles": {
  "openai:team": {"type": "api_key", "provider": "openai", "key": "k-team"},
  "openai:a": {"type": "api_key", "provider": "openai", "key": "k-a"},
  "openai:b": {"type": "api_key", "provider": "openai", "key": "k-b"}}}"#;

/// A home on the shared store; `order` optionally sets `auth.order.openai`.
fn replica_home(fake: &FakeProvider, redis: &RedisServer, order: &str) -> TestHome {
    let extra = format!(
        "\n[session]\nstore = \"redis\"\nredisUrl = \"{}\"\nredisPrefix = \"rc-replicas:\"\n{order}",
        redis.url()
    );
    let home = fake_home(fake, &extra);
    let path = home.write("agents/main/agent/auth-profiles.json", PROFILES);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    home
}

struct Replica {
    child: tokio::process::Child,
    url: String,
    _home: TestHome,
}

impl Replica {
    async fn start(home: TestHome) -> Replica {
        let (child, addr) = spawn_binary(&home).await;
        Replica {
            child,
            url: format!("http://{addr}"),
            _home: home,
        }
    }

    /// One OpenAI-API turn in `session`; returns the status and the JSON body.
    async fn complete(&self, session: &str, model: &str, text: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.url))
            .header("x-remoteclaw-session", session)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// One web chat message (history kept in the session `web:<id>`); the reply text.
    async fn chat(&self, id: &str, text: &str) -> String {
        let body = reqwest::Client::new()
            .post(format!("{}/api/chat", self.url))
            .json(&json!({"session": id, "message": text}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut reply = String::new();
        for (event, data) in sse_events(&body) {
            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            match event.as_str() {
                "delta" => reply.push_str(v["text"].as_str().unwrap_or("")),
                "error" => return format!("error: {data}"),
                _ => {}
            }
        }
        reply
    }

    async fn health(&self) -> (u16, Value) {
        let resp = reqwest::get(format!("{}/health", self.url)).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn reply_text(v: &Value) -> &str {
    v["choices"][0]["message"]["content"].as_str().unwrap_or("")
}

/// Once Redis answers again, `a` answers a turn within 10 s (DESIGN §9) and reports
/// itself healthy.
async fn serves_again_within_10_s(a: &Replica) {
    let back = Instant::now();
    loop {
        let (status, v) = a.complete("s", "remoteclaw", "after").await;
        if status == 200 {
            assert_eq!(reply_text(&v), "fake reply to: after");
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not serving 10 s after Redis came back: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.health().await, (200, json!({"ok": true})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_made_on_one_replica_is_used_by_the_other() {
    let fake = FakeProvider::start().await;
    let redis = RedisServer::start();
    let a = Replica::start(replica_home(&fake, &redis, "")).await;
    let b = Replica::start(replica_home(&fake, &redis, "")).await;

    let (status, v) = a
        .complete(
            "team",
            "remoteclaw",
            "/model openai/gpt-4o-mini@openai:team",
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(reply_text(&v).contains("openai:team"), "{v}");

    let (status, v) = b.complete("team", "remoteclaw", "hello from b").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(reply_text(&v), "fake reply to: hello from b");
    let last = fake.requests().pop().unwrap();
    assert_eq!(
        last.key.as_deref(),
        Some("k-team"),
        "replica B used the pin made on A"
    );
    // A session nobody pinned is not held to the pin.
    b.complete("other", "remoteclaw", "x").await;
    assert_ne!(
        fake.requests().pop().unwrap().key.as_deref(),
        Some("k-team")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_set_by_one_replica_is_honoured_by_the_other() {
    let fake = FakeProvider::start().await;
    let redis = RedisServer::start();
    let order = "[auth.order]\nopenai = [\"openai:a\", \"openai:b\"]\n";
    let a = Replica::start(replica_home(&fake, &redis, order)).await;
    let b = Replica::start(replica_home(&fake, &redis, order)).await;
    fake.script(
        "k-a",
        [Behavior::RateLimit {
            retry_after_secs: Some(600),
        }],
    );

    let (status, v) = a.complete("s1", "openai/gpt-4o-mini", "first").await;
    assert_eq!(status, 200, "{v}");
    let keys: Vec<_> = fake.requests().iter().map(|r| r.key.clone()).collect();
    assert_eq!(
        keys,
        [Some("k-a".to_string()), Some("k-b".to_string())],
        "A rotated past the rate-limited key"
    );

    // A replica looks at the shared cooldowns at most every 250 ms
    // (`state::RECHECK_EVERY`); B may have looked just before A's write.
    tokio::time::sleep(Duration::from_millis(400)).await;
    fake.clear_requests();
    let (status, v) = b.complete("s2", "openai/gpt-4o-mini", "second").await;
    assert_eq!(status, 200, "{v}");
    let keys: Vec<_> = fake.requests().iter().map(|r| r.key.clone()).collect();
    assert_eq!(
        keys,
        [Some("k-b".to_string())],
        "B skipped the key A cooled down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_messages_of_one_session_alternating_replicas_never_overlap_and_answer_in_order() {
    let fake = FakeProvider::start().await;
    fake.set_latency(Duration::from_millis(400));
    let redis = RedisServer::start();
    let a = std::sync::Arc::new(Replica::start(replica_home(&fake, &redis, "")).await);
    let b = std::sync::Arc::new(Replica::start(replica_home(&fake, &redis, "")).await);

    let mut tasks = Vec::new();
    for i in 0..6 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            r.chat("shared", &format!("m{i}")).await
        }));
        // Sent in this order, while the first turns are still running. (The order a
        // replica received them in is not visible from here, so they go 150 ms apart: more
        // than the host's longest stalls, and a turn takes 400 ms.)
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), format!("fake reply to: m{i}"));
    }
    // Each request carried every earlier exchange: the turns ran one after another, in
    // the order sent, whichever replica took them.
    let requests = fake.requests();
    assert_eq!(requests.len(), 6);
    for (i, r) in requests.iter().enumerate() {
        let users: Vec<String> = r.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect();
        let expected: Vec<String> = (0..=i).map(|k| format!("m{k}")).collect();
        assert_eq!(users, expected, "request {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_turn_leaves_its_session_to_the_other() {
    let fake = FakeProvider::start().await;
    let redis = RedisServer::start();
    let mut a = Replica::start(replica_home(&fake, &redis, "")).await;
    let b = Replica::start(replica_home(&fake, &redis, "")).await;
    assert_eq!(b.chat("s", "warm up").await, "fake reply to: warm up");

    fake.set_latency(Duration::from_secs(30));
    let url = a.url.clone();
    let stuck = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/api/chat"))
            .json(&json!({"session": "s", "message": "never answered"}))
            .send()
            .await
    });
    // Wait until A's turn is at the provider, then kill A (SIGKILL).
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.request_count() < 2 {
        assert!(
            Instant::now() < deadline,
            "A's turn never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let _ = stuck.await;
    fake.set_latency(Duration::ZERO);

    let started = Instant::now();
    assert_eq!(
        b.chat("s", "still there?").await,
        "fake reply to: still there?"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the dead replica's turn was freed within the lease TTL ({:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_gives_clear_errors_then_recovers_without_a_restart() {
    let fake = FakeProvider::start().await;
    let mut redis = RedisServer::start();
    let a = Replica::start(replica_home(&fake, &redis, "")).await;
    assert_eq!(a.health().await, (200, json!({"ok": true})));
    assert_eq!(a.complete("s", "remoteclaw", "before").await.0, 200);

    redis.stop();
    let started = Instant::now();
    let (status, body) = a.health().await;
    assert_eq!(
        (status, body),
        (503, json!({"ok": false, "store": "unavailable"}))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, v) = a.complete("s", "remoteclaw", "during").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("state store unavailable: "),
        "{message}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", a.url))
        .json(&json!({"session": "w", "message": "during"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    // A request naming its model reads no session, but the cooldowns other replicas set
    // are in Redis too: once the copy in memory is due for a check (250 ms), it is not
    // answered from the old copy either.
    tokio::time::sleep(remoteclaw::state::RECHECK_EVERY + Duration::from_millis(150)).await;
    let (status, v) = a.complete("s", "openai/gpt-4o-mini", "during").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("state store unavailable: ")),
        "{v}"
    );
    assert_eq!(fake.request_count(), 1, "no turn ran without the store");

    redis.restart();
    serves_again_within_10_s(&a).await;
    let (status, v) = a.complete("s", "openai/gpt-4o-mini", "after").await;
    assert_eq!(status, 200, "{v}");
}

/// A replica started while Redis is down does not exit: it serves, `/health` says 503
/// `store`, turns get "state store unavailable", and once Redis answers it serves turns
/// by itself (DESIGN §9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_while_redis_is_down_serves_once_it_answers() {
    let fake = FakeProvider::start().await;
    let mut redis = RedisServer::start();
    let home = replica_home(&fake, &redis, "");
    redis.stop();
    let a = Replica::start(home).await;
    assert_eq!(
        a.health().await,
        (503, json!({"ok": false, "store": "unavailable"}))
    );
    let (status, v) = a.complete("s", "remoteclaw", "during").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable");
    assert_eq!(fake.request_count(), 0);

    redis.restart();
    serves_again_within_10_s(&a).await;
}

/// The operator CLI on a host of the cluster works on the shared store: a pairing code
/// a replica issued is approved with `remoteclaw pairing approve`, a cooldown is listed
/// and cleared, and a session made through a replica shows in `sessions show`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_cli_works_on_the_shared_store() {
    use remoteclaw::state::redis::Redis;
    use remoteclaw::state::stores::Stores;
    let fake = FakeProvider::start().await;
    let redis = RedisServer::start();
    let home = replica_home(&fake, &redis, "");
    let shared = Stores::redis(Redis::connect(&redis.url(), "rc-replicas:").await.unwrap());
    let clock = remoteclaw::clock::ManualClock::new(remoteclaw::clock::Clock::now_ms(
        &remoteclaw::clock::SystemClock,
    ));
    let pairing = remoteclaw::pairing::PairingStore::with_backend(shared.pairing.clone(), clock);
    let code = pairing
        .request("telegram", "4242", Some("@dora"))
        .await
        .unwrap()
        .code;
    let out = home.run(&["pairing", "list", "--json"]).await;
    assert!(support::home::stdout(&out).contains(&code));
    let out = home.run(&["pairing", "approve", "telegram", &code]).await;
    assert!(out.status.success(), "{}", support::home::stderr(&out));
    assert!(pairing.is_approved("telegram", "4242").await.unwrap());

    let a = Replica::start(replica_home(&fake, &redis, "")).await;
    a.complete("ops", "remoteclaw", "/model openai/gpt-4o")
        .await;
    let out = home.run(&["sessions", "show", "ops", "--json"]).await;
    let v: Value = serde_json::from_str(&support::home::stdout(&out)).unwrap();
    assert_eq!(v["model"], "openai/gpt-4o", "{v}");
    assert_eq!(v["modelSource"], "session");
}
