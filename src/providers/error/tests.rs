//! Classification table, retry-hint sources and clamping, secret scrubbing.

use super::*;

fn k(status: Option<u16>, body: &str) -> ErrorKind {
    classify("p", status, None, body).kind
}

#[test]
fn classification_table() {
    use ErrorKind::*;
    let cases: &[(Option<u16>, &str, ErrorKind)] = &[
        // Anthropic
        (
            Some(429),
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
            RateLimit,
        ),
        (
            Some(401),
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            Auth,
        ),
        (
            Some(403),
            r#"{"type":"error","error":{"type":"permission_error","message":"too many requests"}}"#,
            Auth,
        ),
        (
            Some(529),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Overloaded,
        ),
        (
            Some(400),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
            Billing,
        ),
        (
            Some(400),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"This credential is only authorized for use with Claude Code and cannot be used for other API requests."}}"#,
            Auth,
        ),
        (
            Some(400),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: field required"}}"#,
            Format,
        ),
        (
            Some(500),
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            Unknown,
        ),
        (
            None,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Overloaded,
        ),
        // OpenAI / OpenRouter
        (
            Some(429),
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            RateLimit,
        ),
        (
            Some(429),
            r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            RateLimit,
        ),
        (
            Some(401),
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            Auth,
        ),
        (
            Some(402),
            r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/credits","code":402}}"#,
            Billing,
        ),
        (
            Some(400),
            r#"{"error":{"message":"Too many requests, slow down","type":"invalid_request_error"}}"#,
            RateLimit,
        ),
        (
            Some(400),
            r#"{"error":{"message":"Quota exceeded for this project","type":"invalid_request_error"}}"#,
            RateLimit,
        ),
        (
            Some(503),
            r#"{"error":{"message":"The server is overloaded","type":"server_error"}}"#,
            Overloaded,
        ),
        (
            Some(401),
            r#"{"error":{"message":"rate limit quota too many requests"}}"#,
            Auth,
        ),
        // Google
        (
            Some(429),
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
            RateLimit,
        ),
        (
            Some(400),
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
            Auth,
        ),
        (
            Some(503),
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
            Overloaded,
        ),
        (
            Some(400),
            r#"[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]"#,
            Format,
        ),
        (
            Some(504),
            r#"{"error":{"code":504,"status":"DEADLINE_EXCEEDED","message":"Deadline"}}"#,
            Timeout,
        ),
        // Not JSON
        (Some(502), "<html>Bad gateway</html>", Unknown),
        (Some(429), "", RateLimit),
        (Some(400), "Too Many Requests", RateLimit),
    ];
    for (status, body, want) in cases {
        assert_eq!(k(*status, body), *want, "{status:?} {body}");
    }
}

#[test]
fn retry_after_sources() {
    let e = classify(
        "google",
        Some(429),
        None,
        r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}"#,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(38)));
    let e = classify(
        "openai",
        Some(429),
        None,
        r#"{"error":{"message":"Rate limit reached. Please try again in 1.5s.","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
    let e = classify(
        "anthropic",
        Some(429),
        Some(Duration::from_secs(7)),
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"x"}}"#,
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    let e = classify("anthropic", Some(500), Some(Duration::from_secs(7)), "{}");
    assert_eq!(e.retry_after, None, "only rate limits carry a retry-after");
}

#[test]
fn claude_code_message_names_the_fix() {
    let e = classify(
        "anthropic",
        Some(400),
        None,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"This credential is only authorized for use with Claude Code and cannot be used for other API requests."}}"#,
    );
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        e.message.contains("Use an Anthropic API key"),
        "{}",
        e.message
    );
}

#[test]
fn scrub_removes_secret() {
    let e = ProviderError::new(ErrorKind::Auth, "bad key sk-canary-123 given")
        .scrub(&crate::secret::Secret::new("sk-canary-123"));
    assert!(!e.message.contains("canary"));
}

#[test]
fn retry_after_ms_1e30_does_not_panic() {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("retry-after-ms", "1e30".parse().unwrap());
    let d = retry_after_header(&h);
    assert_eq!(d, Some(MAX_RETRY_HINT), "clamped to 24 h");
    let e = classify(
        "openai",
        Some(429),
        None,
        r#"{"error":{"message":"Rate limit reached. Please try again in 1e30ms.","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(e.retry_after, Some(MAX_RETRY_HINT));
    let e = classify(
        "google",
        Some(429),
        None,
        r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"1e30s"}]}}"#,
    );
    assert_eq!(e.retry_after, Some(MAX_RETRY_HINT));
}

#[test]
fn retry_hints_are_clamped_and_bad_ones_ignored() {
    let header = |name: &str, value: &str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        retry_after_header_at(
            &h,
            std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    };
    let day = Some(MAX_RETRY_HINT);
    for (name, value, want) in [
        ("retry-after", "7", Some(Duration::from_secs(7))),
        ("retry-after", "1.5", Some(Duration::from_millis(1500))),
        ("retry-after", "1e30", day),
        ("retry-after", "99999999999", day),
        ("retry-after", "-5", None),
        ("retry-after", "NaN", None),
        ("retry-after", "inf", None),
        ("retry-after", "soon", None),
        ("retry-after-ms", "250", Some(Duration::from_millis(250))),
        ("retry-after-ms", "1e30", day),
        ("retry-after-ms", "-1", None),
        ("retry-after-ms", "nan", None),
        ("retry-after-ms", "infinity", None),
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        (
            "retry-after",
            "Tue, 14 Nov 2023 22:13:50 GMT",
            Some(Duration::from_secs(30)),
        ),
        ("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT", None),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT", day),
    ] {
        assert_eq!(header(name, value), want, "{name}: {value}");
    }
    for text in ["1e308s", "1e30", "-3s", "NaNms", "infms", "1e400ms"] {
        let got = parse_duration_secs(text);
        assert!(got.is_none() || got == day, "{text}: {got:?}");
    }
    let e = classify("p", Some(429), Some(Duration::MAX), "{}");
    assert_eq!(e.retry_after, day, "a caller's hint is clamped too");
}

#[test]
fn quota_flag() {
    let e = classify(
        "openai",
        Some(429),
        None,
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
    );
    assert!(e.is_quota());
}
