//! OpenAI Responses API wire format (`POST /v1/responses`): plain replies with `output`
//! items (a `reasoning` item before the message, as reasoning models send), SSE with
//! `event:` names and typed `data:` payloads ending in `response.completed`, and errors
//! in the OpenAI shape (`response.failed` inside a stream).

use axum::response::Response;
use serde_json::{Value, json};

use super::{
    CLAUDE_CODE_ONLY_MESSAGE, Ctx, Failure, StreamEnd, StreamPlan, json_response, output_tokens,
    unix_now,
};

const JSON: &str = "application/json";

fn request_id(ctx: &Ctx) -> (String, String) {
    ("x-request-id".to_string(), format!("req_fake_{}", ctx.n))
}

fn response_id(ctx: &Ctx) -> String {
    format!("resp_fake{}", ctx.n)
}

fn message_id(ctx: &Ctx) -> String {
    format!("msg_fake{}", ctx.n)
}

fn usage(ctx: &Ctx, text: &str) -> Value {
    let output = output_tokens(text);
    json!({
        "input_tokens": ctx.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": ctx.input_tokens + output
    })
}

fn message_item(ctx: &Ctx, text: &str, status: &str) -> Value {
    json!({
        "id": message_id(ctx),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]
    })
}

/// The response object: `output` empty while in progress.
fn response(ctx: &Ctx, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": response_id(ctx),
        "object": "response",
        "created_at": unix_now(),
        "status": status,
        "error": null,
        "incomplete_details": null,
        "model": ctx.model,
        "output": output,
        "store": false,
        "usage": usage
    })
}

fn reasoning_item(ctx: &Ctx) -> Value {
    json!({"id": format!("rs_fake{}", ctx.n), "type": "reasoning", "summary": []})
}

pub(super) fn ok(ctx: &Ctx, text: &str) -> Response {
    let body = response(
        ctx,
        "completed",
        vec![reasoning_item(ctx), message_item(ctx, text, "completed")],
        usage(ctx, text),
    );
    json_response(200, JSON, vec![request_id(ctx)], &body)
}

fn event(seq: &mut u64, name: &str, mut data: Value) -> String {
    data["type"] = json!(name);
    data["sequence_number"] = json!(*seq);
    *seq += 1;
    format!("event: {name}\ndata: {data}\n\n")
}

pub(super) fn stream(ctx: &Ctx, pieces: &[String], end: StreamEnd) -> StreamPlan {
    let mut seq = 0;
    let text: String = pieces.concat();
    let in_progress = response(ctx, "in_progress", Vec::new(), Value::Null);
    let mut frames = vec![
        event(
            &mut seq,
            "response.created",
            json!({"response": in_progress.clone()}),
        ),
        event(
            &mut seq,
            "response.in_progress",
            json!({"response": in_progress}),
        ),
        event(
            &mut seq,
            "response.output_item.added",
            json!({"output_index": 0, "item": {"id": message_id(ctx), "type": "message",
                "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        event(
            &mut seq,
            "response.content_part.added",
            json!({"item_id": message_id(ctx), "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    for piece in pieces {
        frames.push(event(
            &mut seq,
            "response.output_text.delta",
            json!({"item_id": message_id(ctx), "output_index": 0, "content_index": 0,
                "delta": piece, "logprobs": []}),
        ));
    }
    match end {
        StreamEnd::Complete => {
            frames.push(event(
                &mut seq,
                "response.output_text.done",
                json!({"item_id": message_id(ctx), "output_index": 0, "content_index": 0,
                    "text": text, "logprobs": []}),
            ));
            frames.push(event(
                &mut seq,
                "response.content_part.done",
                json!({"item_id": message_id(ctx), "output_index": 0, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
            ));
            frames.push(event(
                &mut seq,
                "response.output_item.done",
                json!({"output_index": 0, "item": message_item(ctx, &text, "completed")}),
            ));
            let done = response(
                ctx,
                "completed",
                vec![message_item(ctx, &text, "completed")],
                usage(ctx, &text),
            );
            frames.push(event(
                &mut seq,
                "response.completed",
                json!({"response": done}),
            ));
        }
        StreamEnd::Error => {
            let mut failed = response(ctx, "failed", Vec::new(), Value::Null);
            failed["error"] = json!({
                "code": "server_error",
                "message": "The server had an error while processing your request. Sorry about that!"
            });
            frames.push(event(
                &mut seq,
                "response.failed",
                json!({"response": failed}),
            ));
        }
        StreamEnd::Stall => {}
    }
    StreamPlan {
        content_type: "text/event-stream; charset=utf-8",
        headers: vec![request_id(ctx)],
        frames,
    }
}

pub(super) fn error(ctx: &Ctx, failure: &Failure) -> Response {
    let mut headers = vec![request_id(ctx)];
    let (status, kind, code, message): (u16, &str, Value, String) = match failure {
        Failure::RateLimit(retry) => {
            if let Some(secs) = retry {
                headers.push(("retry-after".into(), secs.to_string()));
            }
            let secs = retry.unwrap_or(20);
            (
                429,
                "requests",
                json!("rate_limit_exceeded"),
                format!(
                    "Rate limit reached for {} in organization org-fake on requests per min (RPM): \
                     Limit 3, Used 3, Requested 1. Please try again in {secs}s.",
                    ctx.model
                ),
            )
        }
        Failure::Quota => (
            429,
            "insufficient_quota",
            json!("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.".into(),
        ),
        Failure::Billing => (
            402,
            "insufficient_credits",
            json!("insufficient_credits"),
            "Insufficient credits. Add more credits to your account to continue.".into(),
        ),
        Failure::Auth => (
            401,
            "invalid_request_error",
            json!("invalid_api_key"),
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".into(),
        ),
        Failure::ClaudeCodeOnly => (
            400,
            "invalid_request_error",
            Value::Null,
            CLAUDE_CODE_ONLY_MESSAGE.into(),
        ),
        Failure::Overloaded => (
            503,
            "server_error",
            Value::Null,
            "The server is overloaded or not ready yet.".into(),
        ),
        Failure::Invalid(msg) => (400, "invalid_request_error", Value::Null, msg.clone()),
        Failure::Server => (
            500,
            "server_error",
            Value::Null,
            "The server had an error while processing your request. Sorry about that!".into(),
        ),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    json_response(status, JSON, headers, &body)
}

/// Text of the last `input` message with role `user` (string content or its
/// `input_text` parts).
pub(super) fn last_user_text(body: &Value) -> String {
    let Some(input) = body.get("input") else {
        return String::new();
    };
    if let Some(s) = input.as_str() {
        return s.to_string();
    }
    let Some(items) = input.as_array() else {
        return String::new();
    };
    let Some(item) = items
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("input_text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}
