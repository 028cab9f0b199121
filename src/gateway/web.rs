//! The web chat: `GET /` serves the page with its script and stylesheet (`/app.js`,
//! `/app.css`, embedded in the binary; no inline code, so the strict CSP holds), and
//! `POST /api/chat` runs one message — with up to four images (`upload`) — through the
//! session (`web:<id>`), chat commands included, and streams the reply as SSE events
//! `delta` (plain text as it comes), then `done` with the whole reply as a Markdown tree
//! (`format::tree`, which the page builds into DOM nodes), or `error`.
//! `GET /api/history` (`history`) gives the page the session's stored messages.

mod history;
mod upload;

pub use history::history;

use super::GatewayState;
use super::body::read_json_bytes;
use super::refusal::Refusal;
use super::request::chat_body;
use super::stream::{StreamEvent, spawn_streaming};
use crate::chat::{ChatResult, Inbound, handle};
use crate::format::tree::{self, Kind, Node};
use crate::session::key;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream;
use serde_json::json;
use std::convert::Infallible;

const PAGE: &str = include_str!("web/index.html");
/// One script for the page: the reply renderer, the image attachments, then the chat.
const SCRIPT: &str = concat!(
    include_str!("web/render.js"),
    "\n",
    include_str!("web/attach.js"),
    "\n",
    include_str!("web/app.js")
);
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

/// A web session id: 1–64 letters, digits, `-` or `_`.
fn session_id(given: &str) -> Result<&str, Refusal> {
    let id = given.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(Refusal::field(
            "session",
            format!(
                "session id \"{}\" must be 1–64 letters, digits, '-' or '_'",
                id.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(id)
}

/// The whole reply as the page shows it once done: a directive's notice as a plain
/// paragraph, then the model's reply rendered from Markdown.
fn reply_tree(result: &ChatResult) -> Vec<Node> {
    let mut nodes = Vec::new();
    if let Some(n) = &result.notice {
        nodes.push(Node::with_text(Kind::P, n.clone()));
    }
    if let Some(t) = &result.turn {
        nodes.extend(tree::render(&t.reply));
    }
    nodes
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
        // `code`: the failed turn's outcome (`rate_limit`, `no_credentials`, …), or
        // `refused` when no turn ran (a busy session, a refused directive, the store).
        let code = result
            .turn
            .as_ref()
            .and_then(|t| t.error.as_ref())
            .map_or("refused", crate::engine::TurnError::outcome);
        out.push(
            Event::default()
                .event("error")
                .data(json!({"message": result.reply_text(), "code": code}).to_string()),
        );
    } else {
        let credential = result.turn.as_ref().and_then(|t| t.credential.clone());
        let model = result.model.as_ref().map(ToString::to_string);
        let tree = reply_tree(result);
        out.push(
            Event::default()
                .event("done")
                .data(json!({"model": model, "credential": credential, "tree": tree}).to_string()),
        );
    }
    out
}

/// The message text may be at most `gateway.maxBodyBytes`, whatever room images get.
fn text_too_long(limit: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the message is longer than gateway.maxBodyBytes ({limit} bytes): send a shorter message, or raise gateway.maxBodyBytes in the config"
        ),
    )
}

/// The body without its images may be at most `gateway.maxBodyBytes` (DESIGN §7); the
/// images get room of their own (`agents.defaults.maxImageBytes` each).
fn rest_too_large(limit: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body without its images is larger than gateway.maxBodyBytes ({limit} bytes): send a shorter message and no extra fields, or raise gateway.maxBodyBytes in the config"
        ),
    )
}

pub async fn chat(State(state): State<GatewayState>, headers: HeaderMap, body: Body) -> Response {
    let max_image = state.app.config().agents.defaults.max_image_bytes();
    let limit = upload::body_limit(state.max_body_bytes, max_image);
    let parsed = read_json_bytes(&headers, body, limit)
        .await
        .map_err(|r| match r.status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                upload::body_too_large(limit, state.max_body_bytes, max_image)
            }
            _ => r,
        })
        .and_then(|raw| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|e| super::body::invalid_json(&e))?;
            let body = chat_body(&v)?;
            let id = session_id(&body.session)?.to_string();
            if body.message.len() > state.max_body_bytes {
                return Err(text_too_long(state.max_body_bytes));
            }
            // The body as sent, less its images, is held to gateway.maxBodyBytes
            // (whitespace counts: it is what came over the wire).
            if raw.len().saturating_sub(upload::images_len(&v)) > state.max_body_bytes {
                return Err(rest_too_large(state.max_body_bytes));
            }
            let images = upload::take_images(&mut v, max_image)?;
            Ok((id, body.message, images))
        });
    let (id, message, attachments) = match parsed {
        Ok(p) => p,
        Err(refusal) => return refusal.plain(),
    };
    if message.trim().is_empty() && attachments.is_empty() {
        return Refusal::field(
            "message",
            "the message is empty: type something to send, or add an image",
        )
        .plain();
    }
    // A shared store that cannot be reached now: say so before the stream starts.
    if state.app.stores.redis.is_some()
        && let Err(e) = state.app.stores.check().await
    {
        return super::store_unavailable(&e).plain();
    }
    let permit = match state.limiter.acquire().await {
        Ok(p) => p,
        Err(busy) => return super::busy_refusal(&busy).plain(),
    };
    let session = key::web(&id);
    let app = state.app.clone();
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
            attachments: &attachments,
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
