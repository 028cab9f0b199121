//! Sessions over HTTP: a `/model` pin acknowledged by the gateway survives SIGKILL;
//! 1,000 sessions × 10 messages keep per-session order and history under load; the
//! OpenAI endpoint applies chat commands to its session; non-owners cannot pin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::chat::{Inbound, handle};
use serde_json::{Value, json};
use std::sync::Arc;
use support::fake_provider::FakeProvider;
use support::gateway::{Gateway, spawn_binary, sse_events};
use support::home::{TestHome, stderr, stdout};

fn home(fake: &FakeProvider) -> TestHome {
    let mut config = TestHome::config_for_fake("openai/gpt-4o-mini", fake);
    config.push_str("[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\nalias = \"opus\"\n[agents.defaults.models.\"openai/gpt-4o-mini\"]\n");
    let mut h = TestHome::new(&config);
    h.set("OPENAI_API_KEY", "sk-oa")
        .set("ANTHROPIC_API_KEY", "sk-ant-env");
    h.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"version":1,"profiles":{"anthropic:home":{"type":"api_key","provider":"anthropic","key":"sk-ant-home"},"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-work"}}}"#,
    );
    h
}

async fn web_say(url: &str, session: &str, message: &str) -> Vec<(String, String)> {
    let r = reqwest::Client::new()
        .post(format!("{url}/api/chat"))
        .json(&json!({"session": session, "message": message}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sse_events(&r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pin_survives_sigkill() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let (mut child, addr) = spawn_binary(&h).await;
    let events = web_say(
        &format!("http://{addr}"),
        "r1",
        "/model opus@anthropic:work",
    )
    .await;
    let reply: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        reply.contains("Pinned to credential profile anthropic:work"),
        "{events:?}"
    );
    child.start_kill().unwrap(); // SIGKILL: no chance to flush anything
    child.wait().await.unwrap();

    let out = h.run(&["sessions", "show", "web:r1", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["pin"]["profile"], "anthropic:work");
    assert_eq!(s["pin"]["source"], "user");
    assert_eq!(s["model"], "anthropic/claude-opus-4-5");

    // A restarted gateway answers with the pinned credential.
    let (mut child, addr) = spawn_binary(&h).await;
    web_say(&format!("http://{addr}"), "r1", "hello again").await;
    assert_eq!(
        fake.requests().last().unwrap().key.as_deref(),
        Some("sk-ant-work")
    );
    child.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_sessions_keep_their_order_and_history() {
    const SESSIONS: usize = 1000;
    const MESSAGES: usize = 10;
    let fake = FakeProvider::start().await;
    let gw = Arc::new(Gateway::start(home(&fake), None).await);
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let (gw, limit) = (gw.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            for m in 0..MESSAGES {
                let events = web_say(&gw.url, &format!("s{s}"), &format!("s{s}-m{m}")).await;
                assert_eq!(events.last().unwrap().0, "done", "s{s} m{m}: {events:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), SESSIONS * MESSAGES);
    // For every session, the k-th provider call carries messages 0..k in order, with the
    // replies in between: nothing lost, reordered or mixed between sessions.
    let mut seen = vec![0usize; SESSIONS];
    for r in &reqs {
        let msgs = r.body["messages"].as_array().unwrap();
        let last = msgs.last().unwrap()["content"].as_str().unwrap();
        let (s, m) = last.trim_start_matches('s').split_once("-m").unwrap();
        let (s, m): (usize, usize) = (s.parse().unwrap(), m.parse().unwrap());
        assert_eq!(m, seen[s], "session s{s} got message {m} out of order");
        seen[s] += 1;
        let expected: Vec<String> = (0..m)
            .flat_map(|k| [format!("s{s}-m{k}"), format!("fake reply to: s{s}-m{k}")])
            .chain([format!("s{s}-m{m}")])
            .collect();
        let got: Vec<&str> = msgs
            .iter()
            .map(|x| x["content"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "history of s{s} at message {m}");
    }
    assert!(seen.iter().all(|&n| n == MESSAGES));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_endpoint_applies_directives_to_its_session() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home(&fake), None).await;
    let client = reqwest::Client::new();
    let post = |session: &str, body: Value| {
        client
            .post(format!("{}/v1/chat/completions", gw.url))
            .header("x-remoteclaw-session", session)
            .json(&body)
            .send()
    };

    let v: Value = post("api:1", json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "/model opus@anthropic:work"}]})).await.unwrap().json().await.unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("anthropic:work"),
        "{v}"
    );
    assert_eq!(fake.request_count(), 0);

    let v: Value = post(
        "api:1",
        json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["model"], "anthropic/claude-opus-4-5");
    assert_eq!(fake.requests()[0].key.as_deref(), Some("sk-ant-work"));
    // A client that names the model (as OpenAI clients do) keeps the session's pin for
    // a model of the pin's provider; a model of another provider cannot use it.
    let unpinned = post(
        "api:9",
        json!({"model": "opus", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(unpinned.status(), 200);
    assert_eq!(
        fake.requests().last().unwrap().key.as_deref(),
        Some("sk-ant-home"),
        "without a pin the auth order's first profile answers"
    );
    for (model, key) in [
        ("opus", "sk-ant-work"),
        ("anthropic/claude-opus-4-5", "sk-ant-work"),
        ("openai/gpt-4o-mini", "sk-oa"),
    ] {
        let before = fake.request_count();
        let r = post(
            "api:1",
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(fake.request_count(), before + 1);
        assert_eq!(
            fake.requests().last().unwrap().key.as_deref(),
            Some(key),
            "{model}"
        );
    }
    let first_on_api2 = fake.request_count();

    // Another session is untouched; an explicit model@profile applies to one request only.
    let v: Value = post(
        "api:2",
        json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    let v: Value = post(
        "api:2",
        json!({"model": "opus@anthropic:work", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["model"], "anthropic/claude-opus-4-5");
    assert_eq!(
        fake.requests()[first_on_api2 + 1].key.as_deref(),
        Some("sk-ant-work")
    );
    let v: Value = post(
        "api:2",
        json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["model"], "openai/gpt-4o-mini",
        "the request's pin was not stored"
    );

    // A directive with text: applied, then the rest is the turn; streamed form too.
    let r = post(
        "api:3",
        json!({"stream": true, "messages": [{"role": "user", "content": "/model opus tell me"}]}),
    )
    .await
    .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    let text: String = events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "fake reply to: tell me");
    assert_eq!(
        fake.requests().last().unwrap().body["model"],
        "claude-opus-4-5"
    );

    let r = post(
        "bad key",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // A value that is not plain text, or the header twice, is refused too: never a
    // directive quietly applied to `web:default` instead.
    let directive = br#"{"messages":[{"role":"user","content":"/model openai/gpt-4o-mini"}]}"#;
    for headers in [
        &b"x-remoteclaw-session: web:\xc3\xa9t\xc3\xa9\r\n"[..],
        &b"x-remoteclaw-session: web:a\r\nx-remoteclaw-session: web:b\r\n"[..],
    ] {
        let mut extra = b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n".to_vec();
        extra.extend_from_slice(headers);
        let mut request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
            directive.len()
        )
        .into_bytes();
        request.extend_from_slice(&extra);
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(directive);
        let resp = support::gateway::raw(gw.addr, &request).await.unwrap();
        assert_eq!(
            resp.status,
            400,
            "{:?}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(resp.json()["error"]["code"], "invalid_session");
    }
    let v: Value = post(
        "web:default",
        json!({"messages": [{"role": "user", "content": "/model status"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let status = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        status.contains("(default)"),
        "web:default kept its model: {status}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_may_pin() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;
    let msg = Inbound {
        session: "telegram:dm:5",
        text: "/model opus@anthropic:work",
        owner: false,
        bot_username: None,
        agent: None,
        system_prompt: None,
        attachments: &[],
        quoted: None,
    };
    let r = handle(&app, msg, None).await;
    assert!(r.is_error());
    assert!(
        r.reply_text()
            .starts_with("Only owners can pin a credential profile (@anthropic:work)."),
        "{}",
        r.reply_text()
    );
    assert!(
        app.sessions
            .store()
            .load("telegram:dm:5", 0)
            .await
            .unwrap()
            .is_none_or(|s| s.pin.is_none())
    );
    // Choosing a model without a pin is fine for anyone.
    let msg = Inbound {
        session: "telegram:dm:5",
        text: "/model opus",
        owner: false,
        bot_username: None,
        agent: None,
        system_prompt: None,
        attachments: &[],
        quoted: None,
    };
    assert!(!handle(&app, msg, None).await.is_error());
    // A command addressed to another bot is ignored entirely.
    let msg = Inbound {
        session: "telegram:dm:5",
        text: "/model@OtherBot list",
        owner: true,
        bot_username: Some("OurBot"),
        agent: None,
        system_prompt: None,
        attachments: &[],
        quoted: None,
    };
    assert!(handle(&app, msg, None).await.ignored);
}
