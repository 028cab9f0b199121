//! Self-test of the fake provider in `tests/support/fake_provider`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_provider::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

async fn anthropic(fp: &FakeProvider, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", fp.anthropic_base()))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn openai(fp: &FakeProvider, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", fp.openai_base()))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn google(fp: &FakeProvider, key: &str, action: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/models/gemini-2.0-flash:{action}",
            fp.google_base()
        ))
        .header("x-goog-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn responses(fp: &FakeProvider, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/responses", fp.responses_base()))
        .bearer_auth(key)
        .header("chatgpt-account-id", "acct-1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn responses_body(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-5",
        "instructions": "be brief",
        "store": false,
        "stream": stream,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        ]
    })
}

fn anthropic_body(text: &str, stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 64,
        "system": "be brief",
        "stream": stream,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": text}]}
        ]
    })
}

fn openai_body(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": text}
        ]
    })
}

fn google_body(text: &str) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": text}]}
        ]
    })
}

#[tokio::test]
async fn non_stream_echo_shapes() {
    let fp = FakeProvider::start().await;

    let r = anthropic(&fp, "ak", anthropic_body("hello there", false)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-test");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], "fake reply to: hello there");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let v: Value = openai(&fp, "ok", openai_body("hi oa", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "fake reply to: hi oa"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let v: Value = google(&fp, "gk", "generateContent", google_body("hi gem"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "fake reply to: hi gem"
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    assert!(v["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);

    assert_eq!(fp.request_count(), 3);
}

/// Extracts the `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n")
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("data: "))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn streaming_per_api() {
    let fp = FakeProvider::start().await;
    fp.set_default(Behavior::Reply("one two three".into()));

    // Anthropic
    let r = anthropic(&fp, "ak", anthropic_body("x", true)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = r.text().await.unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| v["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "one two three");

    // OpenAI
    let body = openai(&fp, "ok", openai_body("x", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("\n\n"));
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "one two three");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().is_some());
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );

    // Google (SSE with \r\n\r\n separators)
    let r = client()
        .post(format!(
            "{}/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            fp.google_base()
        ))
        .header("x-goog-api-key", "gk")
        .json(&google_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("\r\n\r\n"));
    let chunks: Vec<Value> = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks.len(), 3);
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "one two three");
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert!(
        chunks[2]["usageMetadata"]["candidatesTokenCount"]
            .as_u64()
            .is_some()
    );

    // Google without alt=sse: one JSON array.
    let body = google(&fp, "gk", "streamGenerateContent", google_body("x"))
        .await
        .text()
        .await
        .unwrap();
    let arr: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[2]["candidates"][0]["finishReason"], "STOP");

    let reqs = fp.requests();
    assert!(reqs.iter().all(|r| r.stream));
    assert_eq!(reqs[2].query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn rate_limit_with_retry_after_per_api() {
    let fp = FakeProvider::start().await;
    let rl = Behavior::RateLimit {
        retry_after_secs: Some(7),
    };
    fp.script("ak", [rl.clone()]);
    fp.script("ok", [rl.clone()]);
    fp.script("gk", [rl]);

    let r = anthropic(&fp, "ak", anthropic_body("x", false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let r = openai(&fp, "ok", openai_body("x", false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again in 7s")
    );

    let r = google(&fp, "gk", "generateContent", google_body("x")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = v["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["retryDelay"] == "7s"));
}

#[tokio::test]
async fn per_key_queue_then_default() {
    let fp = FakeProvider::start().await;
    fp.script(
        "k1",
        [
            Behavior::Reply("a".into()),
            Behavior::Auth,
            Behavior::Overloaded,
        ],
    );
    fp.script("k1", [Behavior::ServerError]);
    fp.set_default(Behavior::Reply("dflt".into()));

    // Another key is unaffected by k1's queue.
    let v: Value = anthropic(&fp, "k2", anthropic_body("x", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "dflt");

    let statuses = [200u16, 401, 529, 500, 200];
    for expected in statuses {
        let r = anthropic(&fp, "k1", anthropic_body("x", false)).await;
        assert_eq!(r.status().as_u16(), expected);
    }
    assert_eq!(fp.pending_script("k1"), 0);

    // Same behaviours on the other APIs.
    fp.script("k3", [Behavior::Auth, Behavior::Quota, Behavior::Billing]);
    let r = openai(&fp, "k3", openai_body("x", false)).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let r = openai(&fp, "k3", openai_body("x", false)).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "insufficient_quota");
    assert_eq!(
        openai(&fp, "k3", openai_body("x", false)).await.status(),
        402
    );

    fp.script("k4", [Behavior::Auth]);
    let r = google(&fp, "k4", "generateContent", google_body("x")).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
}

#[tokio::test]
async fn records_headers_key_and_body() {
    let fp = FakeProvider::start().await;
    let _ = client()
        .post(format!("{}/v1/messages", fp.anthropic_base()))
        .header("Authorization", "Bearer oauth-token")
        .header("X-Custom", "yes")
        .json(&anthropic_body("rec", false))
        .send()
        .await
        .unwrap();
    let _ = client()
        .post(format!(
            "{}/models/gemini-pro:generateContent?key=qkey",
            fp.google_base()
        ))
        .json(&google_body("g"))
        .send()
        .await
        .unwrap();
    let _ = client()
        .post(format!("{}/chat/completions", fp.openai_base()))
        .bearer_auth("sk-test")
        .body("not json")
        .send()
        .await
        .unwrap();

    let reqs = fp.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].api, Api::Anthropic);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].key.as_deref(), Some("oauth-token"));
    assert_eq!(reqs[0].header("x-custom"), Some("yes"));
    assert_eq!(reqs[0].header("X-CUSTOM"), Some("yes"));
    assert_eq!(reqs[0].body["max_tokens"], 64);
    assert_eq!(reqs[0].user_text(), "rec");
    assert_eq!(reqs[0].model().as_deref(), Some("claude-test"));
    assert!(!reqs[0].stream);

    assert_eq!(reqs[1].api, Api::Google);
    assert_eq!(reqs[1].key.as_deref(), Some("qkey"));
    assert_eq!(reqs[1].model().as_deref(), Some("gemini-pro"));

    assert_eq!(reqs[2].api, Api::OpenAi);
    assert_eq!(reqs[2].key.as_deref(), Some("sk-test"));
    assert_eq!(reqs[2].body, Value::Null);
    assert_eq!(fp.requests_for_key("sk-test").len(), 1);
}

#[tokio::test]
async fn stall_is_recorded_and_unknown_route_is_404() {
    let fp = FakeProvider::start().await;
    fp.script("s", [Behavior::Stall]);
    // Long enough for the request to arrive whole on a stalling host.
    let short = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = short
        .post(format!("{}/v1/messages", fp.anthropic_base()))
        .header("x-api-key", "s")
        .json(&anthropic_body("x", false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(fp.request_count(), 1);
    assert_eq!(fp.requests()[0].key.as_deref(), Some("s"));

    let r = client()
        .post(format!("{}/nope", fp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let _: Value = r.json().await.unwrap();
    let r = google(&fp, "g", "countTokens", google_body("x")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(fp.request_count(), 1);
}

#[tokio::test]
async fn mid_stream_failures_and_raw() {
    let fp = FakeProvider::start().await;

    // Error mid-stream: text, then the in-stream error event, then the body ends.
    fp.script("e", [Behavior::ErrorMidStream("partial text".into())]);
    let body = anthropic(&fp, "e", anthropic_body("x", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("text_delta"));
    let err_event = body.split("event: error\ndata: ").nth(1).unwrap();
    let err: Value = serde_json::from_str(err_event.trim()).unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error");
    assert!(!body.contains("message_stop"));
    fp.script("e", [Behavior::ErrorMidStream("partial text".into())]);
    let body = openai(&fp, "e", openai_body("x", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("data: {\"error\":"));
    assert!(!body.contains("[DONE]"));
    fp.script("e", [Behavior::ErrorMidStream("partial".into())]);
    assert_eq!(
        openai(&fp, "e", openai_body("x", false)).await.status(),
        503
    );

    // Stall mid-stream: headers and the deltas arrive, then nothing.
    fp.script("m", [Behavior::StallMidStream("early words".into())]);
    let mut r = openai(&fp, "m", openai_body("x", true)).await;
    assert_eq!(r.status(), 200);
    let mut got = String::new();
    while !got.contains("words") {
        let chunk = r.chunk().await.unwrap().unwrap();
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    let next = tokio::time::timeout(Duration::from_millis(100), r.chunk()).await;
    assert!(next.is_err(), "stream should stall");

    // Malformed and Raw.
    fp.script("r", [Behavior::Malformed]);
    let r = google(&fp, "r", "generateContent", google_body("x")).await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_err());
    fp.script(
        "r",
        [Behavior::Raw {
            status: 418,
            content_type: "text/plain".into(),
            body: "teapot".into(),
            headers: vec![("x-extra".into(), "1".into())],
        }],
    );
    let r = anthropic(&fp, "r", anthropic_body("x", false)).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-extra"], "1");
    assert_eq!(r.text().await.unwrap(), "teapot");
}

#[tokio::test]
async fn latency_applies() {
    let fp = FakeProvider::start().await;
    fp.set_latency(Duration::from_millis(30));
    fp.set_default(Behavior::ServerError);
    let t = std::time::Instant::now();
    let r = openai(&fp, "k", openai_body("x", false)).await;
    assert_eq!(r.status(), 500);
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn drop_cuts_stalled_requests() {
    let fp = FakeProvider::start().await;
    fp.set_default(Behavior::Stall);
    let url = format!("{}/v1/messages", fp.anthropic_base());
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .header("x-api-key", "k")
            .json(&anthropic_body("x", false))
            .send()
            .await
    });
    while fp.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(fp);
    let res = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .expect("stalled request should end once the provider is dropped")
        .unwrap();
    assert!(res.is_err());
}

#[tokio::test]
async fn responses_route_shapes() {
    let fp = FakeProvider::start().await;
    // Any bearer value is a key, a JWT-shaped OAuth access token included.
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    let v: Value = responses(&fp, jwt, responses_body("hi resp", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(v["output"][1]["type"], "message");
    assert_eq!(v["output"][1]["content"][0]["type"], "output_text");
    assert_eq!(
        v["output"][1]["content"][0]["text"],
        "fake reply to: hi resp"
    );
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let r = &fp.requests()[0];
    assert_eq!(r.api, Api::Responses);
    assert_eq!(r.path, "/v1/responses");
    assert_eq!(r.key.as_deref(), Some(jwt));
    assert_eq!(r.header("chatgpt-account-id"), Some("acct-1"));
    assert_eq!(r.user_text(), "hi resp");
    assert_eq!(r.model().as_deref(), Some("gpt-5"));
    assert!(!r.stream);

    // Streamed: typed events, deltas, then response.completed with usage.
    fp.script("rk", [Behavior::Reply("one two three".into())]);
    let r = responses(&fp, "rk", responses_body("x", true)).await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = r.text().await.unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"response.created"));
    assert_eq!(events.last(), Some(&"response.completed"));
    let data: Vec<Value> = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "response.output_text.delta")
        .filter_map(|d| d["delta"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "one two three");
    let done = data.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["usage"]["output_tokens"], 3);
    assert!(fp.requests()[1].stream);

    // Errors in the OpenAI shape; an in-stream failure is response.failed.
    fp.script(
        "rk",
        [
            Behavior::RateLimit {
                retry_after_secs: Some(7),
            },
            Behavior::Auth,
            Behavior::ErrorMidStream("partial".into()),
        ],
    );
    let r = responses(&fp, "rk", responses_body("x", false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let r = responses(&fp, "rk", responses_body("x", false)).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let body = responses(&fp, "rk", responses_body("x", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("event: response.output_text.delta"));
    assert!(body.contains("event: response.failed"));
    assert!(!body.contains("response.completed"));
}
