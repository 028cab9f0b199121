//! The gateway's HTTP surface (DESIGN §7): `/health`, `/metrics`, the OpenAI-compatible
//! `/v1/chat/completions` (`openai_api`), and the web chat (`web`). `serve` takes its
//! listener and shutdown signal as arguments so tests run it on `127.0.0.1:0`.

mod auth;
mod openai_api;
mod stream;
mod web;

pub use auth::{BindError, check_bind};

use crate::app::App;
use crate::secret::Secret;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct GatewayState {
    pub app: Arc<App>,
    /// `gateway.auth.token`, when set: every API request must carry it.
    pub token: Option<Secret>,
}

pub fn router(state: GatewayState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/chat/completions", post(openai_api::chat_completions))
        .route("/v1/models", get(openai_api::list_models))
        .route("/api/chat", post(web::chat))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/", get(web::page))
        .merge(protected)
        .with_state(state)
}

/// Serve until `shutdown` resolves, then stop accepting and let in-flight requests
/// (including streamed replies) finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: GatewayState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"ok": true}))
}

async fn metrics(State(state): State<GatewayState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.app.metrics.render(),
    )
}
