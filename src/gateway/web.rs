//! The web chat: `GET /` serves the page with its script and stylesheet (`/app.js`,
//! `/app.css`, embedded in the binary; no inline code, so the strict CSP holds), and
//! `POST /api/chat` runs one message through the session (`web:<id>`) — chat commands
//! included — and streams the reply as SSE events `delta`, `done` and `error`.

use super::GatewayState;
use super::body::read_json;
use super::refusal::Refusal;
use super::request::chat_body;
use super::stream::{StreamEvent, spawn_streaming};
use crate::chat::{ChatResult, Inbound, handle};
use crate::session::key;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream;
use serde_json::json;
use std::convert::Infallible;

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

pub async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
}

fn final_events(result: &ChatResult) -> Vec<Event> {
    let mut out = Vec::new();
    // A directive-only message streamed nothing: its notice is the reply.
    if result.turn.is_none()
        && !result.is_error()
        && let Some(n) = &result.notice
    {
        out.push(
            Event::default()
                .event("delta")
                .data(json!({"text": n}).to_string()),
        );
    }
    if result.is_error() {
        out.push(
            Event::default()
                .event("error")
                .data(json!({"message": result.reply_text()}).to_string()),
        );
    } else {
        let credential = result.turn.as_ref().and_then(|t| t.credential.clone());
        let model = result.model.as_ref().map(ToString::to_string);
        out.push(
            Event::default()
                .event("done")
                .data(json!({"model": model, "credential": credential}).to_string()),
        );
    }
    out
}

pub async fn chat(State(state): State<GatewayState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_json(&headers, body, state.max_body_bytes)
        .await
        .and_then(|v| chat_body(&v))
    {
        Ok(b) => b,
        Err(refusal) => return refusal.plain(),
    };
    let id = body.session.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Refusal::field(
            "session",
            format!(
                "session id \"{}\" must be 1–64 letters, digits, '-' or '_'",
                id.chars().take(80).collect::<String>()
            ),
        )
        .plain();
    }
    if body.message.trim().is_empty() {
        return Refusal::field("message", "the message is empty: type something to send").plain();
    }
    let permit = match state.limiter.acquire().await {
        Ok(p) => p,
        Err(busy) => return super::busy_refusal(&busy).plain(),
    };
    let session = key::web(id);
    let app = state.app.clone();
    let message = body.message;
    let rx = spawn_streaming(move |sink| async move {
        let mut sink = |d: &str| sink.send(d);
        // The web chat is the operator's own page (loopback or token-protected): an owner.
        let msg = Inbound {
            session: &session,
            text: &message,
            owner: true,
            bot_username: None,
            agent: None,
            system_prompt: None,
            attachments: &[],
            quoted: None,
        };
        let result = handle(&app, msg, Some(&mut sink)).await;
        drop(permit);
        result
    });
    let events = stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await? {
            StreamEvent::Delta(text) => Some((
                vec![
                    Event::default()
                        .event("delta")
                        .data(json!({"text": text}).to_string()),
                ],
                Some(rx),
            )),
            StreamEvent::Done(result) => Some((final_events(&result), None)),
        }
    });
    let flat = futures_util::StreamExt::flat_map(events, |evs| {
        stream::iter(evs.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(flat).into_response()
}
