//! Tables for the Responses API: request fields, plain replies, stream events and the
//! error shapes (OpenAI's, the ChatGPT backend's `detail`, Codex usage limits).

use super::*;
use crate::providers::{ChatMessage, ErrorKind};

fn settings(stream_only: bool) -> ProviderSettings {
    ProviderSettings {
        id: "p".into(),
        api: ApiKind::OpenaiResponses,
        base_url: "http://127.0.0.1:9/v1".into(),
        connect_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        headers: Vec::new(),
        account_header: None,
        stream_only,
    }
}

fn req(with_system: bool) -> ChatRequest {
    let mut messages = vec![
        ChatMessage::user("first"),
        ChatMessage::assistant("ok"),
        ChatMessage::user("again"),
    ];
    if with_system {
        messages.insert(
            0,
            ChatMessage {
                role: Role::System,
                content: "be brief".into(),
            },
        );
        messages.push(ChatMessage {
            role: Role::System,
            content: "and kind".into(),
        });
    }
    ChatRequest {
        model: "gpt-x".into(),
        messages,
        max_tokens: 77,
    }
}

#[test]
fn request_body_fields() {
    let b = request_body(&settings(false), &req(true), false);
    assert_eq!(b["model"], "gpt-x");
    assert_eq!(b["instructions"], "be brief\n\nand kind");
    assert_eq!(b["store"], false);
    assert_eq!(b["max_output_tokens"], 77);
    assert!(b.get("stream").is_none());
    let input = b["input"].as_array().unwrap();
    assert_eq!(input.len(), 3, "system turns go to instructions only");
    let shape: Vec<(&str, &str, &str, &str)> = input
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap(),
                i["role"].as_str().unwrap(),
                i["content"][0]["type"].as_str().unwrap(),
                i["content"][0]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("message", "user", "input_text", "first"),
            ("message", "assistant", "output_text", "ok"),
            ("message", "user", "input_text", "again"),
        ]
    );

    let b = request_body(&settings(false), &req(false), true);
    assert_eq!(b["stream"], true);
    assert!(b.get("instructions").is_none(), "no system text, no field");
}

#[test]
fn stream_only_backend_gets_no_token_limit_and_always_instructions() {
    let b = request_body(&settings(true), &req(false), true);
    assert!(b.get("max_output_tokens").is_none(), "{b}");
    assert_eq!(b["instructions"], DEFAULT_INSTRUCTIONS);
    assert_eq!(b["stream"], true);
    let b = request_body(&settings(true), &req(true), true);
    assert_eq!(b["instructions"], "be brief\n\nand kind");
}

fn parse(body: Value) -> Result<Completion, ProviderError> {
    parse_reply("p", body.to_string().as_bytes())
}

#[test]
fn plain_replies() {
    let c = parse(json!({
        "id": "resp_1", "object": "response", "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "hello ", "annotations": []},
                {"type": "output_text", "text": "world"}
            ]},
            {"type": "function_call", "name": "f", "arguments": "{}"},
            {"type": "message", "content": [{"type": "output_text", "text": "!"}]}
        ],
        "usage": {"input_tokens": 3, "output_tokens": 1e30, "total_tokens": 5}
    }))
    .unwrap();
    assert_eq!(c.text, "hello world!");
    assert_eq!(
        c.usage,
        Some(Usage {
            input_tokens: 3,
            output_tokens: u64::MAX
        })
    );
    assert_eq!(c.stop_reason.as_deref(), Some("completed"));

    let c = parse(json!({
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "cut"}]}]
    }))
    .unwrap();
    assert_eq!(
        (c.text.as_str(), c.stop_reason.as_deref()),
        ("cut", Some("max_output_tokens"))
    );

    let c = parse(json!({"output": [{"type": "message", "content": [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]}]}))
    .unwrap();
    assert_eq!(c.text, "I can't help with that.");
    assert_eq!(c.usage, None);
}

#[test]
fn plain_reply_errors() {
    let cases: Vec<(Value, ErrorKind)> = vec![
        (
            json!({"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "Please try again in 2s."}, "output": []}),
            ErrorKind::RateLimit,
        ),
        (
            json!({"status": "failed", "error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}}),
            ErrorKind::RateLimit,
        ),
        (
            json!({"status": "failed", "error": null}),
            ErrorKind::Unknown,
        ),
        (json!({"id": "resp_1"}), ErrorKind::Format),
        (json!({"output": "text"}), ErrorKind::Format),
        (
            json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}]}),
            ErrorKind::Format,
        ),
        (json!([1, 2]), ErrorKind::Format),
    ];
    for (body, want) in cases {
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.kind, want, "{body}: {}", e.message);
        assert!(e.message.starts_with("p:"), "{}", e.message);
    }
    let e = parse(json!({"error": {"code": "rate_limit_exceeded", "message": "Please try again in 2s."}})).unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
}

/// Feeds `(event name, data)` pairs; returns the deltas, the state, and the first error.
fn run(events: &[(&str, Value)]) -> (Vec<String>, StreamState, Option<ProviderError>) {
    let mut state = StreamState::default();
    let mut deltas = Vec::new();
    for (name, data) in events {
        match on_event("p", name, &data.to_string(), &mut state) {
            Ok(Some(d)) => deltas.push(d),
            Ok(None) => {}
            Err(e) => return (deltas, state, Some(e)),
        }
    }
    (deltas, state, None)
}

#[test]
fn stream_events() {
    let (deltas, state, err) = run(&[
        (
            "response.created",
            json!({"type": "response.created", "response": {"status": "in_progress", "output": []}}),
        ),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "item": {"type": "message"}}),
        ),
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "delta": "hel"}),
        ),
        // The payload's type decides; the SSE name is only the fallback.
        (
            "message",
            json!({"type": "response.output_text.delta", "delta": "lo"}),
        ),
        ("response.output_text.delta", json!({"delta": "!"})),
        (
            "response.output_text.done",
            json!({"type": "response.output_text.done", "text": "hello!"}),
        ),
        ("", json!({"type": "response.something_new", "delta": "x"})),
        (
            "response.completed",
            json!({"type": "response.completed", "response": {"status": "completed",
                "usage": {"input_tokens": 4, "output_tokens": -2}}}),
        ),
    ]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(deltas, ["hel", "lo", "!"]);
    assert!(state.done);
    assert_eq!(
        state.usage,
        Some(Usage {
            input_tokens: 4,
            output_tokens: 0
        })
    );
    assert_eq!(state.stop_reason.as_deref(), Some("completed"));

    let (_, state, err) = run(&[(
        "response.incomplete",
        json!({"type": "response.incomplete", "response": {"status": "incomplete",
            "incomplete_details": {"reason": "content_filter"}}}),
    )]);
    assert!(err.is_none());
    assert!(state.done);
    assert_eq!(state.stop_reason.as_deref(), Some("content_filter"));

    let (_, state, _) = run(&[("response.completed", json!({"type": "response.completed"}))]);
    assert!(state.done);
    assert_eq!(state.stop_reason.as_deref(), Some("completed"));

    let mut state = StreamState::default();
    assert!(on_event("p", "", "  ", &mut state).unwrap().is_none());
    let e = on_event("p", "", "{not json", &mut state).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Format);
}

#[test]
fn stream_errors_are_classified_like_openai() {
    let failed = |error: Value| {
        (
            "response.failed",
            json!({"type": "response.failed", "response": {"status": "failed", "error": error}}),
        )
    };
    let cases: Vec<((&str, Value), ErrorKind, Option<Duration>)> = vec![
        (
            failed(
                json!({"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}),
            ),
            ErrorKind::RateLimit,
            Some(Duration::from_millis(1500)),
        ),
        (
            failed(json!({"code": "insufficient_quota", "message": "You exceeded your current quota."})),
            ErrorKind::RateLimit,
            None,
        ),
        (
            failed(json!({"code": "server_error", "message": "The server had an error."})),
            ErrorKind::Unknown,
            None,
        ),
        (failed(Value::Null), ErrorKind::Unknown, None),
        (
            (
                "error",
                json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": null}),
            ),
            ErrorKind::RateLimit,
            None,
        ),
        (
            (
                "error",
                json!({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "bad key"}}),
            ),
            ErrorKind::Auth,
            None,
        ),
        (
            ("error", json!({"type": "error", "message": "Overloaded"})),
            ErrorKind::Overloaded,
            None,
        ),
    ];
    for (event, want, hint) in cases {
        let (_, _, err) = run(std::slice::from_ref(&event));
        let e = err.unwrap_or_else(|| panic!("{event:?}: no error"));
        assert_eq!(e.kind, want, "{event:?}: {}", e.message);
        assert_eq!(e.retry_after, hint, "{event:?}");
        assert_eq!(e.status, None);
        assert!(e.message.starts_with("p:"), "{}", e.message);
        assert!(!e.message.contains("stream error error"), "{}", e.message);
    }
    let (_, _, err) = run(&[failed(
        json!({"code": "insufficient_quota", "message": "You exceeded your current quota."}),
    )]);
    assert!(err.is_some_and(|e| e.is_quota()));
}

#[test]
fn chatgpt_detail_bodies_keep_the_status_class() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let cases = [
        (429, r#"{"detail":"Too many requests"}"#, ErrorKind::RateLimit),
        (429, r#"{"detail":"slow"}"#, ErrorKind::RateLimit),
        (401, r#"{"detail":"Could not parse your authentication token. Please try signing in again."}"#, ErrorKind::Auth),
        (403, r#"{"detail":"rate limit"}"#, ErrorKind::Auth),
        (400, r#"{"detail":"Instructions are required"}"#, ErrorKind::Format),
        (400, r#"{"detail":[{"loc":["body","input"],"msg":"field required"}]}"#, ErrorKind::Format),
        (500, r#"{"detail":null}"#, ErrorKind::Unknown),
    ];
    for (status, body, want) in cases {
        let e = classify_http_at("p", status, None, body, now);
        assert_eq!(e.kind, want, "{status} {body}: {}", e.message);
        assert_eq!(e.status, Some(status));
        assert!(
            !e.message.contains("{\"detail\""),
            "the message is the detail, not the raw body: {}",
            e.message
        );
    }
    let e = classify_http_at("p", 400, None, r#"{"detail":"Instructions are required"}"#, now);
    assert!(e.message.ends_with(": Instructions are required"), "{}", e.message);
}

#[test]
fn openai_shaped_http_errors_match_openai_classification() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let bodies = [
        (429, r#"{"error":{"message":"Rate limit reached. Please try again in 20s.","type":"requests","code":"rate_limit_exceeded"}}"#),
        (429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#),
        (401, r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#),
        (402, r#"{"error":{"message":"Insufficient credits","type":"insufficient_credits"}}"#),
        (503, r#"{"error":{"message":"The server is overloaded","type":"server_error"}}"#),
        (400, r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#),
        (500, "<html>oops</html>"),
        (429, ""),
    ];
    for (status, body) in bodies {
        let hint = Some(Duration::from_secs(7));
        for h in [None, hint] {
            assert_eq!(
                classify_http_at("p", status, h, body, now),
                classify("p", Some(status), h, body),
                "{status} {body}"
            );
        }
    }
}

#[test]
fn codex_usage_limit_reset_is_the_retry_hint() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let body = |extra: &str| {
        format!(
            r#"{{"error":{{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus"{extra}}}}}"#
        )
    };
    let e = classify_http_at("p", 429, None, &body(r#","resets_in_seconds":3600"#), now);
    assert_eq!(e.kind, ErrorKind::RateLimit);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3600)));
    assert_eq!(e.code.as_deref(), Some("usage_limit_reached"));
    let e = classify_http_at("p", 429, None, &body(r#","resets_at":1700000900"#), now);
    assert_eq!(e.retry_after, Some(Duration::from_secs(900)));
    // A header hint wins; absurd or past reset times are clamped or ignored.
    let e = classify_http_at(
        "p",
        429,
        Some(Duration::from_secs(5)),
        &body(r#","resets_in_seconds":3600"#),
        now,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
    let e = classify_http_at("p", 429, None, &body(r#","resets_in_seconds":1e30"#), now);
    assert_eq!(e.retry_after, Some(super::super::error::MAX_RETRY_HINT));
    let e = classify_http_at("p", 429, None, &body(r#","resets_at":1"#), now);
    assert_eq!(e.retry_after, None);
}
