//! Another process (a CLI) holding a write transaction on `state.db` must not stall the
//! gateway (issue 10, Runtime): `/health` and a turn that needs no write answer while
//! the lock is held, even when a turn that does write is already waiting for it.
//!
//! The waiting writer is what stalled the old gateway: WAL readers are never blocked by
//! another process, but a write of ours waiting for the lock held the one connection
//! (and, for cooldown records, an async worker) while every read queued behind it.
//!
//! The lock holder is `python3` with its `sqlite3` module: it takes the write lock
//! (`BEGIN IMMEDIATE` plus an insert), says `locked`, and holds it until the test tells
//! it to let go — or for 3 s at most, after which it says `timed out`. A stalled gateway
//! answers only after the holder gave up, so the ordering is the assertion: no clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::process::Stdio;
use support::fake_provider::FakeProvider;
use support::gateway::Gateway;
use support::home::TestHome;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Holds the write lock on `argv[1]` until a line arrives on stdin or `argv[2]` seconds
/// pass; commits either way and says which.
const HOLDER: &str = r#"
import select, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cli-write', 'held')")
print("locked", flush=True)
ready, _, _ = select.select([sys.stdin], [], [], float(sys.argv[2]))
db.execute("COMMIT")
print("released" if ready else "timed out", flush=True)
"#;

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn reply(v: &Value) -> (&str, &str) {
    (
        v["model"].as_str().unwrap_or_default(),
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_write_lock_on_state_db_does_not_stall_health_or_a_read_only_turn() {
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", &fake));
    // OpenAI has only an environment key: a turn on it records nothing. Anthropic has a
    // stored profile: a turn on it records the profile's last use (a write).
    home.set("OPENAI_API_KEY", "env-key");
    home.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"work-key"}}}"#,
    );
    let db = home.state_dir().join("state.db");
    let gw = Gateway::start(home, None).await;
    let read_only = chat("openai/gpt-4o-mini", "read only");
    let writing = chat("anthropic/claude-x@anthropic:work", "writing");
    // Both kinds once before the lock, so nothing is loaded for the first time later.
    for body in [&read_only, &writing] {
        let (status, v) = post(&gw.url, body).await;
        assert_eq!(status, 200, "{v}");
    }

    let mut holder = tokio::process::Command::new("python3")
        // Under the gateway's 5 s busy timeout, so a gateway stuck waiting for the lock
        // could not have answered before the holder gives up.
        .args(["-c", HOLDER, &db.display().to_string(), "4.5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut said = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert_eq!(said.next_line().await.unwrap().as_deref(), Some("locked"));

    // A turn that writes reaches the provider, then waits for the lock to record.
    let asked = fake.requests().len();
    let waiting_writer = {
        let (url, body) = (gw.url.clone(), writing.clone());
        tokio::spawn(async move { post(&url, &body).await })
    };
    while fake.requests().len() == asked {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    let health = reqwest::get(format!("{}/health", gw.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap(), json!({"ok": true}));
    let (status, v) = post(&gw.url, &read_only).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        reply(&v),
        ("openai/gpt-4o-mini", "fake reply to: read only")
    );
    assert_eq!(
        fake.requests().last().unwrap().key.as_deref(),
        Some("env-key")
    );

    // Only now let go: the holder must still be holding the lock.
    // (A holder that already gave up has closed its stdin.)
    let mut stdin = holder.stdin.take().unwrap();
    let _ = stdin.write_all(b"go\n").await;
    let _ = stdin.flush().await;
    assert_eq!(
        said.next_line().await.unwrap().as_deref(),
        Some("released"),
        "/health and the read-only turn answered only after the other process let go of state.db"
    );
    assert!(holder.wait().await.unwrap().success());

    let (status, v) = waiting_writer.await.unwrap();
    assert_eq!(
        status, 200,
        "the writing turn finishes once the lock is free: {v}"
    );
    assert_eq!(reply(&v), ("anthropic/claude-x", "fake reply to: writing"));
    gw.shutdown().await;
}

/// Turns read auth-profiles.json from memory between checks; a pin naming a profile
/// that is not there yet looks at the file again, so one the CLI just added works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_added_a_moment_ago_can_be_pinned_at_once() {
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", &fake));
    home.set("OPENAI_API_KEY", "env-key");
    let app = home.app().await;
    let resolver = &app.engine.resolver;
    let first = resolver
        .attempt_list("openai", "openai/gpt-4o-mini", None)
        .await
        .unwrap();
    assert_eq!(first.candidates.len(), 1, "the environment key only");
    home.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"profiles":{"openai:new":{"type":"api_key","provider":"openai","key":"new-key"}}}"#,
    );
    let pinned = resolver
        .attempt_list("openai", "openai/gpt-4o-mini", Some("openai:new"))
        .await
        .unwrap();
    assert_eq!(&*pinned.candidates[0].id, "openai:new");
}
