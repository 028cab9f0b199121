//! `GET /api/history?session=<id>`: what the web chat shows when it is (re)opened — the
//! session's stored messages (a user message's images are their placeholder text, as
//! history keeps no bytes), each assistant reply with its rendered tree, and the image
//! limits the page checks before uploading.

use super::super::GatewayState;
use super::super::refusal::Refusal;
use crate::format::tree;
use crate::media::MAX_IMAGES;
use crate::providers::Role;
use crate::session::key;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    session: String,
}

pub async fn history(
    State(state): State<GatewayState>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return Refusal::field(
            "session",
            "give the session query parameter once: GET /api/history?session=<id>",
        )
        .plain();
    };
    let id = match super::session_id(&query.session) {
        Ok(id) => id,
        Err(refusal) => return refusal.plain(),
    };
    let limit = state.app.config().session.history_turns.saturating_mul(2);
    let loaded = state.app.sessions.store().load(&key::web(id), limit).await;
    let record = match loaded {
        Ok(record) => record,
        Err(e) => return unavailable(&e.to_string()),
    };
    let messages: Vec<_> = record
        .map(|r| r.history)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| match m.role {
            Role::User => Some(json!({"role": "user", "text": m.content})),
            Role::Assistant => Some(json!({
                "role": "assistant",
                "tree": tree::render(&m.content),
                "text": m.content,
            })),
            Role::System => None,
        })
        .collect();
    let limits = json!({
        "maxImages": MAX_IMAGES,
        "maxImageBytes": state.app.config().agents.defaults.max_image_bytes(),
    });
    axum::Json(json!({"messages": messages, "limits": limits})).into_response()
}

fn unavailable(detail: &str) -> Response {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        format!("the session history could not be read ({detail}): try again, and check the gateway's log"),
    )
    .plain()
}
