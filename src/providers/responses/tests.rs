//! Tables for the Responses API: request fields, plain replies and stream events (the
//! error shapes are in `error_tests`).

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
        messages.insert(0, ChatMessage::system("be brief"));
        messages.push(ChatMessage::system("and kind"));
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

pub(super) fn parse(body: Value) -> Result<Completion, ProviderError> {
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

/// Feeds `(event name, data)` pairs; returns the deltas, the state, and the first error.
pub(super) fn run(events: &[(&str, Value)]) -> (Vec<String>, StreamState, Option<ProviderError>) {
    let mut state = StreamState::default();
    let mut deltas = Vec::new();
    for (name, data) in events {
        match on_event("p", name, &data.to_string(), &mut state) {
            Ok(Some(d)) => {
                // As `stream::read_stream` does.
                state.text.push_str(&d);
                deltas.push(d);
            }
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

    // No deltas: the completed response's output is the text; after deltas it is not
    // repeated.
    let completed = (
        "response.completed",
        json!({"type": "response.completed", "response": {"status": "completed",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "whole"}]}]}}),
    );
    let (deltas, state, _) = run(std::slice::from_ref(&completed));
    assert_eq!((deltas, state.done), (vec!["whole".to_string()], true));
    let (deltas, state, _) = run(&[
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "delta": "whole"}),
        ),
        completed,
    ]);
    assert_eq!(
        (deltas, state.text.as_str()),
        (vec!["whole".to_string()], "whole")
    );

    let mut state = StreamState::default();
    assert!(on_event("p", "", "  ", &mut state).unwrap().is_none());
    let e = on_event("p", "", "{not json", &mut state).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Format);
}

#[test]
fn images_go_as_input_image_data_urls_after_the_text() {
    let bytes = bytes::Bytes::from_static(b"RIFF\0\0\0\0WEBPVP8 ");
    let img = crate::media::ImagePart::from_bytes("a.webp", bytes, 100).unwrap();
    let mut user = ChatMessage::user("look");
    user.images = vec![img.clone()];
    let mut alone = ChatMessage::user("");
    alone.images = vec![img.clone()];
    let r = ChatRequest {
        model: "gpt-x".into(),
        messages: vec![user, alone],
        max_tokens: 1,
    };
    let b = request_body(&settings(false), &r, true);
    assert_eq!(
        b["input"][0]["content"],
        json!([
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": img.data_url()},
        ])
    );
    assert_eq!(
        b["input"][1]["content"],
        json!([{"type": "input_image", "image_url": img.data_url()}])
    );
}
