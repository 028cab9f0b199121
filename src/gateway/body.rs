//! Reading a POST body safely: `Content-Type: application/json` or 415, at most
//! `gateway.maxBodyBytes` (checked against `Content-Length` and again while the body
//! streams in, so an oversized or endless body is never buffered) or 413, then JSON or
//! 400. What the JSON must look like is each endpoint's business (`request`).

use super::refusal::Refusal;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;
use serde_json::Value;

/// Whether the request's one Content-Type is `application/json`, with parameters (`;
/// charset=utf-8`) and in any case (two Content-Type headers are ambiguous: refused
/// like a wrong one).
fn is_json(headers: &HeaderMap) -> bool {
    super::access::single(headers, &header::CONTENT_TYPE)
        .ok()
        .flatten()
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn too_large(limit: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body is larger than gateway.maxBodyBytes ({limit} bytes): send a shorter conversation or smaller images (base64 makes an image a third larger), or raise gateway.maxBodyBytes in the config"
        ),
    )
}

/// Read at most `limit` bytes of a JSON body.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, Refusal> {
    let buf = read_json_bytes(headers, body, limit).await?;
    serde_json::from_slice(&buf).map_err(|e| invalid_json(&e))
}

/// The 400 for a body that does not parse as JSON.
pub fn invalid_json(e: &serde_json::Error) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        format!("the request body is not valid JSON: {e}"),
    )
}

/// Read at most `limit` bytes of a body sent as JSON, unparsed (for callers that
/// parse it into their own type).
pub async fn read_json_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, Refusal> {
    if !is_json(headers) {
        let given = match super::access::single(headers, &header::CONTENT_TYPE) {
            Ok(None) => "none".to_string(),
            Ok(Some(v)) => format!("\"{}\"", v.chars().take(100).collect::<String>()),
            Err(()) => "several, or one that is not plain ASCII: send exactly one".to_string(),
        };
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "POST bodies must be JSON sent with Content-Type: application/json (this request's Content-Type: {given})"
            ),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let capacity = declared.map_or(0, |n| n as usize).min(limit);
    let mut buf = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                format!("the request body could not be read ({e}): send it again, complete"),
            )
        })?;
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("application/jsonx")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn limit_is_enforced_while_streaming() {
        let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 100]));
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let err = read_json(&headers("application/json"), body, 550)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.code, "body_too_large");
    }

    #[tokio::test]
    async fn wrong_type_and_bad_json() {
        let err = read_json(&headers("text/plain"), Body::from("{}"), 10)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(err.message.contains("\"text/plain\""), "{}", err.message);
        let err = read_json(&headers("application/json"), Body::from("{"), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code, "invalid_json");
        let deep = "[".repeat(100_000);
        let err = read_json(&headers("application/json"), Body::from(deep), 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(err.code, "invalid_json");
    }
}
