//! Turns of one session across processes sharing a state dir (DESIGN §4, SQLite store):
//! two real `remoteclaw agent` processes (or a gateway and an `agent`) on one `state.db`
//! and one session never reach the provider at once, the second turn sees the first's
//! exchange, and a holder killed mid-turn frees the session at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use support::fake_provider::FakeProvider;
use support::gateway::{Gateway, sse_events};
use support::home::{TestHome, stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const KEY: &str = "sk-turn-lock";
const SESSION: &str = "local:shared";

/// What `turn_lock` logs (at INFO) when another process holds the session.
const WAITING: &str = "is running a turn of this session: waiting for it to end";

fn home(fake: &FakeProvider) -> TestHome {
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", fake));
    home.set("OPENAI_API_KEY", KEY);
    home.set("RUST_LOG", "warn,remoteclaw::session::turn_lock=info");
    home
}

fn agent(home: &TestHome, message: &str) -> Child {
    agent_in(&home.env, SESSION, message)
}

/// `remoteclaw agent --json` in the environment `env` (a home's).
fn agent_in(env: &[(String, String)], session: &str, message: &str) -> Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_remoteclaw"))
        .args([
            "agent",
            "--session",
            session,
            "--message",
            message,
            "--json",
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start remoteclaw agent")
}

/// Wait until the fake has `n` requests of the session's key.
async fn requests(fake: &FakeProvider, n: usize) {
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while fake.requests_for_key(KEY).len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "the fake never saw request {n}");
}

/// Follow the second process until it says it waits for the session, or until its
/// request reaches the fake (no lock kept the turns apart). The rest of its stderr is
/// drained in the background.
async fn waits_or_sends(second: &mut Child, fake: &FakeProvider) -> Result<(), String> {
    let mut lines = BufReader::new(second.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let result = loop {
        tokio::select! {
            line = lines.next_line() => match line.unwrap() {
                Some(l) if l.contains(WAITING) => break Ok(()),
                Some(l) => said.push_str(&format!("{l}\n")),
                None => break Err(format!("the second process ended first; it said:\n{said}")),
            },
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if fake.requests_for_key(KEY).len() > 1 {
                    break Err("the second turn of the session reached the provider while the first was still running".to_string());
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                break Err(format!("the second process neither waited nor sent; it said:\n{said}"));
            }
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    result
}

async fn finish(child: Child) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("remoteclaw agent ends")
        .expect("remoteclaw agent output")
}

fn reply(o: &std::process::Output) -> Value {
    serde_json::from_str::<Value>(stdout(o).trim()).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}\n{}", stdout(o), stderr(o))
    })["reply"]
        .clone()
}

/// `(role, text)` of every message of an OpenAI request.
fn conversation(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                _ => String::new(),
            };
            (m["role"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect()
}

/// Regression: with the SQLite store, two processes on one state dir (here two `agent`
/// runs; the gateway and an `agent` alike) ran turns of one session at the same time:
/// both reached the provider at once, and the second's history lacked the first's
/// exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_turns_of_one_session_one_at_a_time() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);
    fake.hold();
    let first = agent(&home, "first question");
    requests(&fake, 1).await;
    let mut second = agent(&home, "second question");
    let waited = waits_or_sends(&mut second, &fake).await;
    fake.release();
    let (first, second_out) = (finish(first).await, finish(second).await);
    waited.unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second_out.status.success(), "{}", stderr(&second_out));
    assert_eq!(reply(&first), "fake reply to: first question");
    assert_eq!(reply(&second_out), "fake reply to: second question");

    assert_eq!(
        fake.peak_in_flight(),
        1,
        "the provider saw two turns at once"
    );
    let reqs = fake.requests_for_key(KEY);
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        conversation(&reqs[1].body),
        pairs(&[
            ("user", "first question"),
            ("assistant", "fake reply to: first question"),
            ("user", "second question"),
        ]),
        "the second turn carries the first one's exchange"
    );
}

/// The lock is the kernel's: a process killed in the middle of a turn lets the next
/// process's turn of the session run at once (no lease to run out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_turn_frees_the_session_for_the_next() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);
    fake.hold();
    let mut first = agent(&home, "lost question");
    requests(&fake, 1).await;
    let mut second = agent(&home, "next question");
    let waited = waits_or_sends(&mut second, &fake).await;
    first.kill().await.expect("kill the first process");
    requests(&fake, 2).await;
    fake.release();
    let second_out = finish(second).await;
    waited.unwrap();
    assert!(second_out.status.success(), "{}", stderr(&second_out));
    assert_eq!(reply(&second_out), "fake reply to: next question");
    let reqs = fake.requests_for_key(KEY);
    assert_eq!(
        conversation(&reqs[1].body),
        pairs(&[("user", "next question")]),
        "the killed turn stored nothing"
    );
}

/// The case that prompted the lock: the gateway answers a web chat message while the
/// operator sends one to the same session with `remoteclaw agent --session web:…`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_an_agent_run_turns_of_one_web_session_one_at_a_time() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);
    let env = home.env.clone();
    let gw = Gateway::start(home, None).await;
    fake.hold();
    let url = format!("{}/api/chat", gw.url);
    let web = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .json(&json!({"session": "shared", "message": "from the web"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        sse_events(&r.text().await.unwrap())
    });
    requests(&fake, 1).await;
    let mut cli = agent_in(&env, "web:shared", "from the terminal");
    let waited = waits_or_sends(&mut cli, &fake).await;
    fake.release();
    let events = web.await.unwrap();
    let cli = finish(cli).await;
    waited.unwrap();
    assert_eq!(
        events.last().map(|(name, _)| name.as_str()),
        Some("done"),
        "{events:?}"
    );
    assert!(cli.status.success(), "{}", stderr(&cli));
    assert_eq!(reply(&cli), "fake reply to: from the terminal");
    assert_eq!(
        fake.peak_in_flight(),
        1,
        "the provider saw two turns at once"
    );
    let reqs = fake.requests_for_key(KEY);
    assert_eq!(
        conversation(&reqs[1].body),
        pairs(&[
            ("user", "from the web"),
            ("assistant", "fake reply to: from the web"),
            ("user", "from the terminal"),
        ]),
    );
    gw.shutdown().await;
}
