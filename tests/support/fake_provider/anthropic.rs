//! Anthropic Messages API wire format (`POST /v1/messages`).

use axum::response::Response;
use serde_json::{Value, json};

use super::{
    CLAUDE_CODE_ONLY_MESSAGE, Ctx, Failure, StreamEnd, StreamPlan, json_response, output_tokens,
};

const JSON: &str = "application/json";

fn request_id(ctx: &Ctx) -> (String, String) {
    ("request-id".to_string(), format!("req_fake_{:024}", ctx.n))
}

fn message_id(ctx: &Ctx) -> String {
    format!("msg_fake_{}", ctx.n)
}

pub(super) fn ok(ctx: &Ctx, text: &str) -> Response {
    let body = json!({
        "id": message_id(ctx),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": ctx.input_tokens, "output_tokens": output_tokens(text)}
    });
    json_response(200, JSON, vec![request_id(ctx)], &body)
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub(super) fn stream(ctx: &Ctx, pieces: &[String], end: StreamEnd) -> StreamPlan {
    let mut frames = vec![
        event(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": message_id(ctx),
                    "type": "message",
                    "role": "assistant",
                    "model": ctx.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": ctx.input_tokens, "output_tokens": 1}
                }
            }),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for piece in pieces {
        frames.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    match end {
        StreamEnd::Complete => {
            let text: String = pieces.concat();
            frames.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            frames.push(event(
                "message_delta",
                &json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"output_tokens": output_tokens(&text)}
                }),
            ));
            frames.push(event("message_stop", &json!({"type": "message_stop"})));
        }
        StreamEnd::Error => frames.push(event(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )),
        StreamEnd::Stall => {}
    }
    StreamPlan {
        content_type: "text/event-stream; charset=utf-8",
        headers: vec![request_id(ctx), ("cache-control".into(), "no-cache".into())],
        frames,
    }
}

pub(super) fn error(ctx: &Ctx, failure: &Failure) -> Response {
    let mut headers = vec![request_id(ctx)];
    let (status, kind, message): (u16, &str, String) = match failure {
        Failure::RateLimit(retry) => {
            if let Some(secs) = retry {
                headers.push(("retry-after".into(), secs.to_string()));
            }
            headers.push(("anthropic-ratelimit-requests-limit".into(), "50".into()));
            headers.push(("anthropic-ratelimit-requests-remaining".into(), "0".into()));
            (
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50 requests per minute. \
                 For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response \
                 headers for current usage. Please reduce the prompt length or the maximum tokens requested, \
                 or try again later."
                    .into(),
            )
        }
        Failure::Quota => (
            429,
            "rate_limit_error",
            "This request would exceed your organization's usage quota. Please check your plan and billing details."
                .into(),
        ),
        Failure::Billing => (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
                .into(),
        ),
        Failure::Auth => (401, "authentication_error", "invalid x-api-key".into()),
        Failure::ClaudeCodeOnly => (400, "invalid_request_error", CLAUDE_CODE_ONLY_MESSAGE.into()),
        Failure::Overloaded => (529, "overloaded_error", "Overloaded".into()),
        Failure::Invalid(msg) => (400, "invalid_request_error", msg.clone()),
        Failure::Server => (500, "api_error", "Internal server error".into()),
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    json_response(status, JSON, headers, &body)
}
