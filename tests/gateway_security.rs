//! Who may call the gateway (DESIGN §7): the Host allowlist (DNS rebinding), the Origin
//! check and CORS, JSON-only bounded bodies with field-named 400s, the turn limit (503
//! busy) and the page's Content-Security-Policy. Each bug that was open gets a test named
//! after it. Served in-process on 127.0.0.1:0 against the fake provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::{Gateway, fake_home as home_for, raw, raw_get as get, raw_post};

const CHAT: &str = r#"{"model":"remoteclaw","messages":[{"role":"user","content":"hi"}]}"#;

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    raw_post(path, headers, body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_text_plain_post_is_refused() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    // What a page on evil.example can send without a preflight, after rebinding its name.
    let r = raw(
        gw.addr,
        &post(
            "/v1/chat/completions",
            "Host: evil.example\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n",
            CHAT,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    // Without rebinding (Host is the loopback address the page fetched).
    let host = format!("Host: {}\r\n", gw.addr);
    let r = raw(
        gw.addr,
        &post(
            "/v1/chat/completions",
            &format!("{host}Origin: http://evil.example\r\nContent-Type: text/plain\r\n"),
            CHAT,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "origin_not_allowed");
    // Even the gateway's own origin must send JSON as JSON.
    let r = raw(
        gw.addr,
        &post(
            "/api/chat",
            &format!(
                "{host}Origin: http://{}\r\nContent-Type: text/plain\r\n",
                gw.addr
            ),
            r#"{"session":"s","message":"hi"}"#,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(fake.request_count(), 0, "no turn ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_host_is_refused() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let port = gw.addr.port();
    for path in ["/health", "/", "/v1/models", "/metrics"] {
        let r = raw(
            gw.addr,
            &get(path, &format!("Host: evil.example:{port}\r\n")),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 403, "{path}");
        let v = r.json();
        assert_eq!(v["error"]["code"], "host_not_allowed", "{path}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("evil.example") && msg.contains("gateway.allowedHosts"),
            "{msg}"
        );
    }
    let r = raw(
        gw.addr,
        &post(
            "/v1/chat/completions",
            "Host: evil.example\r\nContent-Type: application/json\r\n",
            CHAT,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
    // /api/chat answers the plain shape, exactly.
    let r = raw(
        gw.addr,
        &post(
            "/api/chat",
            "Host: evil.example\r\nContent-Type: application/json\r\n",
            r#"{"session":"s","message":"hi"}"#,
        ),
    )
    .await
    .unwrap();
    let v = r.json();
    assert_eq!(
        v["error"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["code", "message"]
    );
    // No Host at all (HTTP/1.0 allows it) is not a loopback name either.
    let r = raw(gw.addr, b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
    assert_eq!(r.status, 403);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no Host header")
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_names_and_allowed_hosts_pass() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(
        home_for(&fake, "[gateway]\nallowedHosts = [\"Claw.Example\"]\n"),
        None,
    )
    .await;
    let port = gw.addr.port();
    for host in [
        format!("localhost:{port}"),
        "localhost".into(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "[::1]".into(),
        "claw.example".into(),
        format!("claw.example:{port}"),
    ] {
        let r = raw(gw.addr, &get("/health", &format!("Host: {host}\r\n")))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{host}");
    }
    let r = raw(gw.addr, &get("/health", "Host: other.example\r\n"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_is_refused() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(
        home_for(
            &fake,
            "[gateway]\nallowedOrigins = [\"https://app.example\"]\n",
        ),
        None,
    )
    .await;
    let host = format!("Host: {}\r\n", gw.addr);
    let json_post = |origin: &str, path: &str, body: &str| {
        let origin = if origin.is_empty() {
            String::new()
        } else {
            format!("Origin: {origin}\r\n")
        };
        post(
            path,
            &format!("{host}{origin}Content-Type: application/json\r\n"),
            body,
        )
    };
    let r = raw(
        gw.addr,
        &json_post("http://evil.example", "/v1/chat/completions", CHAT),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
    let v = r.json();
    assert_eq!(v["error"]["code"], "origin_not_allowed");
    assert_eq!(
        v["error"]["type"], "invalid_request_error",
        "OpenAI shape on /v1"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("http://evil.example") && msg.contains("gateway.allowedOrigins"),
        "{msg}"
    );
    assert!(r.header("access-control-allow-origin").is_none());
    for origin in ["null", "http://localhost:1"] {
        let r = raw(gw.addr, &json_post(origin, "/v1/chat/completions", CHAT))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{origin}");
    }
    assert_eq!(fake.request_count(), 0);

    // No Origin (SDKs, curl), the page's own origin and a listed one pass.
    let own = format!("http://{}", gw.addr);
    for origin in ["", own.as_str(), "https://app.example"] {
        let r = raw(gw.addr, &json_post(origin, "/v1/chat/completions", CHAT))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "origin {origin:?}: {r:?}");
        let cors = r.header("access-control-allow-origin");
        if origin == "https://app.example" {
            assert_eq!(cors, Some("https://app.example"));
        } else {
            let any_cors: Vec<_> = r
                .headers
                .iter()
                .filter(|(k, _)| k.starts_with("access-control-"))
                .collect();
            assert!(
                any_cors.is_empty(),
                "CORS only for listed origins: {any_cors:?}"
            );
        }
    }
    // An OPTIONS without a listed origin is no preflight: no CORS header, not a 2xx.
    let bare = format!("OPTIONS /v1/chat/completions HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    let r = raw(gw.addr, bare.as_bytes()).await.unwrap();
    assert!(r.status >= 400, "{r:?}");
    assert!(
        !r.headers
            .iter()
            .any(|(k, _)| k.starts_with("access-control-")),
        "{r:?}"
    );
    // A listed origin's preflight is answered; the actual request then carries a token.
    let preflight = format!(
        "OPTIONS /v1/chat/completions HTTP/1.1\r\n{host}Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\nConnection: close\r\n\r\n"
    );
    let r = raw(gw.addr, preflight.as_bytes()).await.unwrap();
    assert!(r.status < 300, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    // A foreign origin's preflight is refused.
    let r = raw(
        gw.addr,
        preflight
            .replace("https://app.example", "http://evil.example")
            .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_123_is_a_400_naming_the_field() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"messages": [{"role": "user", "content": 123}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "messages[0].content must be a string or an array of content parts"
    );
    assert_eq!(v["error"]["param"], "messages[0].content");
    assert_eq!(v["error"]["code"], "invalid_request");

    for (body, message) in [
        (
            json!({"model": 4, "messages": []}),
            "model must be a string",
        ),
        (
            json!({"stream": 1, "messages": [{"role": "user", "content": "x"}]}),
            "stream must be true or false",
        ),
        (
            json!({"messages": [{"role": ["user"], "content": "x"}]}),
            "messages[0].role must be a string",
        ),
    ] {
        let r = client
            .post(format!("{}/v1/chat/completions", gw.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["message"],
            message
        );
    }
    for (body, message) in [
        (
            json!({"session": 7, "message": "x"}),
            "session must be a string",
        ),
        (
            json!({"session": "s", "message": {}}),
            "message must be a string",
        ),
    ] {
        let r = client
            .post(format!("{}/api/chat", gw.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": "invalid_request", "message": message}})
        );
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_max_body_bytes_is_413() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, "[gateway]\nmaxBodyBytes = 4096\n"), None).await;
    let big = json!({"messages": [{"role": "user", "content": "x".repeat(5000)}]}).to_string();
    // The web chat's route has room for images besides, but not for more text.
    let web = json!({"session": "s", "message": "x".repeat(5000)}).to_string();
    // Nor for anything else that is not an image.
    let padded = json!({"session": "s", "message": "hi", "pad": "x".repeat(5000)}).to_string();
    let host = format!("Host: {}\r\nContent-Type: application/json\r\n", gw.addr);
    for (path, body) in [
        ("/v1/chat/completions", &big),
        ("/api/chat", &web),
        ("/api/chat", &padded),
    ] {
        let r = raw(gw.addr, &post(path, &host, body)).await.unwrap();
        assert_eq!(r.status, 413, "{path}");
        let v = r.json();
        assert_eq!(v["error"]["code"], "body_too_large");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("gateway.maxBodyBytes (4096 bytes)")
        );
    }
    // Without a Content-Length the limit holds while the body streams in.
    let mut chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in big.as_bytes().chunks(1000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw(gw.addr, &chunked).await.unwrap();
    assert_eq!(r.status, 413);
    // Just under the limit is fine.
    let ok = json!({"messages": [{"role": "user", "content": "x".repeat(3000)}]}).to_string();
    let r = raw(gw.addr, &post("/v1/chat/completions", &host, &ok))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_content_type_is_415() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let host = format!("Host: {}\r\n", gw.addr);
    for (path, body) in [
        ("/v1/chat/completions", CHAT),
        ("/api/chat", r#"{"session":"s","message":"hi"}"#),
    ] {
        for ct in [
            "Content-Type: text/plain\r\n",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "Content-Type: multipart/form-data; boundary=x\r\n",
            "",
        ] {
            let r = raw(gw.addr, &post(path, &format!("{host}{ct}"), body))
                .await
                .unwrap();
            assert_eq!(r.status, 415, "{path} {ct:?}");
            assert_eq!(r.json()["error"]["code"], "unsupported_media_type");
        }
    }
    assert_eq!(fake.request_count(), 0);
    let r = raw(
        gw.addr,
        &post(
            "/v1/chat/completions",
            &format!("{host}Content-Type: Application/JSON; charset=utf-8\r\n"),
            CHAT,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_past_the_wait_queue_get_503_busy_with_retry_after() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Stall);
    let gw = Gateway::start(home_for(&fake, "[gateway]\nmaxConcurrentTurns = 1\n"), None).await;
    let client = reqwest::Client::new();
    let send = |path: &'static str, body: Value| {
        let req = client.post(format!("{}{path}", gw.url)).json(&body);
        tokio::spawn(req.send())
    };
    // One turn runs (the fake holds its reply) ...
    let running = send(
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "a"}]}),
    );
    while fake.request_count() < 1 {
        tokio::task::yield_now().await;
    }
    // ... one waits for it ...
    let waiting = send("/api/chat", json!({"session": "w", "message": "b"}));
    while gw.limiter.waiting() < 1 {
        tokio::task::yield_now().await;
    }
    // ... and the wait queue (maxConcurrentTurns long) is full.
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "c"}]}),
        ),
        ("/api/chat", json!({"session": "x", "message": "d"})),
    ] {
        let r = send(path, body).await.unwrap().unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["retry-after"], "2");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "busy");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("gateway.maxConcurrentTurns")
        );
    }
    assert_eq!((gw.limiter.running(), gw.limiter.waiting()), (1, 1));
    assert_eq!(fake.request_count(), 1, "the waiting turn has not started");
    // Ending the held turn lets the waiting one run (its provider is gone: an error, not busy).
    drop(fake);
    let r = running.await.unwrap().unwrap();
    assert_ne!(r.status(), 503);
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(
        r.status(),
        200,
        "the web chat streams its error as an SSE event"
    );
    assert!(r.text().await.unwrap().contains("event: error"));
    assert_eq!((gw.limiter.running(), gw.limiter.waiting()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_has_a_strict_csp_and_its_script_is_served() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let client = reqwest::Client::new();
    let r = client.get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let directives: Vec<Vec<&str>> = csp
        .split(';')
        .map(|d| d.split_whitespace().collect())
        .filter(|d: &Vec<&str>| !d.is_empty())
        .collect();
    let find = |name: &str| directives.iter().find(|d| d[0] == name).cloned();
    assert_eq!(
        find("default-src"),
        Some(vec!["default-src", "'self'"]),
        "{csp}"
    );
    assert_eq!(
        find("frame-ancestors"),
        Some(vec!["frame-ancestors", "'none'"]),
        "{csp}"
    );
    for d in &directives {
        for source in &d[1..] {
            assert!(
                source.starts_with('\'') && !source.contains("unsafe"),
                "only keyword sources, no host, scheme, * or unsafe-*: {source} in {csp}"
            );
        }
    }
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    // Nothing inline that the CSP would block.
    assert!(page.contains("<script src=\"/app.js\""), "{page}");
    assert_eq!(page.matches("<script").count(), 1);
    assert!(!page.contains("<style") && !page.contains(" style="));
    let lower = page.to_ascii_lowercase();
    assert!(
        !lower
            .split(|c: char| c.is_whitespace())
            .any(|w| w.starts_with("on") && w.contains('=')),
        "no inline event handlers"
    );
    assert!(page.contains("href=\"/app.css\""));

    for (path, ty) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let r = client
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ty),
            "{path}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    // nosniff and no-referrer on every response, refusals included.
    for path in ["/health", "/nope"] {
        let r = client
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer", "{path}");
    }
}
