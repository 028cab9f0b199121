//! OpenAI Chat Completions wire format (`POST /v1/chat/completions`).

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

fn completion_id(ctx: &Ctx) -> String {
    format!("chatcmpl-fake{}", ctx.n)
}

fn usage(ctx: &Ctx, text: &str) -> Value {
    let completion = output_tokens(text);
    json!({
        "prompt_tokens": ctx.input_tokens,
        "completion_tokens": completion,
        "total_tokens": ctx.input_tokens + completion
    })
}

pub(super) fn ok(ctx: &Ctx, text: &str) -> Response {
    let body = json!({
        "id": completion_id(ctx),
        "object": "chat.completion",
        "created": unix_now(),
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": usage(ctx, text),
        "system_fingerprint": "fp_fake"
    });
    json_response(200, JSON, vec![request_id(ctx)], &body)
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

pub(super) fn stream(ctx: &Ctx, pieces: &[String], end: StreamEnd) -> StreamPlan {
    let created = unix_now();
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": completion_id(ctx),
            "object": "chat.completion.chunk",
            "created": created,
            "model": ctx.model,
            "system_fingerprint": "fp_fake",
            "choices": choices
        });
        if ctx.include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut frames = vec![data(&chunk(json!([{
        "index": 0,
        "delta": {"role": "assistant", "content": "", "refusal": null},
        "logprobs": null,
        "finish_reason": null
    }])))];
    for piece in pieces {
        frames.push(data(&chunk(json!([{
            "index": 0,
            "delta": {"content": piece},
            "logprobs": null,
            "finish_reason": null
        }]))));
    }
    match end {
        StreamEnd::Complete => {
            frames.push(data(&chunk(json!([{
                "index": 0,
                "delta": {},
                "logprobs": null,
                "finish_reason": "stop"
            }]))));
            if ctx.include_usage {
                let mut last = chunk(json!([]));
                last["usage"] = usage(ctx, &pieces.concat());
                frames.push(data(&last));
            }
            frames.push("data: [DONE]\n\n".to_string());
        }
        StreamEnd::Error => frames.push(data(&json!({"error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": null,
            "code": null
        }}))),
        StreamEnd::Stall => {}
    }
    StreamPlan {
        content_type: "text/event-stream; charset=utf-8",
        headers: vec![request_id(ctx)],
        frames,
    }
}

/// `sk-abcdef…wxyz` → `sk-****wxyz`, like OpenAI's masked key.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

pub(super) fn error(ctx: &Ctx, failure: &Failure) -> Response {
    let mut headers = vec![request_id(ctx)];
    let (status, kind, code, message): (u16, &str, Value, String) = match failure {
        Failure::RateLimit(retry) => {
            if let Some(secs) = retry {
                headers.push(("retry-after".into(), secs.to_string()));
            }
            let secs = retry.unwrap_or(20);
            headers.push(("x-ratelimit-limit-requests".into(), "3".into()));
            headers.push(("x-ratelimit-remaining-requests".into(), "0".into()));
            headers.push(("x-ratelimit-reset-requests".into(), format!("{secs}s")));
            (
                429,
                "requests",
                json!("rate_limit_exceeded"),
                format!(
                    "Rate limit reached for {} in organization org-fake on requests per min (RPM): Limit 3, \
                     Used 3, Requested 1. Please try again in {secs}s. Visit \
                     https://platform.openai.com/account/rate-limits to learn more.",
                    ctx.model
                ),
            )
        }
        Failure::Quota => (
            429,
            "insufficient_quota",
            json!("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details. For more \
             information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
                .into(),
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
            format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask_key(ctx.key.as_deref().unwrap_or(""))
            ),
        ),
        Failure::ClaudeCodeOnly => (400, "invalid_request_error", Value::Null, CLAUDE_CODE_ONLY_MESSAGE.into()),
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
