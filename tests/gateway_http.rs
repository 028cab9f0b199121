//! The gateway's HTTP surface, served in-process on 127.0.0.1:0 against the fake
//! provider: health, metrics, the OpenAI-compatible endpoint (plain and streaming), the
//! web chat, token checks and graceful shutdown. Plus the binary's bind rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::{Gateway, spawn_binary, sse_events};
use support::home::{TestHome, stderr};

fn home_for(fake: &FakeProvider, extra: &str) -> TestHome {
    let mut config = TestHome::config_for_fake("openai/gpt-4o-mini", fake);
    config.push_str(extra);
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "gw-key")
        .set("ANTHROPIC_API_KEY", "gw-ant");
    home
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_page() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let r = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));

    let r = http().get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("src=\"/app.js\""));
    let js = http()
        .get(format!("{}/app.js", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("/api/chat"));

    http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let m = http()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("remoteclaw_turns_total{outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("remoteclaw_provider_attempts_total{provider=\"openai\",outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("remoteclaw_turn_duration_seconds_count 1"),
        "{m}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_non_streaming() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let body = json!({"model": "remoteclaw", "temperature": 0.2, "messages": [
        {"role": "system", "content": "terse"},
        {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "rust"}]}]});
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "fake reply to: what is\nrust"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "terse"})
    );

    // provider/model in the request picks that model.
    let r = http().post(format!("{}/v1/chat/completions", gw.url)).json(&json!({"model": "anthropic/claude-x", "messages": [{"role": "user", "content": "yo"}]})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["model"],
        "anthropic/claude-x"
    );
    assert_eq!(fake.requests()[1].path, "/v1/messages");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_streaming_sends_openai_chunks_then_done() {
    let fake = FakeProvider::start().await;
    fake.script("gw-key", [Behavior::Reply("alpha beta gamma".into())]);
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": "remoteclaw", "stream": true, "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"])
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "alpha beta gamma");
    assert!(chunks.len() >= 4, "several content chunks: {chunks:?}");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_errors_are_openai_shaped() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(
        home_for(
            &fake,
            "[agents.defaults.models.\"openai/gpt-4o-mini\"]\nalias = \"mini\"\n",
        ),
        None,
    )
    .await;
    let post = |body: Value| {
        http()
            .post(format!("{}/v1/chat/completions", gw.url))
            .json(&body)
            .send()
    };

    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );

    let r = post(json!({"model": "openai/gpt-5", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai/gpt-4o-mini (mini)"),
        "{v}"
    );

    let r = post(json!({"model": "mini", "messages": [{"role": "assistant", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "no_user_message"
    );

    fake.script(
        "gw-key",
        [Behavior::RateLimit {
            retry_after_secs: Some(9),
        }],
    );
    let r = post(json!({"model": "mini", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "9");
    // Without any hint from the provider (a compatible server's bare 429): the first
    // cooldown step (1 min).
    fake.script(
        "gw-key",
        [Behavior::Raw {
            status: 429,
            content_type: "application/json".into(),
            body: r#"{"error":{"message":"Too many requests","type":"rate_limit_error"}}"#.into(),
            headers: Vec::new(),
        }],
    );
    let r = post(json!({"model": "mini", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");

    // Failing after some text: an error chunk inside the stream, then [DONE].
    fake.script("gw-key", [Behavior::ErrorMidStream("partial".into())]);
    let r = post(
        json!({"model": "mini", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let err: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert!(err["error"]["message"].is_string(), "{err}");
    // Streaming request that fails before any text: a real HTTP error, not a 200 stream.
    fake.script("gw-key", [Behavior::Auth]);
    let r = post(
        json!({"model": "mini", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 424);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_auth"
    );

    // That auth failure set the only key aside: the next turn says so instead of retrying it.
    let r = post(json!({"model": "mini", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 424);
    let msg = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("no usable credentials for openai")
            && msg.contains("env:OPENAI_API_KEY disabled (auth)"),
        "{msg}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_reply_is_clear() {
    let home = TestHome::new("");
    let gw = Gateway::start(home, None).await;
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 424);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "no credentials for anthropic — set ANTHROPIC_API_KEY or run `remoteclaw onboard`"
    );

    let r = http()
        .post(format!("{}/api/chat", gw.url))
        .json(&json!({"session": "s1", "message": "hi"}))
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "error");
    assert!(
        events[0]
            .1
            .contains("set ANTHROPIC_API_KEY or run `remoteclaw onboard`")
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_chat_streams_and_keeps_history_per_session() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let say = |session: &'static str, message: &'static str| {
        http()
            .post(format!("{}/api/chat", gw.url))
            .json(&json!({"session": session, "message": message}))
            .send()
    };
    let events = sse_events(&say("tab1", "first").await.unwrap().text().await.unwrap());
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "fake reply to: first");
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(events.last().unwrap().0, "done");
    assert_eq!(
        done,
        json!({"model": "openai/gpt-4o-mini", "credential": "env:OPENAI_API_KEY", "tree": [
            {"kind": "p", "children": [{"kind": "text", "text": "fake reply to: first"}]},
        ]})
    );

    say("tab1", "second").await.unwrap().text().await.unwrap();
    say("tab2", "other").await.unwrap().text().await.unwrap();
    let reqs = fake.requests();
    let roles = |i: usize| {
        reqs[i].body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["role"].as_str().unwrap(),
                    m["content"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(1),
        [
            "user:first",
            "assistant:fake reply to: first",
            "user:second"
        ]
    );
    assert_eq!(roles(2), ["user:other"], "sessions do not share history");

    let r = http()
        .post(format!("{}/api/chat", gw.url))
        .json(&json!({"session": "bad id!", "message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_when_configured() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), Some("gw-secret-token")).await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/api/chat", gw.url))
        .json(&json!({"session": "a", "message": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("gw-secret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The scheme in any case; two Authorization headers are refused.
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .header("authorization", "BEARER gw-secret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .get(format!("{}/metrics", gw.url))
        .header("authorization", "Bearer wrong")
        .header("authorization", "Bearer gw-secret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The page itself and the health probe carry no data and stay reachable.
    assert_eq!(
        http()
            .get(format!("{}/", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_streamed_reply_finish() {
    let fake = FakeProvider::start().await;
    fake.script(
        "gw-key",
        [Behavior::Reply("slow but complete answer".into())],
    );
    fake.set_stream_chunk_delay(Duration::from_millis(40));
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Signal shutdown while the reply is still streaming (the fake spaces its chunks
    // 40 ms apart); serve() must let it finish rather than cut it off.
    let stopping = tokio::spawn(gw.shutdown());
    let body = resp.text().await.unwrap();
    let events = sse_events(&body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "slow but complete answer");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("gateway stopped")
        .expect("join");
}

/// The binary with no config at all: starts, answers health, and replies with the
/// no-credentials message; a non-loopback bind without a token is refused.
mod binary {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_without_config_and_stops_on_sigterm() {
        let home = TestHome::new("");
        let (mut child, addr) = spawn_binary(&home).await;
        let r = http()
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http()
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains(
            "no credentials for anthropic — set ANTHROPIC_API_KEY or run `remoteclaw onboard`"
        ));
        let pid = child.id().expect("pid").to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("exits")
            .unwrap();
        assert!(status.success(), "graceful exit code 0, got {status:?}");
    }

    #[tokio::test]
    async fn refuses_non_loopback_bind_without_token() {
        let home = TestHome::new("");
        let out = home
            .run(&["gateway", "--bind", "0.0.0.0", "--port", "0"])
            .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("refusing to listen on 0.0.0.0 without a gateway token"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("gateway.auth"), "{}", stderr(&out));
    }
}

/// DESIGN §8: a turn that times out answers 504 `timeout`; streamed, the 504 carries the
/// stream's shape (an error chunk, then `[DONE]`) so a streaming client reads it as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_turn_is_504_and_streamed_an_error_chunk_then_done() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Stall);
    let gw = Gateway::start(
        home_for(&fake, "\n[agents.defaults]\nturnTimeoutSecs = 1\n"),
        None,
    )
    .await;
    let url = format!("{}/v1/chat/completions", gw.url);

    let r = http()
        .post(&url)
        .json(&json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "timeout", "{v}");

    let r = http()
        .post(&url)
        .json(&json!({"model": "remoteclaw", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    let err: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(err["error"]["code"], "timeout", "{err}");
    assert_eq!(events[1].1, "[DONE]");
}

/// `stream_options.include_usage` (as OpenAI's clients send it): one more chunk before
/// `[DONE]`, with no choices and the turn's token counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_usage_comes_when_asked_for() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = |include: bool| {
        json!({"model": "remoteclaw", "stream": true,
               "stream_options": {"include_usage": include},
               "messages": [{"role": "user", "content": "hi"}]})
    };
    let text = http()
        .post(&url)
        .json(&body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    let n = events.len();
    assert_eq!(events[n - 1].1, "[DONE]", "{text}");
    let usage: Value = serde_json::from_str(&events[n - 2].1).unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    let total = usage["usage"]["total_tokens"].as_u64().unwrap();
    assert!(total > 0, "{usage}");
    assert_eq!(
        total,
        usage["usage"]["prompt_tokens"].as_u64().unwrap()
            + usage["usage"]["completion_tokens"].as_u64().unwrap()
    );
    let stop: Value = serde_json::from_str(&events[n - 3].1).unwrap();
    assert_eq!(stop["choices"][0]["finish_reason"], "stop", "{stop}");

    // Not asked for: no usage chunk.
    let text = http()
        .post(&url)
        .json(&body(false))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("\"usage\""), "{text}");
    // A wrong shape is a 400 naming the field.
    let r = http()
        .post(&url)
        .json(&json!({"model": "remoteclaw", "stream": true, "stream_options": {"include_usage": "yes"},
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "stream_options.include_usage", "{v}");
}
