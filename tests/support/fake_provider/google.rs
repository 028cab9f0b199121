//! Google Gemini wire format (`POST /v1beta/models/{model}:generateContent`
//! and `:streamGenerateContent`, SSE with `?alt=sse`, JSON array otherwise).

use axum::response::Response;
use serde_json::{Value, json};

use super::{
    CLAUDE_CODE_ONLY_MESSAGE, Ctx, Failure, StreamEnd, StreamPlan, json_response, output_tokens,
};

const JSON: &str = "application/json; charset=UTF-8";

/// `/v1beta/models/gemini-2.0-flash:generateContent` → `("gemini-2.0-flash", "generateContent")`.
/// Only the two generate actions are accepted.
pub(super) fn parse_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v1beta/models/")?;
    let rest = rest.replace("%3A", ":").replace("%3a", ":");
    let (model, action) = rest.rsplit_once(':')?;
    if model.is_empty() || !matches!(action, "generateContent" | "streamGenerateContent") {
        return None;
    }
    Some((model.to_string(), action.to_string()))
}

pub(super) fn not_found(path: &str) -> Response {
    let body = json!({"error": {
        "code": 404,
        "message": format!("fake provider: unsupported Gemini path {path}"),
        "status": "NOT_FOUND"
    }});
    json_response(404, JSON, Vec::new(), &body)
}

/// Text parts of the last `contents` entry with role `user` (missing role counts as user).
pub(super) fn last_user_text(body: &Value) -> String {
    let Some(contents) = body.get("contents").and_then(Value::as_array) else {
        return String::new();
    };
    contents
        .iter()
        .rev()
        .find(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        })
        .and_then(|c| c.get("parts").and_then(Value::as_array))
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn response_id(ctx: &Ctx) -> String {
    format!("fake-response-{}", ctx.n)
}

fn chunk(ctx: &Ctx, text: &str, finished: Option<&str>) -> Value {
    let mut candidate = json!({
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0
    });
    let usage = match finished {
        Some(full_text) => {
            candidate["finishReason"] = json!("STOP");
            let out = output_tokens(full_text);
            json!({
                "promptTokenCount": ctx.input_tokens,
                "candidatesTokenCount": out,
                "totalTokenCount": ctx.input_tokens + out
            })
        }
        None => json!({"promptTokenCount": ctx.input_tokens, "totalTokenCount": ctx.input_tokens}),
    };
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": ctx.model,
        "responseId": response_id(ctx)
    })
}

pub(super) fn ok(ctx: &Ctx, text: &str) -> Response {
    json_response(200, JSON, Vec::new(), &chunk(ctx, text, Some(text)))
}

fn error_body(code: u16, status: &str, message: &str, details: Vec<Value>) -> Value {
    let mut error = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json!({ "error": error })
}

fn overloaded_body() -> Value {
    error_body(
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        Vec::new(),
    )
}

pub(super) fn stream(ctx: &Ctx, pieces: &[String], end: StreamEnd) -> StreamPlan {
    let mut objects: Vec<Value> = Vec::new();
    match end {
        StreamEnd::Complete => {
            let full = pieces.concat();
            if pieces.is_empty() {
                objects.push(chunk(ctx, "", Some(&full)));
            }
            for (i, piece) in pieces.iter().enumerate() {
                let last = i + 1 == pieces.len();
                objects.push(chunk(ctx, piece, last.then_some(full.as_str())));
            }
        }
        StreamEnd::Stall | StreamEnd::Error => {
            objects.extend(pieces.iter().map(|p| chunk(ctx, p, None)));
            if end == StreamEnd::Error {
                objects.push(overloaded_body());
            }
        }
    }
    let frames = if ctx.sse {
        objects
            .iter()
            .map(|o| format!("data: {o}\r\n\r\n"))
            .collect()
    } else {
        // Without alt=sse Gemini streams one JSON array, element by element.
        let mut frames = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let sep = if i == 0 { "[" } else { ",\r\n" };
            frames.push(format!("{sep}{o}"));
        }
        if end != StreamEnd::Stall {
            frames.push(if objects.is_empty() {
                "[]".into()
            } else {
                "]".into()
            });
        }
        frames
    };
    StreamPlan {
        content_type: if ctx.sse { "text/event-stream" } else { JSON },
        headers: Vec::new(),
        frames,
    }
}

pub(super) fn error(ctx: &Ctx, failure: &Failure) -> Response {
    let mut headers = Vec::new();
    let body = match failure {
        Failure::RateLimit(retry) => {
            let mut details = vec![json!({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": ctx.model},
                    "quotaValue": "15"
                }]
            })];
            if let Some(secs) = retry {
                headers.push(("retry-after".to_string(), secs.to_string()));
                details.push(json!({
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{secs}s")
                }));
            }
            error_body(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                details,
            )
        }
        Failure::Quota => error_body(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. For more information \
             on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
                }]
            })],
        ),
        Failure::Billing => error_body(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
            Vec::new(),
        ),
        Failure::Auth => error_body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            vec![
                json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }),
                json!({
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key."
                }),
            ],
        ),
        Failure::ClaudeCodeOnly => error_body(
            400,
            "INVALID_ARGUMENT",
            CLAUDE_CODE_ONLY_MESSAGE,
            Vec::new(),
        ),
        Failure::Overloaded => overloaded_body(),
        Failure::Invalid(msg) => error_body(400, "INVALID_ARGUMENT", msg, Vec::new()),
        Failure::Server => error_body(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            Vec::new(),
        ),
    };
    let status = body
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    json_response(status, JSON, headers, &body)
}
