//! The web chat over HTTP (DESIGN §7, §10), in-process on 127.0.0.1:0 against the fake
//! provider: images sent with a message (checked from their bytes, within
//! `maxImageBytes`, at most four, room in the body limit for them and no more), the
//! rendered Markdown tree in `done`, and `GET /api/history` for reopening the page.
//! The page itself in a real browser: tests/webchat_browser.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use base64::Engine;
use serde_json::{Value, json};
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::{Gateway, sse_events};
use support::home::TestHome;

fn home_for(fake: &FakeProvider, extra: &str) -> TestHome {
    let mut config = TestHome::config_for_fake("openai/gpt-4o-mini", fake);
    config.push_str(extra);
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "web-key");
    home
}

/// A PNG signature padded to exactly `size` bytes (the gateway sniffs the first bytes).
fn png(size: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.resize(size.max(v.len()), 0);
    v
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn post(gw: &Gateway, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/chat", gw.url))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn history(gw: &Gateway, session: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/history?session={session}", gw.url))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The `done` event's data (panics on an `error` event).
async fn done(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    serde_json::from_str(data).unwrap()
}

async fn refusal(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    r.json::<Value>().await.unwrap()["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_goes_with_the_message_and_history_keeps_its_placeholder() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let body = json!({"session": "img", "message": "what is this?", "images": [
        {"name": "cat.png", "data": b64(&png(100))},
    ]});
    done(post(&gw, &body).await).await;
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].user_text().contains("what is this?"));
    assert_eq!(reqs[0].images.len(), 1, "the image reached the provider");
    assert_eq!(reqs[0].images[0].media_type, "image/png");
    assert_eq!(reqs[0].images[0].data, png(100));

    let (status, h) = history(&gw, "img").await;
    assert_eq!(status, 200);
    assert_eq!(h["messages"][0]["role"], "user");
    assert_eq!(
        h["messages"][0]["text"], "what is this?\n[image: image/png]",
        "the server took the image as an attachment; history keeps no bytes"
    );
    assert_eq!(h["messages"][1]["role"], "assistant");
    assert_eq!(
        h["messages"][1]["tree"],
        json!([{"kind": "p", "children": [{"kind": "text", "text": "fake reply to: what is this?"}]}])
    );
    assert_eq!(
        h["limits"],
        json!({"maxImages": 4, "maxImageBytes": 5 * 1024 * 1024})
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_text_is_still_a_message_for_the_model() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let body = json!({"session": "bare", "message": "", "images": [{"data": b64(&png(50))}]});
    done(post(&gw, &body).await).await;
    assert_eq!(fake.request_count(), 1, "a turn ran for the image alone");
    assert_eq!(fake.requests()[0].images.len(), 1);
    let (_, h) = history(&gw, "bare").await;
    assert_eq!(h["messages"][0]["text"], "[image: image/png]");

    let empty = post(&gw, &json!({"session": "bare", "message": "  "})).await;
    let e = refusal(empty, 400).await;
    assert_eq!(
        e["message"],
        "the message is empty: type something to send, or add an image"
    );
    assert_eq!(fake.request_count(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_image_is_named_in_the_reply_and_nothing_is_sent() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(
        home_for(&fake, "[agents.defaults]\nmaxImageBytes = 1000\n"),
        None,
    )
    .await;
    let cases = [
        (
            json!([{"name": "evil.png", "data": b64(b"<svg onload=alert(1)>")}]),
            "evil.png is not a PNG, JPEG, GIF or WebP image — send it in one of those formats",
        ),
        (
            json!([{"name": "big.png", "data": b64(&png(1001))}]),
            "big.png is 1001 bytes, over the 1000-byte limit for images — send a smaller or compressed image",
        ),
        (
            json!(vec![json!({"data": b64(&png(10))}); 5]),
            "a message may carry at most 4 images — send the others in another message",
        ),
    ];
    for (images, message) in cases {
        let body = json!({"session": "r", "message": "look", "images": images});
        let e = refusal(post(&gw, &body).await, 400).await;
        assert_eq!(e, json!({"code": "image_refused", "message": message}));
    }
    assert_eq!(fake.request_count(), 0);
    let (_, h) = history(&gw, "r").await;
    assert_eq!(h["messages"], json!([]));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_images_of_max_image_bytes_fit_past_max_body_bytes_but_nothing_else_does() {
    let fake = FakeProvider::start().await;
    let extra = "[gateway]\nmaxBodyBytes = 4096\n[agents.defaults]\nmaxImageBytes = 65536\n";
    let gw = Gateway::start(home_for(&fake, extra), None).await;
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"name": format!("p{i}.png"), "data": b64(&png(65536))}))
        .collect();
    let body = json!({"session": "four", "message": "x".repeat(4000), "images": four});
    assert!(
        body.to_string().len() > 4 * 87_000,
        "well past maxBodyBytes"
    );
    done(post(&gw, &body).await).await;
    assert_eq!(fake.request_count(), 1);
    assert_eq!(fake.requests()[0].images.len(), 4);

    // More text than maxBodyBytes is refused however much room images would have had.
    let long = json!({"session": "four", "message": "x".repeat(5000)});
    let e = refusal(post(&gw, &long).await, 413).await;
    assert_eq!(e["code"], "body_too_large");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("gateway.maxBodyBytes (4096 bytes)")
    );
    // Text-only bodies are held to maxBodyBytes as sent: padding counts.
    let padded = format!(
        "{{\"session\": \"four\", \"message\": \"x\"{}}}",
        " ".repeat(4096)
    );
    let r = reqwest::Client::new()
        .post(format!("{}/api/chat", gw.url))
        .header("content-type", "application/json")
        .body(padded)
        .send()
        .await
        .unwrap();
    let e = refusal(r, 413).await;
    assert_eq!(e["code"], "body_too_large");
    // A body past the images' room is refused before it is read.
    let huge = json!({"session": "four", "message": "x", "junk": "y".repeat(400_000)});
    let e = refusal(post(&gw, &huge).await, 413).await;
    assert_eq!(
        e,
        json!({"code": "body_too_large", "message": "the message and its images are larger than the web chat takes (357728 bytes: gateway.maxBodyBytes (4096) for the text plus 4 images of agents.defaults.maxImageBytes (65536) as base64): send a shorter message, or fewer or smaller images"})
    );
    // The other routes keep maxBodyBytes.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"messages": [{"role": "user", "content": "x".repeat(5000)}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(fake.request_count(), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_carries_the_reply_as_a_tree_with_raw_html_as_text() {
    let fake = FakeProvider::start().await;
    fake.set_default(Behavior::Reply(
        "**bold** <img src=x onerror=\"window.__pwned=1\"> [x](javascript:alert(1))".into(),
    ));
    let gw = Gateway::start(home_for(&fake, ""), None).await;
    let d = done(post(&gw, &json!({"session": "t", "message": "hi"})).await).await;
    assert_eq!(
        d["tree"],
        json!([{"kind": "p", "children": [
            {"kind": "strong", "children": [{"kind": "text", "text": "bold"}]},
            {"kind": "text", "text": " <img src=x onerror=\"window.__pwned=1\"> x"},
        ]}])
    );
    // A directive's notice comes first, as a plain paragraph.
    let d = done(post(&gw, &json!({"session": "t", "message": "/new"})).await).await;
    let notice = d["tree"][0]["children"][0]["text"].as_str().unwrap();
    assert!(notice.starts_with("Started a new conversation"), "{d}");
    assert_eq!(d["tree"][0]["kind"], "p");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_needs_a_valid_session_and_the_token() {
    let fake = FakeProvider::start().await;
    let gw = Gateway::start(home_for(&fake, ""), Some("web-token")).await;
    let client = reqwest::Client::new();
    let get = |q: &str| client.get(format!("{}/api/history{q}", gw.url));
    assert_eq!(get("?session=a").send().await.unwrap().status(), 401);
    let r = get("?session=a")
        .bearer_auth("web-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["messages"], json!([]));
    for q in ["", "?session=bad%20id!", "?other=1"] {
        let r = get(q).bearer_auth("web-token").send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let e = r.json::<Value>().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_request", "{q}");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_images_answers_in_the_chat_and_calls_no_provider() {
    let fake = FakeProvider::start().await;
    let extra = "[agents.defaults.models.\"openai/gpt-4o-mini\"]\nimages = false\n";
    let gw = Gateway::start(home_for(&fake, extra), None).await;
    let body = json!({"session": "noimg", "message": "look", "images": [{"data": b64(&png(20))}]});
    let r = post(&gw, &body).await;
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    let message: Value = serde_json::from_str(data).unwrap();
    assert_eq!(message["code"], "images_not_accepted", "{message}");
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .starts_with("openai/gpt-4o-mini does not accept images — send text only"),
        "{message}"
    );
    assert_eq!(fake.request_count(), 0);
    gw.shutdown().await;
}
