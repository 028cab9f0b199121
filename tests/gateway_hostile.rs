//! Hostile HTTP input (DESIGN §8): malformed request lines and headers, huge headers,
//! bad JSON, truncated bodies, half-sent requests and wrong methods all get a clear 4xx
//! or a closed connection, never a panic or a 5xx, and `/health` answers afterwards.
//! Plus a property test: arbitrary bytes posted to both chat endpoints through the
//! router always get JSON back, and never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::Value;
use support::fake_provider::FakeProvider;
use support::gateway::{Gateway, RawResponse, fake_home, raw, raw_post};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;

fn json_post(path: &str, body: &[u8]) -> Vec<u8> {
    raw_post(
        path,
        "Host: localhost\r\nContent-Type: application/json\r\n",
        body,
    )
}

/// A clear 4xx (JSON when it comes from the gateway rather than the HTTP parser) or a
/// closed connection.
fn assert_refused(what: &str, r: Option<RawResponse>) {
    let Some(r) = r else { return };
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if r.header("content-type")
        .is_some_and(|t| t.starts_with("application/json"))
    {
        let v = r.json();
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
        assert!(v["error"]["code"].is_string(), "{what}: {v}");
    }
}

async fn assert_healthy(gw: &Gateway) {
    let r = reqwest::get(format!("{}/health", gw.url)).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_or_close_and_health_stays_up() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(fake_home(&fake, ""), None).await;
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\n{}Connection: close\r\n\r\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary noise", vec![0, 159, 146, 150, 255, 13, 10, 13, 10]),
        ("unknown version", b"GET /health HTTP/9.9\r\nHost: localhost\r\n\r\n".to_vec()),
        ("header without colon", b"GET /health HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n".to_vec()),
        ("space before colon", b"GET /health HTTP/1.1\r\nHost : localhost\r\n\r\n".to_vec()),
        ("non-ASCII Host", b"GET /health HTTP/1.1\r\nHost: loc\xffalhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("two Hosts", b"GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_vec()),
        ("userinfo Host", b"GET /health HTTP/1.1\r\nHost: me@localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("absolute-form to another host", b"GET http://evil.example/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("huge header", huge_header.into_bytes()),
        ("500 headers", many_headers.into_bytes()),
        ("bad Content-Length", b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}".to_vec()),
        ("Content-Length and chunked", b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec()),
        ("bad chunk size", b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("invalid UTF-8 in JSON", json_post("/v1/chat/completions", b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}")),
        ("lone surrogate", json_post("/v1/chat/completions", br#"{"messages":[{"role":"user","content":"\ud800"}]}"#)),
        ("100k [", json_post("/v1/chat/completions", "[".repeat(100_000).as_bytes())),
        ("100k {\"a\":", json_post("/api/chat", "{\"a\":".repeat(100_000).as_bytes())),
        ("deep content", json_post("/v1/chat/completions", format!("{{\"messages\":[{{\"role\":\"user\",\"content\":{}}}]}}", "[".repeat(5000)).as_bytes())),
        ("huge number", json_post("/v1/chat/completions", br#"{"messages":[{"role":"user","content":1e999999}]}"#)),
        ("empty body", json_post("/api/chat", b"")),
        ("JSON null", json_post("/api/chat", b"null")),
        ("NUL in path", b"GET /he\0alth HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec()),
        ("two Content-Types", b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec()),
    ];
    for (what, bytes) in cases {
        assert_refused(what, raw(gw.addr, &bytes).await);
    }
    assert_healthy(&gw).await;
    assert_eq!(fake.request_count(), 0, "none of it reached a model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_half_sent_requests_do_not_block_others() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(fake_home(&fake, ""), None).await;
    // Promises 100 bytes, sends 10, then stops writing.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message").await.unwrap();
    s.shutdown().await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf).await;
    assert_refused("truncated body", support::gateway::parse_response(&buf));
    // Slowloris: many connections that never finish their headers or body.
    let mut idle = Vec::new();
    for i in 0..64 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let part: &[u8] = if i % 2 == 0 {
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: local"
        } else {
            b"POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"se"
        };
        s.write_all(part).await.unwrap();
        idle.push(s);
    }
    assert_healthy(&gw).await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&serde_json::json!({"messages": [{"role": "user", "content": "still here"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(idle);
    assert_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_and_paths_get_json_4xx() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(fake_home(&fake, ""), None).await;
    for (method, path, status) in [
        ("PUT", "/v1/chat/completions", 405),
        ("GET", "/v1/chat/completions", 405),
        ("GET", "/api/chat", 405),
        ("DELETE", "/health", 405),
        ("POST", "/", 405),
        ("PATCH", "/app.js", 405),
        ("OPTIONS", "/api/chat", 405),
        ("GET", "/v1/nothing", 404),
        ("GET", "/nothing", 404),
        ("BREW", "/health", 405),
    ] {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = raw(gw.addr, req.as_bytes()).await.unwrap();
        assert_eq!(r.status, status, "{method} {path}");
        let v = r.json();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(path),
            "{v}"
        );
        if status == 405 {
            assert!(
                r.header("allow").is_some(),
                "{method} {path}: {:?}",
                r.headers
            );
        }
    }
    assert_healthy(&gw).await;
}

/// Arbitrary bodies through the router: JSON back, never a 5xx.
#[test]
fn arbitrary_bodies_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, _fake, _home) = rt.block_on(async {
        let fake = FakeProvider::start().await;
        let home = fake_home(&fake, "");
        let app = std::sync::Arc::new(home.app().await);
        let state = remoteclaw::gateway::GatewayState::new(app, None);
        (remoteclaw::gateway::router(state), fake, home)
    });
    // Raw bytes, and JSON of any shape in roughly the right place.
    let json_value = proptest::arbitrary::any::<Option<String>>()
        .prop_map(|s| s.map_or(Value::Null, Value::String))
        .prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("role".to_string()),
                        Just("content".to_string()),
                        Just("messages".to_string()),
                        Just("session".to_string()),
                        Just("message".to_string()),
                        Just("stream".to_string()),
                        Just("model".to_string()),
                        ".*"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::Bool),
            ]
        });
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        json_value.prop_map(|v| v.to_string().into_bytes()),
    ];
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(body, any::<bool>()), |(body, web)| {
            let path = if web {
                "/api/chat"
            } else {
                "/v1/chat/completions"
            };
            let req = axum::http::Request::post(path)
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let (status, bytes) = rt.block_on(async {
                let resp = router.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, bytes)
            });
            prop_assert!(
                !status.is_server_error(),
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            );
            if status.is_client_error() {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert!(v["error"]["message"].is_string(), "{v}");
            }
            Ok(())
        })
        .unwrap();
}
