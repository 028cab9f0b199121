//! The Telegram webhook path (DESIGN §9): the path of `channels.telegram.webhook.url`,
//! served on the gateway's listener. Telegram reaches it through a reverse proxy under
//! its public name and carries no gateway token, so it is taken before the Host/Origin
//! guard and the token check (`intercept` sits outside them) and authenticated by the
//! secret alone: a delivery without the right `X-Telegram-Bot-Api-Secret-Token` gets 403.
//! An accepted one is answered 200 once the channel recorded it; its turn runs after.

use super::GatewayState;
use super::body::{invalid_json, read_json_bytes};
use super::refusal::Refusal;
use crate::channels::telegram::{WEBHOOK_SECRET_HEADER, WebhookDelivery};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Seconds Telegram is asked to wait before delivering again while the channel is not
/// taking deliveries (starting or stopping).
const NOT_READY_RETRY_SECS: u64 = 5;

/// The webhook path when the Telegram channel is enabled in webhook mode.
pub fn path_of(config: &crate::config::Config) -> Option<String> {
    config
        .channels
        .telegram
        .as_ref()
        .filter(|t| t.enabled)
        .and_then(|t| t.webhook.as_ref())
        .and_then(|w| w.path())
}

/// Outside the access layers: the webhook path is answered here, everything else
/// goes on to the guarded routes.
pub async fn intercept(State(state): State<GatewayState>, req: Request, next: Next) -> Response {
    match state.app.telegram_webhook.path().as_deref() {
        Some(path) if req.uri().path() == path.as_str() => deliver(&state, req).await,
        _ => next.run(req).await,
    }
}

async fn deliver(state: &GatewayState, req: Request) -> Response {
    if req.method() != Method::POST {
        let mut resp = Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed on the Telegram webhook: Telegram delivers updates with POST",
                req.method()
            ),
        )
        .plain();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let intake = &state.app.telegram_webhook;
    // Exactly one secret header (a second copy makes it no secret at all).
    let secret = super::access::single(
        req.headers(),
        &axum::http::HeaderName::from_static(WEBHOOK_SECRET_HEADER),
    )
    .ok()
    .flatten()
    .map(str::as_bytes);
    // The secret first: a wrong one gets 403 even while the channel is starting (it
    // knows the secret before it has reached Telegram, and before its endpoint opens).
    if !intake.authenticates(secret).unwrap_or(true) {
        return Refusal::new(
            StatusCode::FORBIDDEN,
            "invalid_webhook_secret",
            "this path takes Telegram webhook deliveries only: they carry the secret token of channels.telegram.webhook in X-Telegram-Bot-Api-Secret-Token",
        )
        .plain();
    }
    let Some(endpoint) = intake.endpoint() else {
        return Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "telegram_not_ready",
            "the Telegram channel is not taking deliveries right now (starting or stopping); deliver again later",
        )
        .retry_after(NOT_READY_RETRY_SECS)
        .plain();
    };
    let (parts, body) = req.into_parts();
    let bytes = match read_json_bytes(&parts.headers, body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(refusal) => return refusal.plain(),
    };
    match endpoint.deliver(&bytes).await {
        WebhookDelivery::Accepted => {
            (StatusCode::OK, axum::Json(serde_json::json!({"ok": true}))).into_response()
        }
        WebhookDelivery::NotJson(e) => invalid_json(&e).plain(),
        WebhookDelivery::Invalid(why) => {
            Refusal::new(StatusCode::BAD_REQUEST, "invalid_update", why).plain()
        }
        WebhookDelivery::Closed => Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "telegram_not_ready",
            "the Telegram channel is stopping; deliver again later",
        )
        .retry_after(NOT_READY_RETRY_SECS)
        .plain(),
    }
}
