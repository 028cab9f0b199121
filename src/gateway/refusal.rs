//! The one shape every gateway refusal takes: `{"error":{"code","message"}}`, or for the
//! OpenAI-compatible `/v1` routes `{"error":{"message","type","param","code"}}` so SDKs
//! parse it. A refusal carries its HTTP status, a stable code and a message that names
//! the problem and the way out.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which error body a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error":{"code","message"}}`
    Plain,
    /// OpenAI's `{"error":{"message","type","param","code"}}`
    OpenAi,
}

impl ErrorStyle {
    /// `/v1/...` speaks OpenAI; everything else the plain shape.
    pub fn for_path(path: &str) -> ErrorStyle {
        if path == "/v1" || path.starts_with("/v1/") {
            ErrorStyle::OpenAi
        } else {
            ErrorStyle::Plain
        }
    }
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault (`messages[0].content`), when there is one.
    pub param: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// A 400 about one field of the request body.
    pub fn field(param: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            param: Some(param.into()),
            ..Refusal::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Refusal {
        self.retry_after = Some(secs);
        self
    }

    pub fn render(self, style: ErrorStyle) -> Response {
        let body = match style {
            ErrorStyle::Plain => json!({"error": {"code": self.code, "message": self.message}}),
            ErrorStyle::OpenAi => {
                let kind = if self.status.is_client_error() {
                    "invalid_request_error"
                } else {
                    "remoteclaw_error"
                };
                json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}})
            }
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }

    pub fn plain(self) -> Response {
        self.render(ErrorStyle::Plain)
    }

    pub fn openai(self) -> Response {
        self.render(ErrorStyle::OpenAi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_follows_the_path() {
        assert_eq!(
            ErrorStyle::for_path("/v1/chat/completions"),
            ErrorStyle::OpenAi
        );
        assert_eq!(ErrorStyle::for_path("/v1"), ErrorStyle::OpenAi);
        assert_eq!(ErrorStyle::for_path("/v10"), ErrorStyle::Plain);
        assert_eq!(ErrorStyle::for_path("/api/chat"), ErrorStyle::Plain);
    }
}
