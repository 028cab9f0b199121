//! The web chat: `GET /` serves the page (embedded in the binary), `POST /api/chat`
//! runs one message through the session (`web:<id>`) and streams the reply as SSE
//! events `delta`, `done` and `error`.

use super::GatewayState;
use super::stream::{TurnEvent, sink_for, spawn_streaming};
use crate::conversation::converse;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;

const PAGE: &str = include_str!("web/index.html");

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE))
}

#[derive(Deserialize)]
pub struct ChatBody {
    session: String,
    message: String,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": message}})),
    )
        .into_response()
}

pub async fn chat(State(state): State<GatewayState>, body: axum::body::Bytes) -> Response {
    let body: ChatBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(format!(
                "expected JSON {{\"session\": \"…\", \"message\": \"…\"}}: {e}"
            ));
        }
    };
    let id = body.session.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return bad_request(format!(
            "session id \"{}\" must be 1–64 letters, digits, '-' or '_'",
            id.chars().take(80).collect::<String>()
        ));
    }
    if body.message.trim().is_empty() {
        return bad_request("the message is empty".into());
    }
    let key = format!("web:{id}");
    let app = state.app.clone();
    let message = body.message;
    let rx = spawn_streaming(move |tx| async move {
        let mut sink = sink_for(&tx);
        converse(&app, &key, &message, Some(&mut sink)).await
    });
    let events = stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let ev = match rx.recv().await? {
            TurnEvent::Delta(text) => (
                Event::default()
                    .event("delta")
                    .data(json!({"text": text}).to_string()),
                Some(rx),
            ),
            TurnEvent::Done(result) => match &result.error {
                None => (
                    Event::default().event("done").data(
                        json!({"model": result.model.to_string(), "credential": result.credential})
                            .to_string(),
                    ),
                    None,
                ),
                Some(e) => (
                    Event::default()
                        .event("error")
                        .data(json!({"message": e.to_string()}).to_string()),
                    None,
                ),
            },
        };
        Some((Ok::<_, Infallible>(ev.0), ev.1))
    });
    Sse::new(events).into_response()
}
