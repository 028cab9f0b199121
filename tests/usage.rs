//! Token usage end to end (DESIGN §10 "Usage"): the real binary against the fake
//! provider, whose replies carry usage figures. `agent --json` has the turn's `usage`,
//! the session's totals add up in `sessions show --json`, `/usage` answers with them,
//! and `models status` shows them per credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use support::fake_provider::FakeProvider;
use support::home::{TestHome, stderr, stdout};

/// A home whose default model is OpenAI's on `fake`, with a key for it.
fn home(fake: &FakeProvider) -> TestHome {
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", fake));
    home.set("OPENAI_API_KEY", "sk-oa-usage");
    home
}

/// One `/v1/chat/completions` request to the gateway at `url` (in `session`, else the
/// default one); the answer's JSON.
async fn completion(url: &str, session: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().post(format!("{url}/v1/chat/completions"));
    if let Some(s) = session {
        request = request.header("x-remoteclaw-session", s);
    }
    request
        .json(&serde_json::json!({
            "model": "remoteclaw",
            "messages": [{"role": "user", "content": "count my tokens please"}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_per_turn_per_session_and_per_credential() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);

    let mut total_in = 0;
    let mut total_out = 0;
    for message in ["hello there", "and a second, longer question about usage"] {
        let out = home
            .run(&[
                "agent",
                "--message",
                message,
                "--session",
                "local:u",
                "--json",
            ])
            .await;
        let v = json(&out);
        let (i, o) = (
            v["usage"]["inputTokens"].as_u64().unwrap(),
            v["usage"]["outputTokens"].as_u64().unwrap(),
        );
        assert!(i > 0 && o > 0, "{v}");
        total_in += i;
        total_out += o;
    }
    assert_eq!(fake.requests().len(), 2, "one model call per message");

    let out = home.run(&["sessions", "show", "local:u", "--json"]).await;
    let v = json(&out);
    assert_eq!(v["usage"]["inputTokens"], total_in, "{v}");
    assert_eq!(v["usage"]["outputTokens"], total_out, "{v}");

    // `/usage` answers with the totals and calls no model.
    let out = home
        .run(&[
            "agent",
            "--message",
            "/usage",
            "--session",
            "local:u",
            "--json",
        ])
        .await;
    let v = json(&out);
    let reply = v["reply"].as_str().unwrap();
    assert!(
        reply.contains(&format!("{total_in} input and {total_out} output tokens"))
            && reply.contains("2 answered messages"),
        "{reply}"
    );
    assert_eq!(v["usage"]["inputTokens"], 0);
    assert_eq!(fake.requests().len(), 2, "no model call for /usage");

    // Another session starts at zero.
    let out = home
        .run(&["agent", "--message", "/usage", "--session", "local:other"])
        .await;
    assert!(
        stdout(&out).contains("0 input and 0 output tokens"),
        "{}",
        stdout(&out)
    );

    let out = home.run(&["models", "status"]).await;
    assert!(
        stdout(&out).contains(&format!(
            "used {total_in} input and {total_out} output tokens"
        )),
        "{}",
        stdout(&out)
    );
}

/// The OpenAI-compatible API counts its turns under the `x-remoteclaw-session` session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_counts_usage_under_its_session() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);
    let db_path = home.state_dir().join("state.db");
    let gw = support::gateway::Gateway::start(home, None).await;
    let resp = completion(&gw.url, Some("web:usage")).await;
    let (i, o) = (
        resp["usage"]["prompt_tokens"].as_u64().unwrap(),
        resp["usage"]["completion_tokens"].as_u64().unwrap(),
    );
    assert!(i > 0 && o > 0, "{resp}");
    // Read while the gateway runs (its home and state.db go away with it). The totals
    // are written after the reply, off the turn's path: wait for them, within a bound.
    let db = remoteclaw::state::StateDb::open(&db_path).unwrap();
    let book = remoteclaw::usage::UsageBook::new(db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (t, turns) = book.session("web:usage").await.unwrap();
        if turns > 0 {
            assert_eq!((t.input_tokens, t.output_tokens, turns), (i, o, 1));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "usage never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gw.shutdown().await;
}

/// A session used only through `/v1/chat/completions` (the client keeps the
/// conversation, so nothing else is stored) still shows its totals in `sessions show`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_used_only_over_the_openai_api_shows_its_usage() {
    let fake = FakeProvider::start().await;
    let home = home(&fake);
    let (mut child, addr) = support::gateway::spawn_binary(&home).await;
    let resp = completion(&format!("http://{addr}"), None).await;
    let input = resp["usage"]["prompt_tokens"].as_u64().unwrap();
    // The totals are written after the reply: the CLI reads them once they are there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let out = home
            .run(&["sessions", "show", "web:default", "--json"])
            .await;
        if out.status.success() {
            break json(&out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never shown: {}",
            stderr(&out)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(shown["key"], "web:default");
    assert_eq!(shown["historyLength"], 0);
    assert_eq!(shown["usage"]["inputTokens"], input);
    let _ = child.start_kill();
    let _ = child.wait().await;
    // A session nobody used is still unknown.
    let out = home.run(&["sessions", "show", "web:nobody"]).await;
    assert_eq!(out.status.code(), Some(1));
}
