//! `/v1/chat/completions` image parts (DESIGN §10): refused when too many, too large,
//! not an image, a link that cannot be fetched, or a body over `gateway.maxBodyBytes`; links
//! downloaded and sent inline;
//! every message's images go (the API is stateless). Also the fake provider's own image
//! checks, which the other image tests rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use support::fake_provider::images::{JPEG_MIN, PNG_1X1, data_url};
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::{Gateway, fake_home, raw, raw_post};

/// A gateway on the fake (primary `openai/gpt-4o-mini`), with `extra` config.
async fn gateway(fake: &FakeProvider, extra: &str) -> Gateway {
    Gateway::start(fake_home(fake, extra), None).await
}

fn with_image(url: &str) -> Value {
    json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]})
}

async fn post(gw: &Gateway, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn error(message: &str, param: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_parts_get_a_400_naming_the_part() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake, "[agents.defaults]\nmaxImageBytes = 1024\n").await;
    let big = [PNG_1X1, &[0u8; 2000]].concat();
    let cases = [
        (
            data_url("image/png", &big),
            "messages[0].content[1] is 2068 bytes, over the 1024-byte limit for images — send a smaller or compressed image",
            "image_too_large",
        ),
        (
            "ftp://example.com/cat.png".to_string(),
            "messages[0].content[1] is a ftp:// link, which the gateway does not fetch — link it over http(s) or send the image itself as a base64 data: URL (data:image/png;base64,…)",
            "image_url_not_fetched",
        ),
        (
            data_url(
                "image/svg+xml",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            ),
            "messages[0].content[1] is not a PNG, JPEG, GIF or WebP image — send it in one of those formats",
            "invalid_image",
        ),
        (
            "data:image/png;base64,not base64!".to_string(),
            "messages[0].content[1] is not a usable image data: URL (the base64 data does not decode: Invalid symbol 32, offset 3.) — send data:image/png;base64,… (PNG, JPEG, GIF or WebP)",
            "invalid_image",
        ),
    ];
    for (url, message, code) in cases {
        let (status, v) = post(&gw, &with_image(&url)).await;
        assert_eq!(status, 400, "{message}");
        assert_eq!(v, error(message, "messages[0].content[1]", code));
    }
    let five: Vec<Value> = (0..5)
        .map(|_| json!({"type": "image_url", "image_url": {"url": data_url("image/png", PNG_1X1)}}))
        .collect();
    let (status, v) = post(
        &gw,
        &json!({"messages": [{"role": "user", "content": five}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        error(
            "messages[0].content carries 5 images; a message may carry at most 4 — send the others in another message",
            "messages[0].content",
            "too_many_images"
        )
    );
    assert_eq!(fake.request_count(), 0, "nothing reached the model");
    gw.shutdown().await;
}

/// A loopback web server for image links: `/cat.png` (a PNG), `/missing.png` (404),
/// `/big.png` (announces 10 MB), `/moved.png` (a redirect to `/cat.png`) and
/// `/page.png` (HTML). Returns its base URL and a count of the requests it served.
async fn image_host() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let hits = counted.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            match uri.path() {
                "/cat.png" => {
                    ([(header::CONTENT_TYPE, "image/png")], PNG_1X1.to_vec()).into_response()
                }
                "/big.png" => {
                    // Announces 10 MB, sends 68 bytes, then nothing: a gateway that
                    // read before checking the announced size would hang here.
                    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(
                        bytes::Bytes::from_static(PNG_1X1),
                    )])
                    .chain(futures_util::stream::pending());
                    (
                        [
                            (header::CONTENT_TYPE, "image/png"),
                            (header::CONTENT_LENGTH, "10000000"),
                        ],
                        axum::body::Body::from_stream(body),
                    )
                        .into_response()
                }
                "/moved.png" => {
                    (StatusCode::FOUND, [(header::LOCATION, "/cat.png")]).into_response()
                }
                "/page.png" => {
                    ([(header::CONTENT_TYPE, "image/png")], "<html>hi</html>").into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

/// An `http(s)://` image link is downloaded and sent inline (DESIGN §10): the model gets
/// the bytes with their media type, never the link; a link that fails, redirects,
/// announces more than `maxImageBytes` or is not an image gets a 400 naming the part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_link_is_downloaded_and_sent_inline() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake, "[agents.defaults]\nmaxImageBytes = 1024\n").await;
    let (host, hits) = image_host().await;

    let (status, v) = post(&gw, &with_image(&format!("{host}/cat.png"))).await;
    assert_eq!(status, 200, "{v}");
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.images.len(), 1);
    assert_eq!(sent.images[0].data, PNG_1X1);
    assert!(
        !sent.body.to_string().contains(&host),
        "the link itself never reaches the model"
    );

    let cases = [
        ("/missing.png", "image_download_failed", "answered HTTP 404"),
        (
            "/moved.png",
            "image_download_failed",
            "links are not followed",
        ),
        (
            "/big.png",
            "image_too_large",
            "10000000 bytes, over the 1024-byte limit",
        ),
        (
            "/page.png",
            "invalid_image",
            "is not a PNG, JPEG, GIF or WebP image",
        ),
    ];
    for (path, code, says) in cases {
        let (status, v) = post(&gw, &with_image(&format!("{host}{path}"))).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
        assert_eq!(v["error"]["param"], "messages[0].content[1]", "{path}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    // One request per link: the redirect was not followed.
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(fake.request_count(), 1, "refused links reach no model");
    gw.shutdown().await;
}

/// The HTTP API is stateless: the images of every message in the request go, each
/// message counted against the 4-image limit on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_messages_images_are_sent() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake, "").await;
    let img =
        |t: &str, b: &[u8]| json!({"type": "image_url", "image_url": {"url": data_url(t, b)}});
    let four_png: Vec<Value> = (0..4).map(|_| img("image/png", PNG_1X1)).collect();
    let body = json!({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": four_png},
        {"role": "assistant", "content": "a dot"},
        {"role": "user", "content": [{"type": "text", "text": "and this?"}, img("image/jpeg", JPEG_MIN)]},
    ]});
    let (status, v) = post(&gw, &body).await;
    assert_eq!(status, 200, "{v}");
    let r = fake.requests().pop().unwrap();
    let at: Vec<(usize, &str)> = r
        .images
        .iter()
        .map(|i| (i.message, i.media_type.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (1, "image/png"),
            (1, "image/png"),
            (1, "image/png"),
            (1, "image/png"),
            (3, "image/jpeg")
        ]
    );
    assert_eq!(r.images[4].data, JPEG_MIN);
    // An image in an assistant message has no place in the conversation.
    let body = json!({"messages": [{"role": "assistant", "content": [img("image/png", PNG_1X1)]}, {"role": "user", "content": "hi"}]});
    let (status, v) = post(&gw, &body).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "messages[0].content[0]");
    gw.shutdown().await;
}

/// An image bigger than `gateway.maxBodyBytes` allows (default 1 MiB, so a 5 MiB image;
/// scaled down here) is answered 413 before any of it is decoded, saying what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_over_the_body_limit_gets_413() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake, "[gateway]\nmaxBodyBytes = 4096\n").await;
    let image = [PNG_1X1, &[7u8; 5000]].concat();
    let body = with_image(&data_url("image/png", &image)).to_string();
    let host = format!("Host: {}\r\nContent-Type: application/json\r\n", gw.addr);
    let r = raw(
        gw.addr,
        &raw_post("/v1/chat/completions", &host, body.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 413);
    let v = r.json();
    assert_eq!(v["error"]["code"], "body_too_large");
    assert_eq!(
        v["error"]["message"],
        "the request body is larger than gateway.maxBodyBytes (4096 bytes): send a shorter conversation or smaller images (base64 makes an image a third larger), or raise gateway.maxBodyBytes in the config"
    );
    assert_eq!(fake.request_count(), 0);
    gw.shutdown().await;
}

/// The fake refuses image parts the real APIs would refuse (bad base64, a media type
/// that does not match the bytes, a link), answering 400 without using up the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_bad_image_parts_like_the_real_apis() {
    let fake = FakeProvider::start().await;
    fake.script("k", [Behavior::Reply("scripted".into())]);
    let http = reqwest::Client::new();
    let send = |content: Value| {
        http.post(format!("{}/chat/completions", fake.openai_base()))
            .bearer_auth("k")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": content}]}))
            .send()
    };
    let part = |url: &str| json!([{"type": "image_url", "image_url": {"url": url}}]);
    for (url, says) in [
        (
            data_url("image/png", JPEG_MIN),
            "appears to be a image/jpeg image",
        ),
        ("data:image/png;base64,@@@".to_string(), "not valid base64"),
        (
            data_url("image/bmp", b"BM.."),
            "media type 'image/bmp' is not supported",
        ),
        ("https://example.com/a.png".to_string(), "not a data: URL"),
    ] {
        let r = send(part(&url)).await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {message}");
    }
    assert_eq!(
        fake.pending_script("k"),
        1,
        "refusals leave the script alone"
    );
    let r = send(part(&data_url("image/jpeg", JPEG_MIN))).await.unwrap();
    assert_eq!(r.status(), 200);
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.images.len(), 1);
    assert_eq!(last.images[0].data, JPEG_MIN);
    // An Anthropic image over its 5 MB limit is refused by size.
    let big = [PNG_1X1, &vec![0u8; 5 * 1024 * 1024]].concat();
    let block = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data_url("image/png", &big).split(',').nth(1).unwrap()}});
    let r = http
        .post(format!("{}/v1/messages", fake.anthropic_base()))
        .header("x-api-key", "k")
        .json(&json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [block]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image exceeds 5 MB maximum"),
        "{v}"
    );
}

/// A last message holding a chat command and an image: the command applies, and the
/// image still goes to the model (as in the web chat), never dropped silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directive_with_an_image_still_sends_the_image() {
    let fake = FakeProvider::start().await;
    let gw = gateway(&fake, "").await;
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "/model openai/gpt-4o-mini"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG_1X1)}},
    ]}]});
    let (status, v) = post(&gw, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(fake.request_count(), 1, "the image's turn ran: {v}");
    let r = fake.requests().pop().unwrap();
    assert_eq!(r.images.len(), 1);
    assert_eq!(r.images[0].data, PNG_1X1);
    // A directive alone still answers as a directive, with no model call.
    let (status, v) = post(
        &gw,
        &json!({"messages": [{"role": "user", "content": "/model openai/gpt-4o-mini"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(fake.request_count(), 1);
    gw.shutdown().await;
}
