//! The gateway's HTTP surface (DESIGN §7): `/health`, `/metrics`, the OpenAI-compatible
//! `/v1/chat/completions` (`openai_api`), and the web chat (`web`), behind the checks of
//! "Who may call it" (`access`: Host, Origin, CORS, security headers; `auth`: the token;
//! `body`: content type and size; `crate::limit`: turns at once), and the Telegram webhook
//! path (`telegram_webhook`), which only its secret guards. `serve` takes its listener
//! and shutdown signal as arguments so tests run it on `127.0.0.1:0`.

mod access;
mod auth;
mod body;
pub mod channels;
mod images;
mod openai_api;
mod refusal;
pub mod reload;
mod request;
mod stream;
pub mod telegram_webhook;
mod web;

pub use crate::limit::{BUSY_RETRY_AFTER_SECS, Busy, TurnLimiter, TurnPermit};
pub use access::{AccessPolicy, CONTENT_SECURITY_POLICY};
pub use auth::{BindError, check_bind};

use crate::app::App;
use crate::secret::Secret;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use refusal::{ErrorStyle, Refusal};
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct GatewayState {
    pub app: Arc<App>,
    /// `gateway.auth.token`, when set: every API request must carry it.
    pub token: Option<Secret>,
    /// `gateway.allowedHosts` / `gateway.allowedOrigins`.
    pub access: Arc<AccessPolicy>,
    /// `gateway.maxConcurrentTurns`, shared by both chat endpoints.
    pub limiter: Arc<TurnLimiter>,
    /// `gateway.maxBodyBytes`.
    pub max_body_bytes: usize,
}

impl GatewayState {
    /// Everything from `app.config().gateway`; `token` is the resolved `gateway.auth.token`.
    pub fn new(app: Arc<App>, token: Option<Secret>) -> GatewayState {
        let config = app.config();
        app.telegram_webhook
            .set_path(telegram_webhook::path_of(&config));
        let g = &config.gateway;
        for warning in AccessPolicy::config_warnings(&g.allowed_hosts, &g.allowed_origins) {
            tracing::warn!("{warning}");
        }
        let access = Arc::new(AccessPolicy::new(&g.allowed_hosts, &g.allowed_origins));
        let limiter = app.turns.clone();
        let max_body_bytes = g.max_body_bytes.get();
        GatewayState {
            app,
            token,
            access,
            limiter,
            max_body_bytes,
        }
    }
}

/// 503 `busy` with `Retry-After`.
fn busy_refusal(busy: &Busy) -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!(
            "the gateway is busy: {} turns are running (gateway.maxConcurrentTurns) and {} more are waiting; try again in {BUSY_RETRY_AFTER_SECS} seconds",
            busy.max_running, busy.max_waiting
        ),
    )
    .retry_after(BUSY_RETRY_AFTER_SECS)
}

pub fn router(state: GatewayState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/chat/completions", post(openai_api::chat_completions))
        .route("/v1/models", get(openai_api::list_models))
        .route("/api/chat", post(web::chat))
        .route("/api/history", get(web::history))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let mut routes = Router::new()
        .route("/health", get(health))
        .route("/", get(web::page))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // Innermost first: CORS (listed origins only), then Host/Origin, then the Telegram
    // webhook path (outside the guards: its secret is its only check), then headers.
    if let Some(cors) = state.access.cors_layer() {
        // Only a request from a listed origin goes through the CORS layer: any other
        // request (no Origin, the gateway's own page) gets no CORS header at all, and
        // an OPTIONS without a listed origin is not answered as a preflight.
        let plain = routes.clone().with_state(state.clone());
        let corsy = routes.layer(cors).with_state(state.clone());
        let policy = state.access.clone();
        let pick = tower::service_fn(move |req: Request| {
            let listed = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .is_some_and(|o| policy.origin_listed(o));
            let router = if listed { corsy.clone() } else { plain.clone() };
            tower::ServiceExt::oneshot(router, req)
        });
        routes = Router::new().fallback_service(pick);
    }
    routes
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telegram_webhook::intercept,
        ))
        .layer(axum::middleware::from_fn(access::security_headers))
        .with_state(state)
}

/// Serve until `shutdown` resolves, then stop accepting and let in-flight requests
/// (including streamed replies) finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: GatewayState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // TCP_NODELAY: a reply (or a streamed chunk) goes out at once instead of waiting
    // for the client's delayed ACK of the previous segment (Nagle), which costs up to
    // 40 ms on Linux when hyper writes one response in more than one segment.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a connection: {e}");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `{"ok":true}`; with a Redis store that cannot be reached now (each check bounded by
/// the store's call timeout, 2 s), 503 `{"ok":false,"store":"unavailable"}`.
/// `{"ok": true}`; 503 `{"ok": false, "store": "unavailable"}` without the store; with
/// `"configError"` while the config file on disk is invalid (the gateway keeps serving
/// its last valid config, DESIGN §11), and `"credentialsError"` while an agent's
/// auth-profiles.json is unreadable or corrupt (its last valid profiles, or none, stay in
/// force).
async fn health(State(state): State<GatewayState>) -> Response {
    let (status, mut body) = match state.app.stores.check().await {
        Ok(()) => (StatusCode::OK, serde_json::json!({"ok": true})),
        Err(e) => {
            tracing::warn!("health: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"ok": false, "store": "unavailable"}),
            )
        }
    };
    if let Some(error) = state.app.config_error() {
        body["configError"] = serde_json::Value::String(error.to_string());
    }
    if let Some(error) = state.app.credentials_error() {
        body["credentialsError"] = serde_json::Value::String(error);
    }
    (status, axum::Json(body)).into_response()
}

/// 503 `store_unavailable`: the state store (Redis) cannot be reached now.
pub fn store_unavailable(e: &crate::state::StoreError) -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        e.to_string(),
    )
}

async fn metrics(State(state): State<GatewayState>) -> impl IntoResponse {
    let app = &state.app;
    let view = app.engine.resolver.cooldowns.view().await;
    let active = view.active_count(app.clock.now_ms());
    app.metrics
        .active_cooldowns
        .set(i64::try_from(active).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.app.metrics.render(),
    )
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    Refusal::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such endpoint: {}. This gateway serves GET /, GET /health, GET /metrics, GET /v1/models, POST /v1/chat/completions, POST /api/chat and GET /api/history",
            path.chars().take(200).collect::<String>()
        ),
    )
    .render(ErrorStyle::for_path(path))
}

async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path();
    Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}: see the Allow header for the methods it takes",
            req.method(),
            path.chars().take(200).collect::<String>()
        ),
    )
    .render(ErrorStyle::for_path(path))
}
