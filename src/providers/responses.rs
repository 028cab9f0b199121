//! The `openai-responses` wire API: `POST {baseUrl}/responses` with a bearer token (the
//! OpenAI Responses API, and the ChatGPT Codex backend that speaks it). Owns the request
//! body, the plain reply (`output` items), the SSE events (`response.output_text.delta` …
//! `response.completed`) and the translation of this API's error shapes into the OpenAI
//! one before `error::classify` (the Codex backend also answers `{"detail": "..."}` and
//! `usage_limit_reached` with a reset time). Sending, timeouts and the stream plumbing are
//! `http`'s and `stream`'s.

use super::error::{clamp_hint_secs, classify};
use super::http::{ApiCall, malformed};
use super::stream::StreamState;
use super::{ChatRequest, Completion, ProviderError, ProviderSettings, Role, Usage, token_count};
use crate::auth::credential::Credential;
use crate::config::ApiKind;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Instructions for a backend that refuses a call without any (the ChatGPT Codex backend
/// answers 400 "Instructions are required") when the conversation has no system text.
pub const DEFAULT_INSTRUCTIONS: &str = "You are a helpful assistant.";

pub fn build(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    cred: &Credential,
    req: &ChatRequest,
    stream: bool,
) -> ApiCall {
    let body = request_body(settings, req, stream);
    super::http::bearer_json(
        http,
        format!("{}/responses", settings.base_url),
        cred,
        &body,
        stream,
        ApiKind::OpenaiResponses,
    )
}

/// The JSON body of one call (pure, so the field rules are table-tested).
pub fn request_body(settings: &ProviderSettings, req: &ChatRequest, stream: bool) -> Value {
    let input: Vec<Value> = req
        .turns()
        .map(|m| {
            let (role, part) = match m.role {
                Role::Assistant => ("assistant", "output_text"),
                Role::User | Role::System => ("user", "input_text"),
            };
            let mut content = Vec::with_capacity(m.images.len() + 1);
            if !m.content.is_empty() || m.images.is_empty() {
                content.push(json!({"type": part, "text": m.content}));
            }
            // Only user messages carry images (DESIGN §10), as `data:` URLs.
            for img in &m.images {
                content.push(json!({"type": "input_image", "image_url": img.data_url()}));
            }
            json!({
                "type": "message",
                "role": role,
                "content": content,
            })
        })
        .collect();
    // The whole conversation goes with every call, so nothing is stored server-side.
    let mut body = json!({"model": req.model, "input": input, "store": false});
    let instructions = req.system_text().or_else(|| {
        settings
            .stream_only
            .then(|| DEFAULT_INSTRUCTIONS.to_string())
    });
    if let Some(text) = instructions {
        body["instructions"] = json!(text);
    }
    // The Codex backend (stream_only) refuses an output-token limit.
    if !settings.stream_only {
        body["max_output_tokens"] = json!(req.max_tokens);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn usage_of(response: &Value) -> Option<Usage> {
    let u = response.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input_tokens: token_count(u.get("input_tokens")),
        output_tokens: token_count(u.get("output_tokens")),
    })
}

/// Why a response ended: `incomplete_details.reason` when it stopped short, else its status.
fn stop_reason_of(response: &Value) -> Option<String> {
    let status = response.get("status").and_then(Value::as_str);
    if status == Some("incomplete") {
        let reason = response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
            .unwrap_or("incomplete");
        return Some(reason.to_string());
    }
    status.map(str::to_string)
}

/// The text of every `output_text` (and `refusal`) part of every `message` item;
/// other items (`reasoning`, tool calls) are skipped.
fn output_text(provider: &str, output: &[Value]) -> Result<String, ProviderError> {
    let mut text = String::new();
    for item in output {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        let Some(parts) = item.get("content").and_then(Value::as_array) else {
            continue;
        };
        for part in parts {
            let field = match part.get("type").and_then(Value::as_str) {
                Some("output_text") => "text",
                Some("refusal") => "refusal",
                _ => continue,
            };
            match part.get(field) {
                Some(Value::String(s)) => text.push_str(s),
                Some(Value::Null) | None => {}
                Some(other) => {
                    return Err(malformed(provider, format!("an output {field} is {other}")));
                }
            }
        }
    }
    Ok(text)
}

pub fn parse_reply(provider: &str, body: &[u8]) -> Result<Completion, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| malformed(provider, e))?;
    if !v.is_object() {
        return Err(malformed(provider, "expected a JSON object"));
    }
    if v.get("error").is_some_and(|e| !e.is_null())
        || v.get("status").and_then(Value::as_str) == Some("failed")
    {
        return Err(failed(provider, &v));
    }
    let output = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(provider, "no output in the reply"))?;
    Ok(Completion {
        text: output_text(provider, output)?,
        usage: usage_of(&v),
        stop_reason: stop_reason_of(&v),
    })
}

/// One SSE event (`event:` name and `data:` payload); returns the text delta it carries.
/// The payload's own `type` names the event; the SSE name is the fallback.
pub fn on_event(
    provider: &str,
    event: &str,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<String>, ProviderError> {
    let data = data.trim();
    if data.is_empty() {
        return Ok(None);
    }
    if data == "[DONE]" {
        // Not part of the Responses API, but some compatible servers end with it.
        state.done = true;
        return Ok(None);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| malformed(provider, format!("stream event: {e}")))?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or(event);
    match kind {
        "response.output_text.delta" | "response.refusal.delta" => {
            Ok(v.get("delta").and_then(Value::as_str).map(str::to_string))
        }
        "response.completed" | "response.done" | "response.incomplete" => {
            let response = v.get("response").unwrap_or(&Value::Null);
            if let Some(u) = usage_of(response) {
                state.usage = Some(u);
            }
            state.stop_reason = stop_reason_of(response).or_else(|| {
                Some(match kind {
                    "response.incomplete" => "incomplete".to_string(),
                    _ => "completed".to_string(),
                })
            });
            state.done = true;
            // A server that sent no deltas still delivers the text in the final response.
            match response.get("output").and_then(Value::as_array) {
                Some(output) if state.text.is_empty() => output_text(provider, output).map(Some),
                _ => Ok(None),
            }
        }
        "response.failed" => Err(failed(provider, v.get("response").unwrap_or(&v))),
        "error" => Err(failed(provider, &v)),
        _ => Ok(None),
    }
}

/// A failed response or an `error` event, classified like an OpenAI error. The error
/// object is `response.error`, a top-level `error`, or the event itself
/// (`{"type":"error","code":…,"message":…}`).
fn failed(provider: &str, v: &Value) -> ProviderError {
    let mut err = match v.get("error") {
        Some(e @ Value::Object(_)) => e.clone(),
        Some(Value::String(s)) => json!({"message": s}),
        _ => {
            let mut e = Map::new();
            for field in ["code", "message", "param"] {
                if let Some(x) = v.get(field) {
                    e.insert(field.to_string(), x.clone());
                }
            }
            Value::Object(e)
        }
    };
    if !err.get("message").is_some_and(Value::is_string) {
        err["message"] = json!("the provider reported a failed response without details");
    }
    classify(provider, None, None, &json!({"error": err}).to_string())
}

/// An HTTP error reply, classified like OpenAI's: `{"error": {...}}` as it is, a
/// `{"detail": ...}` body (the ChatGPT backend) as the error message, and the Codex
/// `usage_limit_reached` reset time (`resets_in_seconds`, `resets_at`) as the retry
/// hint when no header gave one.
pub fn classify_http(
    provider: &str,
    status: u16,
    header_hint: Option<Duration>,
    body: &str,
) -> ProviderError {
    classify_http_at(provider, status, header_hint, body, SystemTime::now())
}

/// `classify_http` with "now" given (a `resets_at` is a wait until then).
pub fn classify_http_at(
    provider: &str,
    status: u16,
    header_hint: Option<Duration>,
    body: &str,
    now: SystemTime,
) -> ProviderError {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return classify(provider, Some(status), header_hint, body);
    };
    let hint = header_hint.or_else(|| reset_hint(v.get("error").unwrap_or(&Value::Null), now));
    let body = match v.get("detail") {
        Some(detail) if v.get("error").is_none_or(Value::is_null) => {
            let message = match detail {
                Value::String(s) => s.clone(),
                other => other.to_string().chars().take(300).collect(),
            };
            json!({"error": {"message": message}}).to_string()
        }
        _ => body.to_string(),
    };
    classify(provider, Some(status), hint, &body)
}

/// The wait until a usage window resets, from the Codex backend's error fields.
fn reset_hint(err: &Value, now: SystemTime) -> Option<Duration> {
    if let Some(secs) = err.get("resets_in_seconds").and_then(Value::as_f64) {
        return clamp_hint_secs(secs);
    }
    let at = err.get("resets_at").and_then(Value::as_f64)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    clamp_hint_secs(at - now)
}

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;
