//! `POST /v1/chat/completions` (OpenAI-compatible, streaming and not) and
//! `GET /v1/models`. The request's `messages` are the whole conversation: nothing is
//! added from or written to session history. `image_url` parts (base64 `data:` URLs)
//! go to the model as images (`images`); a model with `images = false` gets a 400.

use super::GatewayState;
use super::body::read_json;
use super::request::completion_request;
use super::stream::{StreamEvent, spawn_streaming};
use crate::chat::views::effective_model;
use crate::chat::{apply, select};
use crate::directive::{self, ParseContext, Parsed, split_model_profile};
use crate::engine::{TurnError, TurnInput, TurnResult};
use crate::providers::{ChatMessage, ErrorKind, Role};
use crate::session::key;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

/// Model name meaning "whatever this session uses".
pub const SESSION_MODEL: &str = "remoteclaw";

fn api_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

/// A store that failed: 503 `store_unavailable` when it cannot be reached (DESIGN §9),
/// else 500 `store_error`.
fn store_error(e: &crate::state::StoreError) -> Response {
    let (status, code) = if crate::state::redis::is_unavailable(e) {
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "store_error")
    };
    api_error(status, "remoteclaw_error", code, &e.to_string())
}

/// HTTP status and OpenAI error type for a failed turn.
fn error_status(e: &TurnError) -> (StatusCode, &'static str) {
    match e {
        TurnError::Resolve(_) => (StatusCode::FAILED_DEPENDENCY, "no_credentials"),
        TurnError::StateStore(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        TurnError::UnknownProvider { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "config_error"),
        TurnError::ImagesNotAccepted { .. } => {
            (StatusCode::BAD_REQUEST, "model_does_not_accept_images")
        }
        TurnError::ImageRefused { .. } => (StatusCode::BAD_REQUEST, "image_refused"),
        TurnError::TooManyImages => (StatusCode::BAD_REQUEST, "too_many_images"),
        TurnError::Provider(p) => match p.kind {
            ErrorKind::RateLimit => (StatusCode::TOO_MANY_REQUESTS, "rate_limit"),
            ErrorKind::Billing => (StatusCode::PAYMENT_REQUIRED, "billing"),
            ErrorKind::Auth => (StatusCode::FAILED_DEPENDENCY, "upstream_auth"),
            ErrorKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ErrorKind::Format | ErrorKind::Unknown => (StatusCode::BAD_GATEWAY, "upstream_error"),
        },
    }
}

/// A failed turn as an OpenAI error. A rate limit carries `Retry-After`: the provider's
/// hint, else `fallback_secs` (the first step of the cooldown the key was put in).
fn turn_error_response(e: &TurnError, fallback_secs: u64) -> Response {
    let (status, code) = error_status(e);
    // The request's own fault (its images): OpenAI's type for it.
    let kind = if status == StatusCode::BAD_REQUEST {
        "invalid_request_error"
    } else {
        "remoteclaw_error"
    };
    let mut resp = api_error(status, kind, code, &e.to_string());
    if let TurnError::Provider(p) = e {
        let secs = match (p.retry_after, p.kind) {
            (Some(d), _) => Some(d.as_secs()),
            (None, ErrorKind::RateLimit) => Some(fallback_secs),
            (None, _) => None,
        };
        if let Some(v) = secs.and_then(|s| HeaderValue::from_str(&s.max(1).to_string()).ok()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Seconds a rate-limited key cools down for when the provider named no time: the first
/// step of `auth.cooldowns.rateLimitBackoffSecs` (DESIGN §5: 1 min).
fn rate_limit_fallback(app: &crate::app::App) -> u64 {
    app.config()
        .auth
        .cooldowns
        .rate_limit_backoff_secs
        .first()
        .copied()
        .unwrap_or(60)
}

fn completion_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "chatcmpl-rc{nanos:x}{:x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A reply that is plain text from RemoteClaw itself (a directive's answer), in the
/// shape the client asked for.
fn text_response(
    id: String,
    created: u64,
    model: &str,
    text: &str,
    stream: bool,
    include_usage: bool,
) -> Response {
    if !stream {
        return axum::Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage_json(None),
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": text}), None),
        chunk(json!({}), Some("stop")),
    ];
    if include_usage {
        events.push(usage_chunk(&id, created, model, None));
    }
    events.push("[DONE]".to_string());
    sse_of(events)
}

/// A finished SSE stream of these `data:` lines.
fn sse_of(events: Vec<String>) -> Response {
    Sse::new(stream::iter(
        events
            .into_iter()
            .map(|d| Ok::<_, Infallible>(Event::default().data(d))),
    ))
    .into_response()
}

pub async fn chat_completions(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = state.app.metrics.clone();
    metrics.message("http", "in");
    let response = completions(state, headers, body).await;
    // Every request is answered: a reply, or an error object that says why not (as a
    // failed turn in a chat channel is answered with why).
    metrics.message("http", "out");
    response
}

async fn completions(state: GatewayState, headers: HeaderMap, body: Body) -> Response {
    let max_image = state.app.config().agents.defaults.max_image_bytes();
    let (req, parts) = match read_json(&headers, body, state.max_body_bytes)
        .await
        .and_then(|v| completion_request(&v))
        .and_then(|r| super::images::decode(&r.messages, max_image).map(|i| (r, i)))
    {
        Ok(r) => r,
        Err(refusal) => return refusal.openai(),
    };
    // Linked images are downloaded now, before a turn slot or the session is taken.
    let images = match super::images::fetch(parts, max_image).await {
        Ok(i) => i,
        Err(refusal) => return refusal.openai(),
    };
    // Absent: the default session. Present, it must be one readable key, never quietly
    // another session (a directive would land on `web:default`).
    let given = super::access::single(
        &headers,
        &axum::http::HeaderName::from_static("x-remoteclaw-session"),
    );
    let validated = match given {
        Ok(s) => {
            let s = s.unwrap_or("web:default");
            key::validate(s).map(|()| s.to_string())
        }
        Err(()) => {
            Err("give it once, as plain ASCII text: a short name such as web:abc".to_string())
        }
    };
    let session = match validated {
        Ok(s) => s,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_session",
                &format!("x-remoteclaw-session: {e}"),
            );
        }
    };
    let app = &state.app;
    let catalog = &app.engine.catalog();
    // The request may name a model (and pin a profile for this request only).
    let explicit = match req.model.trim() {
        "" | SESSION_MODEL => None,
        m => {
            let (model, profile) = split_model_profile(m);
            match select(app, model, profile, true, None).await {
                Ok(choice) => Some(choice),
                Err(e) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        "model_not_found",
                        &e,
                    );
                }
            }
        }
    };
    let mut messages = Vec::with_capacity(req.messages.len());
    // Every message's images go (the API is stateless); only user messages have any.
    for (m, images) in req.messages.into_iter().zip(images) {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue, // tool/function messages have no place in a plain chat
        };
        messages.push(ChatMessage {
            role,
            content: m.text,
            images,
        });
    }
    let Some(last_user) = messages.iter().rposition(|m| m.role == Role::User) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "no_user_message",
            "messages must contain at least one user message",
        );
    };
    // Directives and turns alike count against gateway.maxConcurrentTurns.
    let permit = match state.limiter.acquire().await {
        Ok(p) => p,
        Err(busy) => return super::busy_refusal(&busy).openai(),
    };
    let id = completion_id();
    let created = unix_now();

    // Chat commands in the last user message act on the session, as in any channel.
    let ctx = ParseContext {
        bot_username: None,
        aliases: &catalog.alias_words,
    };
    match directive::parse(&messages[last_user].content, &ctx) {
        Parsed::Plain | Parsed::NotForUs => {}
        Parsed::Error { error, .. } => {
            return text_response(
                id,
                created,
                SESSION_MODEL,
                &error.to_string(),
                req.stream,
                req.include_usage,
            );
        }
        Parsed::Directive {
            directive, rest, ..
        } => {
            let mut turn = match app.sessions.begin(&session).await {
                Ok(t) => t,
                Err(crate::session::SessionError::Store(e)) => return store_error(&e),
                Err(e) => {
                    return api_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "remoteclaw_error",
                        "session_busy",
                        &e.to_string(),
                    );
                }
            };
            let (text, _, ok) = apply(app, &mut turn, &directive, true, None).await;
            // A directive alone answers as a directive; with images it is their turn.
            if !ok || (rest.is_empty() && messages[last_user].images.is_empty()) {
                return text_response(
                    id,
                    created,
                    SESSION_MODEL,
                    &text,
                    req.stream,
                    req.include_usage,
                );
            }
            messages[last_user].content = rest;
        }
    }
    let (model, pin) = match explicit {
        Some((m, Some(p))) => (Some(m), Some(p)),
        explicit => {
            let state = match app.sessions.choice(&session).await {
                Ok(state) => state,
                Err(e) => return store_error(&e),
            };
            match explicit {
                // A model named without a profile keeps the session's pin when the pin
                // is for that model's provider: OpenAI clients always send a model, and
                // a pinned credential is never silently replaced (DESIGN §3
                // `pinPolicy`, §7).
                Some((m, _)) => {
                    let pin = match state.pin {
                        Some(pin)
                            if pin_provider(app, &pin.profile).await.as_deref()
                                == Some(m.provider.as_str()) =>
                        {
                            Some(pin.profile)
                        }
                        _ => None,
                    };
                    (Some(m), pin)
                }
                None => {
                    let (m, chosen) = effective_model(app, &state);
                    (chosen.then_some(m), state.pin.map(|p| p.profile))
                }
            }
        }
    };
    let shown_model = model
        .clone()
        .unwrap_or_else(|| catalog.default.clone())
        .to_string();
    let input = TurnInput {
        model,
        pin,
        messages,
        agent: None,
        system: None,
    };

    if !req.stream {
        let result = state.app.engine.run_turn(input, None).await;
        drop(permit);
        crate::chat::record_usage(&state.app, &session, &result);
        return match &result.error {
            Some(e) => turn_error_response(e, rate_limit_fallback(&state.app)),
            None => axum::Json(completion_body(&id, created, &result)).into_response(),
        };
    }

    let app = state.app.clone();
    let mut rx = spawn_streaming(move |sink| async move {
        let mut sink = |d: &str| sink.send(d);
        let result = app.engine.run_turn(input, Some(&mut sink)).await;
        drop(permit);
        crate::chat::record_usage(&app, &session, &result);
        result
    });
    // Wait for the first event: a turn that fails before any text gets a proper HTTP error.
    let first = match rx.recv().await {
        Some(StreamEvent::Done(result)) if result.error.is_some() => {
            return match result.error.as_ref() {
                // DESIGN §8: a timed-out streamed turn is 504 *and* the stream's shape,
                // an error chunk then `[DONE]`, so a streaming client reads it as one.
                Some(e @ TurnError::Provider(p)) if p.kind == ErrorKind::Timeout => {
                    let mut resp = sse_of(vec![error_chunk(e), "[DONE]".to_string()]);
                    *resp.status_mut() = StatusCode::GATEWAY_TIMEOUT;
                    resp
                }
                Some(e) => turn_error_response(e, rate_limit_fallback(&state.app)),
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
        }
        other => other,
    };
    // `stream_options.include_usage`: one more chunk, no choices, the turn's token counts.
    let usage_of = req.include_usage.then(|| {
        let (id, model) = (id.clone(), shown_model.clone());
        move |u: Option<crate::providers::Usage>| usage_chunk(&id, created, &model, u)
    });
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": shown_model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let head = chunk(json!({"role": "assistant", "content": ""}), None);
    let events = stream::unfold(
        (Some(head), first, rx, chunk, false, usage_of),
        |(head, pending, mut rx, chunk, finished, usage_of)| async move {
            if let Some(h) = head {
                return Some((
                    vec![Event::default().data(h.to_string())],
                    (None, pending, rx, chunk, finished, usage_of),
                ));
            }
            if finished {
                return None;
            }
            let ev = match pending {
                Some(ev) => ev,
                None => rx.recv().await?,
            };
            let out = match ev {
                StreamEvent::Delta(text) => (
                    vec![Event::default().data(chunk(json!({"content": text}), None).to_string())],
                    false,
                ),
                StreamEvent::Done(result) => {
                    let mut evs = Vec::new();
                    match &result.error {
                        None => {
                            evs.push(
                                Event::default().data(chunk(json!({}), Some("stop")).to_string()),
                            );
                            if let Some(u) = &usage_of {
                                evs.push(Event::default().data(u(result.usage)));
                            }
                        }
                        Some(e) => evs.push(Event::default().data(error_chunk(e))),
                    }
                    evs.push(Event::default().data("[DONE]"));
                    (evs, true)
                }
            };
            Some((out.0, (None, None, rx, chunk, out.1, usage_of)))
        },
    );
    let flat = futures_util::StreamExt::flat_map(events, |evs| {
        stream::iter(evs.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(flat).into_response()
}

/// OpenAI's `usage` object (zeros when the provider reported none).
fn usage_json(u: Option<crate::providers::Usage>) -> Value {
    let u = u.unwrap_or_default();
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total()})
}

/// The last chunk of a stream asked for with `stream_options.include_usage`.
fn usage_chunk(id: &str, created: u64, model: &str, u: Option<crate::providers::Usage>) -> String {
    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": [], "usage": usage_json(u)})
    .to_string()
}

/// The SSE data of a turn that failed mid-stream (OpenAI's error object).
fn error_chunk(e: &TurnError) -> String {
    let (_, code) = error_status(e);
    json!({"error": {"message": e.to_string(), "type": "remoteclaw_error", "param": null, "code": code}})
        .to_string()
}

fn completion_body(id: &str, created: u64, result: &TurnResult) -> Value {
    let usage = usage_json(result.usage);
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": result.model.to_string(),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.reply}, "finish_reason": "stop"}],
        "usage": usage,
    })
}

pub async fn list_models(State(state): State<GatewayState>) -> impl IntoResponse {
    let catalog = &state.app.engine.catalog();
    let mut ids: Vec<String> = vec![SESSION_MODEL.to_string(), catalog.default.to_string()];
    ids.extend(catalog.fallbacks.iter().map(ToString::to_string));
    ids.extend(catalog.allowed.keys().map(ToString::to_string));
    ids.extend(catalog.aliases.keys().cloned());
    let mut seen = std::collections::HashSet::new();
    ids.retain(|i| seen.insert(i.clone()));
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "remoteclaw"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data}))
}

/// The provider of auth profile `id` (of the default agent), if the profile is known.
async fn pin_provider(app: &crate::app::App, id: &str) -> Option<String> {
    let store = app.engine.resolver_for(None).store_holding(Some(id)).await;
    store.profiles.get(id).map(|p| p.provider.clone())
}
