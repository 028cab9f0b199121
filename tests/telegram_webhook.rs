//! Telegram webhook mode (DESIGN §9, `[channels.telegram.webhook]`): the channel calls
//! `setWebhook` with the configured url and secret and never polls; deliveries posted to
//! the url's path on the gateway's listener (real gateway router, real channel, fake Bot
//! API and fake provider on loopback) are authenticated by the secret alone, answered
//! 200 at once, deduplicated by update id, and answered in the chat like polled ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use crate::telegram_support;

use remoteclaw::gateway::{GatewayState, serve};
use remoteclaw::secret::Secret;
use serde_json::{Value, json};
use std::sync::Arc;
use support::fake_provider::{Behavior, FakeProvider};
use support::fake_telegram::FakeTelegram;
use support::gateway::{raw, raw_post};
use support::home::TestHome;
use telegram_support::{Binary, CHANNEL, TOKEN, WAIT, eventually, inbox, prepare, start};
use tokio::sync::{oneshot, watch};

const SECRET: &str = "hook_Secret-123";
const GATEWAY_TOKEN: &str = "gw-token-abc";
const PATH: &str = "/telegram/webhook";
const URL: &str = "https://bot.example.com/telegram/webhook";

/// `[channels.telegram.webhook]` (and a gateway token) after the channel's keys.
fn webhook_table(secret_line: &str) -> String {
    format!(
        "\n[channels.telegram.webhook]\nurl = \"{URL}\"\n{secret_line}\n[gateway]\nmaxBodyBytes = 65536\n[gateway.auth]\ntoken = \"{GATEWAY_TOKEN}\"\n"
    )
}

/// The gateway router and the Telegram channel in webhook mode, on one `App`.
struct Hooked {
    tg: FakeTelegram,
    llm: FakeProvider,
    home: TestHome,
    url: String,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    _stop_channel: watch::Sender<bool>,
    _stop_http: oneshot::Sender<()>,
}

impl Hooked {
    async fn start() -> Hooked {
        let tg = FakeTelegram::start(TOKEN).await;
        let (home, llm) =
            prepare(&tg, &webhook_table(&format!("secretToken = \"{SECRET}\""))).await;
        let app = Arc::new(home.app().await);
        let (stop_channel, _task) = start(&app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_http, rx) = oneshot::channel::<()>();
        let state = GatewayState::new(app.clone(), Some(Secret::new(GATEWAY_TOKEN)));
        tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        // The endpoint is open before setWebhook is sent.
        let fake = &tg;
        eventually("setWebhook was answered", WAIT, || async move {
            fake.webhook().is_some()
        })
        .await;
        assert_eq!(tg.calls_of("setWebhook").len(), 1);
        Hooked {
            tg,
            llm,
            home,
            url: format!("http://{addr}"),
            addr,
            client: reqwest::Client::new(),
            _stop_channel: stop_channel,
            _stop_http: stop_http,
        }
    }

    /// A DM from `user` queued at the fake (so the chat is known there), as the JSON
    /// Update Telegram would post.
    fn dm(&self, user: i64, text: &str) -> (i64, Value) {
        let id = self.tg.send_dm(user, "alice", text);
        let update = self
            .tg
            .updates()
            .into_iter()
            .find(|u| u["update_id"] == json!(id))
            .unwrap();
        (id, update)
    }

    async fn post(&self, secret: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{PATH}", self.url)).json(body);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Wait until no delivered update is left unanswered and `n` replies were sent.
    async fn wait_replies(&self, n: usize) -> Vec<String> {
        let inbox = inbox(&self.home);
        let tg = &self.tg;
        eventually("the deliveries are answered", WAIT, || {
            let inbox = inbox.clone();
            async move { inbox.pending(CHANNEL).await.unwrap().is_empty() && tg.sends() >= n }
        })
        .await;
        self.tg
            .wait_for_messages(n, WAIT)
            .await
            .into_iter()
            .map(|m| m.text)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_with_the_secret_is_answered_in_the_chat_and_nothing_is_polled() {
    let h = Hooked::start().await;
    let (url, secret, kinds) = h.tg.webhook().expect("a webhook is set");
    assert_eq!(url, URL, "the url goes to Telegram as configured");
    assert_eq!(secret.as_deref(), Some(SECRET));
    assert_eq!(kinds, Some(json!(["message", "callback_query"])));

    let (_, update) = h.dm(42, "hello over the hook");
    let (status, body) = h.post(Some(SECRET), &update).await;
    assert_eq!((status, body), (200, json!({"ok": true})));
    assert_eq!(
        h.wait_replies(1).await,
        ["fake reply to: hello over the hook"]
    );
    assert_eq!(h.tg.sent_messages()[0].chat_id, 42);
    assert_eq!(
        h.llm.requests()[0].body["messages"][0]["content"],
        "hello over the hook"
    );
    assert!(
        h.tg.calls_of("getUpdates").is_empty(),
        "no polling in webhook mode: {:?}",
        h.tg.calls_of("getUpdates")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_does_not_wait_for_the_turn() {
    let h = Hooked::start().await;
    h.llm.set_default(Behavior::Stall);
    let (id, update) = h.dm(42, "think hard");
    let (status, _) = h.post(Some(SECRET), &update).await;
    assert_eq!(status, 200, "answered while the model has not answered");
    // Recorded before the answer; the turn runs afterwards and is still waiting.
    let pending = inbox(&h.home).pending(CHANNEL).await.unwrap();
    assert!(
        pending.iter().any(|p| p.id == id.to_string()),
        "{pending:?}"
    );
    let llm = &h.llm;
    eventually("the turn reaches the provider", WAIT, || async move {
        llm.request_count() == 1
    })
    .await;
    assert_eq!(h.tg.sends(), 0, "no reply yet: the model is still writing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_update_is_answered_once() {
    let h = Hooked::start().await;
    let (_, update) = h.dm(42, "only once please");
    // Two copies at the same time (Telegram retrying while the first is in flight) …
    let (a, b) = tokio::join!(h.post(Some(SECRET), &update), h.post(Some(SECRET), &update));
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(h.wait_replies(1).await, ["fake reply to: only once please"]);
    // … and once more after it was answered.
    assert_eq!(h.post(Some(SECRET), &update).await.0, 200);
    // A later message of the same chat is answered after anything queued before it,
    // so once its reply is there, a second answer to the first would be too.
    let (_, next) = h.dm(42, "next one");
    assert_eq!(h.post(Some(SECRET), &next).await.0, 200);
    assert_eq!(
        h.wait_replies(2).await,
        ["fake reply to: only once please", "fake reply to: next one"]
    );
    assert_eq!(h.llm.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_without_the_secret_is_refused_and_bad_bodies_get_400() {
    let h = Hooked::start().await;
    let (_, forged) = h.dm(42, "forged");
    for secret in [None, Some("wrong"), Some("hook_Secret-12"), Some("")] {
        let (status, body) = h.post(secret, &forged).await;
        assert_eq!(status, 403, "{secret:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_webhook_secret", "{body}");
        assert!(body["error"]["message"].is_string());
        assert!(!body.to_string().contains(SECRET), "{body}");
    }
    // Two secret headers (one of them right) are no proof either.
    let req = raw_post(
        PATH,
        &format!(
            "Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: nope\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        ),
        forged.to_string().as_bytes(),
    );
    assert_eq!(raw(h.addr, &req).await.unwrap().status, 403);

    let post_raw = |body: Vec<u8>| {
        h.client
            .post(format!("{}{PATH}", h.url))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (body, code) in [
        (
            b"{\"update_id\": 5, \"message\": {".to_vec(),
            "invalid_json",
        ),
        (b"[1, 2, 3]".to_vec(), "invalid_update"),
        (b"{\"hello\": \"world\"}".to_vec(), "invalid_update"),
        (
            b"{\"update_id\": -1, \"message\": {}}".to_vec(),
            "invalid_update",
        ),
        (
            b"{\"update_id\": 77, \"message\": {\"text\": \"no chat, no date\"}}".to_vec(),
            "invalid_update",
        ),
    ] {
        let resp = post_raw(body).await.unwrap();
        let status = resp.status().as_u16();
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"]["code"], code, "{json}");
        assert_eq!(status, 400, "{json}");
    }
    // Over gateway.maxBodyBytes (64 KiB here): refused before it is read (a raw
    // connection, as the answer may come before the whole body is sent).
    let big = raw_post(
        PATH,
        &format!(
            "Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        ),
        &vec![b' '; 70_000],
    );
    let resp = raw(h.addr, &big).await.unwrap();
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json()["error"]["code"], "body_too_large");
    let get = h
        .client
        .get(format!("{}{PATH}", h.url))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers()["allow"], "POST");

    // None of that started a turn: the next good delivery is the first one answered.
    let (_, good) = h.dm(42, "the real one");
    assert_eq!(h.post(Some(SECRET), &good).await.0, 200);
    assert_eq!(h.wait_replies(1).await, ["fake reply to: the real one"]);
    assert_eq!(h.llm.request_count(), 1);
    assert_eq!(
        h.llm.requests()[0].body["messages"][0]["content"],
        "the real one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_path_needs_no_gateway_token_host_or_origin_but_other_routes_do() {
    let h = Hooked::start().await;
    let (_, update) = h.dm(42, "through the proxy");
    // As a reverse proxy forwards it: the public Host, no Authorization.
    let req = raw_post(
        PATH,
        &format!(
            "Host: bot.example.com\r\nOrigin: https://elsewhere.example\r\nContent-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        ),
        update.to_string().as_bytes(),
    );
    let resp = raw(h.addr, &req).await.unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.json(), json!({"ok": true}));
    assert_eq!(
        h.wait_replies(1).await,
        ["fake reply to: through the proxy"]
    );

    // The other routes keep every check.
    let models = h
        .client
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        models.status().as_u16(),
        401,
        "the API still needs the token"
    );
    let models = h
        .client
        .get(format!("{}/v1/models", h.url))
        .bearer_auth(GATEWAY_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status().as_u16(), 200);
    let chat = raw_post(
        "/api/chat",
        &format!(
            "Host: bot.example.com\r\nAuthorization: Bearer {GATEWAY_TOKEN}\r\nContent-Type: application/json\r\n"
        ),
        br#"{"session":"x","message":"hi"}"#,
    );
    let resp = raw(h.addr, &chat).await.unwrap();
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error"]["code"], "host_not_allowed");
    // A path next to the webhook's is not the webhook.
    let near = h
        .client
        .post(format!("{}{PATH}/x", h.url))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(near.status().as_u16(), 404, "{near:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_binary_sets_the_webhook_from_a_secret_ref_and_answers_deliveries() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (mut home, llm) = prepare(
        &tg,
        &webhook_table("secretTokenRef = { source = \"env\", id = \"TG_HOOK_SECRET\" }"),
    )
    .await;
    home.set("TG_HOOK_SECRET", SECRET);
    let mut gw = Binary::spawn(&home).await;
    let addr = gw.addr();
    gw.wait_for_line("Telegram webhook set").await;
    let (url, secret, _) = tg.webhook().expect("a webhook is set");
    assert_eq!((url.as_str(), secret.as_deref()), (URL, Some(SECRET)));

    let id = tg.send_dm(42, "alice", "hi binary");
    let update = tg
        .updates()
        .into_iter()
        .find(|u| u["update_id"] == json!(id))
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{PATH}"))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let sent = tg.wait_for_messages(1, WAIT).await;
    assert_eq!(sent[0].text, "fake reply to: hi binary");
    assert_eq!(llm.request_count(), 1);

    gw.signal(rustix::process::Signal::TERM);
    assert!(gw.exit(WAIT * 3).await.success(), "{}", gw.log());
    assert!(
        tg.calls_of("getUpdates").is_empty(),
        "no polling in webhook mode"
    );
    assert!(!gw.log().contains(SECRET), "the secret is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_wait_while_the_channel_is_not_running_and_a_refused_webhook_stops_it() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (home, _llm) = prepare(&tg, &webhook_table(&format!("secretToken = \"{SECRET}\""))).await;
    let app = Arc::new(home.app().await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop_http, rx) = oneshot::channel::<()>();
    let state = GatewayState::new(app.clone(), None);
    tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    let id = tg.send_dm(42, "alice", "too early");
    let update = tg.updates()[0].clone();
    assert_eq!(update["update_id"], json!(id));
    let post = || async {
        let resp = reqwest::Client::new()
            .post(format!("http://{addr}{PATH}"))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&update)
            .send()
            .await
            .unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let status = resp.status().as_u16();
        (status, retry, resp.json::<Value>().await.unwrap())
    };
    // No channel running yet: Telegram is told to come back.
    let (status, retry, body) = post().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "telegram_not_ready");
    assert!(retry.is_some());

    tg.fail_next(
        "setWebhook",
        400,
        "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
    );
    let (_stop, rx) = watch::channel(false);
    let cfg = app.config().channels.telegram.clone().unwrap();
    let err = remoteclaw::channels::telegram::run(
        app.clone(),
        remoteclaw::config::live::section(cfg),
        Secret::new(TOKEN),
        rx,
    )
    .await
    .expect_err("a refused webhook stops the channel");
    let text = err.to_string();
    assert!(
        text.contains("bad webhook") && text.contains("channels.telegram.webhook.url"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(
        post().await.0,
        503,
        "the stopped channel takes no deliveries"
    );
    // The secret is known once the channel has resolved it: a wrong one is refused
    // as such even while no channel runs (not told to come back).
    let wrong = reqwest::Client::new()
        .post(format!("http://{addr}{PATH}"))
        .header("X-Telegram-Bot-Api-Secret-Token", "not-the-secret")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    assert!(tg.calls_of("getUpdates").is_empty());
    assert!(inbox(&home).pending(CHANNEL).await.unwrap().is_empty());
}
