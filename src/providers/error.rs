//! Provider errors and their classification (DESIGN §5). `classify` is pure: it looks
//! at the HTTP status and the structured error body first (Anthropic `error.type`,
//! OpenAI `error.type`/`error.code`, Google `error.status` and detail reasons), and only
//! when those do not decide, at the message text. Rotation matches on `ErrorKind`,
//! never on strings.

use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// What went wrong, as far as rotation and the operator care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Try the next credential (HTTP 429, rate/quota error types and texts).
    RateLimit,
    /// Out of credit; the credential is disabled for a while.
    Billing,
    /// The credential is wrong, revoked or not allowed here.
    Auth,
    /// The provider is overloaded or unavailable.
    Overloaded,
    /// Connecting or waiting for the next byte took too long.
    Timeout,
    /// The request was rejected as malformed, or the reply could not be understood.
    Format,
    Unknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Billing => "billing",
            ErrorKind::Auth => "auth",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Format => "format",
            ErrorKind::Unknown => "unknown",
        }
    }
}

/// A failed provider call. `message` is safe to show: the credential's value is
/// scrubbed from it before it leaves the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    /// The provider's own error type/code/status, e.g. `rate_limit_error`.
    pub code: Option<String>,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Quota exhaustion (as opposed to a short rate limit): the credential is disabled
    /// for hours, not minutes. OpenAI says so with `insufficient_quota`; Gemini's daily
    /// quota says "exceeded your current quota" without a retry hint (its per-minute
    /// limit mentions quota too, but comes with a RetryInfo delay).
    pub fn is_quota(&self) -> bool {
        if self
            .code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("insufficient_quota"))
        {
            return true;
        }
        let m = self.message.to_ascii_lowercase();
        self.retry_after.is_none()
            && (m.contains("exceeded your current quota")
                || m.contains("check your plan and billing"))
    }

    /// Remove every occurrence of `secret` from the message.
    pub fn scrub(mut self, secret: &crate::secret::Secret) -> ProviderError {
        self.message = secret.redact_in(&self.message);
        self
    }
}

const CLAUDE_CODE_ONLY: &str = "only authorized for use with claude code";

/// What the provider said, pulled out of whichever error shape it used.
#[derive(Debug, Default, PartialEq)]
struct ErrorFields {
    /// Lower-cased type/code/status/reason strings.
    tags: Vec<String>,
    message: Option<String>,
    retry_delay: Option<Duration>,
}

fn extract(body: &str) -> ErrorFields {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return ErrorFields::default();
    };
    // Google's streaming endpoints wrap errors in an array.
    let v = match &v {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        _ => v,
    };
    let err = v.get("error").unwrap_or(&v);
    let mut f = ErrorFields::default();
    let mut tag = |x: Option<&Value>| {
        if let Some(s) = x.and_then(Value::as_str) {
            f.tags.push(s.to_ascii_lowercase());
        }
    };
    tag(err.get("type"));
    tag(err.get("code"));
    tag(err.get("status"));
    if let Some(details) = err.get("details").and_then(Value::as_array) {
        for d in details {
            tag(d.get("reason"));
            if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
                f.retry_delay = parse_duration_secs(delay);
            }
        }
    }
    f.message = err
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| v.get("message").and_then(Value::as_str))
        .or_else(|| err.as_str())
        .map(str::to_string);
    f
}

/// The longest wait a provider's retry hint may ask for; longer hints are cut to this.
pub const MAX_RETRY_HINT: Duration = Duration::from_secs(24 * 3600);

/// A hint of `secs` seconds, clamped to `MAX_RETRY_HINT`; negative, NaN or infinite
/// hints are ignored (`None`). Never panics, whatever the number.
pub fn clamp_hint_secs(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    if secs >= MAX_RETRY_HINT.as_secs_f64() {
        return Some(MAX_RETRY_HINT);
    }
    Some(Duration::from_secs_f64(secs))
}

/// `"38s"`, `"1.5s"`, `"120ms"` → duration (clamped, see `clamp_hint_secs`).
fn parse_duration_secs(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return clamp_hint_secs(ms.trim().parse::<f64>().ok()? / 1000.0);
    }
    let secs = s.strip_suffix('s').unwrap_or(s).trim();
    clamp_hint_secs(secs.parse::<f64>().ok()?)
}

/// OpenAI puts the wait in the text: "Please try again in 20s" / "in 1.5s" / "in 350ms".
fn retry_from_text(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let rest = &lower[lower.find("try again in ")? + "try again in ".len()..];
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        .collect();
    parse_duration_secs(token.trim_end_matches('.'))
}

/// The `retry-after-ms` header, or `retry-after` (seconds or an HTTP date), clamped.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_header_at(headers, std::time::SystemTime::now())
}

/// `retry_after_header` with "now" given (an HTTP date is a wait until then).
pub fn retry_after_header_at(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok())
        && let Some(d) = parse_duration_secs(&format!("{}ms", ms.trim()))
    {
        return Some(d);
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return clamp_hint_secs(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // A date in the past is no hint at all.
    let wait = at.duration_since(now).ok()?;
    Some(wait.min(MAX_RETRY_HINT))
}

fn has_any(tags: &[String], wanted: &[&str]) -> bool {
    tags.iter().any(|t| wanted.contains(&t.as_str()))
}

/// Classify a failed response. `status` is `None` for an error event inside a stream.
pub fn classify(
    provider: &str,
    status: Option<u16>,
    retry_after: Option<Duration>,
    body: &str,
) -> ProviderError {
    let fields = extract(body);
    let text = fields.message.clone().unwrap_or_else(|| {
        let t = body.trim();
        if t.is_empty() {
            "no error details in the reply".to_string()
        } else {
            t.chars().take(300).collect()
        }
    });
    let lower = text.to_ascii_lowercase();
    let tags = &fields.tags;
    let kind = decide(status, tags, &lower);
    let status_txt = status
        .map(|s| format!("HTTP {s}"))
        .unwrap_or_else(|| "stream error".into());
    let code = tags.first().cloned();
    let label = match &code {
        Some(c) => format!("{status_txt} {c}"),
        None => status_txt,
    };
    let message = if kind == ErrorKind::Auth && lower.contains(CLAUDE_CODE_ONLY) {
        format!(
            "{provider}: this credential is a Claude Code subscription token that Anthropic accepts only from Claude Code ({label}). Use an Anthropic API key (sk-ant-api03-…) instead: set ANTHROPIC_API_KEY or run `remoteclaw models auth paste-token --provider anthropic`."
        )
    } else {
        format!("{provider}: {} ({label}): {text}", describe(kind))
    };
    ProviderError {
        kind,
        status,
        code,
        message,
        retry_after: if kind == ErrorKind::RateLimit {
            retry_after
                .map(|d| d.min(MAX_RETRY_HINT))
                .or(fields.retry_delay)
                .or_else(|| retry_from_text(&text))
        } else {
            None
        },
    }
}

fn decide(status: Option<u16>, tags: &[String], lower: &str) -> ErrorKind {
    const AUTH: &[&str] = &[
        "authentication_error",
        "permission_error",
        "invalid_api_key",
        "unauthenticated",
        "permission_denied",
        "api_key_invalid",
        "api_key_expired",
    ];
    const RATE: &[&str] = &[
        "rate_limit_error",
        "rate_limit_exceeded",
        "insufficient_quota",
        "resource_exhausted",
        "rate_limit",
    ];
    const OVERLOADED: &[&str] = &["overloaded_error", "unavailable", "server_overloaded"];
    const BILLING: &[&str] = &["billing_error", "insufficient_credits", "payment_required"];
    const FORMAT: &[&str] = &[
        "invalid_request_error",
        "invalid_argument",
        "not_found_error",
        "not_found",
        "failed_precondition",
        "request_too_large",
    ];

    // 1. Structured: status codes and error fields.
    if matches!(status, Some(401 | 403)) || has_any(tags, AUTH) || lower.contains(CLAUDE_CODE_ONLY)
    {
        return ErrorKind::Auth;
    }
    if status == Some(402) || has_any(tags, BILLING) {
        return ErrorKind::Billing;
    }
    if status == Some(429) || has_any(tags, RATE) {
        return ErrorKind::RateLimit;
    }
    if matches!(status, Some(503 | 529)) || has_any(tags, OVERLOADED) {
        return ErrorKind::Overloaded;
    }
    if matches!(status, Some(408 | 504)) || has_any(tags, &["deadline_exceeded", "timeout_error"]) {
        return ErrorKind::Timeout;
    }
    // 2. Text, where the structure did not decide.
    const BILLING_TEXT: &[&str] = &[
        "credit balance",
        "insufficient credits",
        "insufficient_credits",
        "insufficient balance",
        "payment required",
    ];
    const RATE_TEXT: &[&str] = &[
        "rate limit",
        "rate_limit",
        "ratelimit",
        "quota",
        "resource exhausted",
        "resource_exhausted",
        "too many requests",
    ];
    if BILLING_TEXT.iter().any(|p| lower.contains(p)) {
        return ErrorKind::Billing;
    }
    if RATE_TEXT.iter().any(|p| lower.contains(p)) {
        return ErrorKind::RateLimit;
    }
    if lower.contains("overloaded") {
        return ErrorKind::Overloaded;
    }
    if matches!(status, Some(400 | 404 | 413 | 422)) || has_any(tags, FORMAT) {
        return ErrorKind::Format;
    }
    ErrorKind::Unknown
}

fn describe(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimit => "rate limited",
        ErrorKind::Billing => "billing/credit problem",
        ErrorKind::Auth => "credential rejected",
        ErrorKind::Overloaded => "overloaded",
        ErrorKind::Timeout => "timed out",
        ErrorKind::Format => "request or reply not understood",
        ErrorKind::Unknown => "request failed",
    }
}

#[cfg(test)]
mod tests;
