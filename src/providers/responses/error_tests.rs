//! Tables for the Responses API's error shapes: error replies and events classified like
//! OpenAI's, the ChatGPT backend's `{"detail": ...}` bodies, Codex usage-limit resets.

use super::tests::{parse, run};
use super::*;
use crate::providers::ErrorKind;

#[test]
fn plain_reply_errors() {
    let cases: Vec<(Value, ErrorKind)> = vec![
        (
            json!({"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "Please try again in 2s."}, "output": []}),
            ErrorKind::RateLimit,
        ),
        (
            json!({"status": "failed", "error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}}),
            ErrorKind::RateLimit,
        ),
        (
            json!({"status": "failed", "error": null}),
            ErrorKind::Unknown,
        ),
        (json!({"id": "resp_1"}), ErrorKind::Format),
        (json!({"output": "text"}), ErrorKind::Format),
        (
            json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}]}),
            ErrorKind::Format,
        ),
        (json!([1, 2]), ErrorKind::Format),
    ];
    for (body, want) in cases {
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.kind, want, "{body}: {}", e.message);
        assert!(e.message.starts_with("p:"), "{}", e.message);
    }
    let e = parse(
        json!({"error": {"code": "rate_limit_exceeded", "message": "Please try again in 2s."}}),
    )
    .unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
}

#[test]
fn stream_errors_are_classified_like_openai() {
    let failed = |error: Value| {
        (
            "response.failed",
            json!({"type": "response.failed", "response": {"status": "failed", "error": error}}),
        )
    };
    let cases: Vec<((&str, Value), ErrorKind, Option<Duration>)> = vec![
        (
            failed(
                json!({"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}),
            ),
            ErrorKind::RateLimit,
            Some(Duration::from_millis(1500)),
        ),
        (
            failed(
                json!({"code": "insufficient_quota", "message": "You exceeded your current quota."}),
            ),
            ErrorKind::RateLimit,
            None,
        ),
        (
            failed(json!({"code": "server_error", "message": "The server had an error."})),
            ErrorKind::Unknown,
            None,
        ),
        (failed(Value::Null), ErrorKind::Unknown, None),
        (
            (
                "error",
                json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": null}),
            ),
            ErrorKind::RateLimit,
            None,
        ),
        (
            (
                "error",
                json!({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "bad key"}}),
            ),
            ErrorKind::Auth,
            None,
        ),
        (
            ("error", json!({"type": "error", "message": "Overloaded"})),
            ErrorKind::Overloaded,
            None,
        ),
    ];
    for (event, want, hint) in cases {
        let (_, _, err) = run(std::slice::from_ref(&event));
        let e = err.unwrap_or_else(|| panic!("{event:?}: no error"));
        assert_eq!(e.kind, want, "{event:?}: {}", e.message);
        assert_eq!(e.retry_after, hint, "{event:?}");
        assert_eq!(e.status, None);
        assert!(e.message.starts_with("p:"), "{}", e.message);
        assert!(!e.message.contains("stream error error"), "{}", e.message);
    }
    let (_, _, err) = run(&[failed(
        json!({"code": "insufficient_quota", "message": "You exceeded your current quota."}),
    )]);
    assert!(err.is_some_and(|e| e.is_quota()));
}

#[test]
fn chatgpt_detail_bodies_keep_the_status_class() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let cases = [
        (
            429,
            r#"{"detail":"Too many requests"}"#,
            ErrorKind::RateLimit,
        ),
        (429, r#"{"detail":"slow"}"#, ErrorKind::RateLimit),
        (
            401,
            r#"{"detail":"Could not parse your authentication token. Please try signing in again."}"#,
            ErrorKind::Auth,
        ),
        (403, r#"{"detail":"rate limit"}"#, ErrorKind::Auth),
        (
            400,
            r#"{"detail":"Instructions are required"}"#,
            ErrorKind::Format,
        ),
        (
            400,
            r#"{"detail":[{"loc":["body","input"],"msg":"field required"}]}"#,
            ErrorKind::Format,
        ),
        (500, r#"{"detail":null}"#, ErrorKind::Unknown),
    ];
    for (status, body, want) in cases {
        let e = classify_http_at("p", status, None, body, now);
        assert_eq!(e.kind, want, "{status} {body}: {}", e.message);
        assert_eq!(e.status, Some(status));
        assert!(
            !e.message.contains("{\"detail\""),
            "the message is the detail, not the raw body: {}",
            e.message
        );
    }
    let e = classify_http_at(
        "p",
        400,
        None,
        r#"{"detail":"Instructions are required"}"#,
        now,
    );
    assert!(
        e.message.ends_with(": Instructions are required"),
        "{}",
        e.message
    );
}

#[test]
fn openai_shaped_http_errors_match_openai_classification() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let bodies = [
        (
            429,
            r#"{"error":{"message":"Rate limit reached. Please try again in 20s.","type":"requests","code":"rate_limit_exceeded"}}"#,
        ),
        (
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        ),
        (
            402,
            r#"{"error":{"message":"Insufficient credits","type":"insufficient_credits"}}"#,
        ),
        (
            503,
            r#"{"error":{"message":"The server is overloaded","type":"server_error"}}"#,
        ),
        (
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#,
        ),
        (500, "<html>oops</html>"),
        (429, ""),
    ];
    for (status, body) in bodies {
        let hint = Some(Duration::from_secs(7));
        for h in [None, hint] {
            assert_eq!(
                classify_http_at("p", status, h, body, now),
                classify("p", Some(status), h, body),
                "{status} {body}"
            );
        }
    }
}

#[test]
fn codex_usage_limit_reset_is_the_retry_hint() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let body = |extra: &str| {
        format!(
            r#"{{"error":{{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus"{extra}}}}}"#
        )
    };
    let e = classify_http_at("p", 429, None, &body(r#","resets_in_seconds":3600"#), now);
    assert_eq!(e.kind, ErrorKind::RateLimit);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3600)));
    assert_eq!(e.code.as_deref(), Some("usage_limit_reached"));
    let e = classify_http_at("p", 429, None, &body(r#","resets_at":1700000900"#), now);
    assert_eq!(e.retry_after, Some(Duration::from_secs(900)));
    // A header hint wins; absurd or past reset times are clamped or ignored.
    let e = classify_http_at(
        "p",
        429,
        Some(Duration::from_secs(5)),
        &body(r#","resets_in_seconds":3600"#),
        now,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
    let e = classify_http_at("p", 429, None, &body(r#","resets_in_seconds":1e30"#), now);
    assert_eq!(e.retry_after, Some(super::super::error::MAX_RETRY_HINT));
    let e = classify_http_at("p", 429, None, &body(r#","resets_at":1"#), now);
    assert_eq!(e.retry_after, None);
}
