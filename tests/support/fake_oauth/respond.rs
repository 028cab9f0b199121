//! Request recording and response building shared by the fake OAuth
//! server's endpoints: the request log, the form content-type check, JSON and
//! RFC 6749 §5.2 error bodies, plain-text answers and the never-answering stall.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Inner, RecordedRequest};

/// Records a request before it is answered.
pub(super) fn record(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    form: &[(String, String)],
) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    inner.state().requests.push(RecordedRequest {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        headers,
        form: form.to_vec(),
        at: Instant::now(),
    });
}

/// Whether the request body is declared `application/x-www-form-urlencoded`.
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// An RFC 6749 §5.2 error body. Descriptions never quote a token or code.
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub(super) fn text_response(status: StatusCode, text: &str) -> Response {
    let mut resp = Response::new(Body::from(format!("{text}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Never answers while the server lives; once it is dropped, a body that fails
/// at once, so the client sees the connection cut with no response.
pub(super) async fn stall(inner: &Inner) -> Response {
    inner.shut_down().await;
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("fake oauth shut down"))
    });
    let mut resp = Response::new(Body::from_stream(failing));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// How long ago `t` was, in tokio time.
pub(super) fn age(t: Instant) -> Duration {
    Instant::now().saturating_duration_since(t)
}
