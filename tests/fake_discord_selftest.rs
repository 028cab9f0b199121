//! Self-test of the fake Discord (REST + gateway) in `tests/support/fake_discord`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::fake_discord::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.fake.discord-token";
const T: Duration = Duration::from_secs(2);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn rest(dc: &FakeDiscord, method: &str, route: &str, body: Option<Value>) -> (u16, Value) {
    rest_as(dc, method, route, body, Some(&format!("Bot {TOKEN}"))).await
}

async fn rest_as(
    dc: &FakeDiscord,
    method: &str,
    route: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), dc.api_url(route));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, json)
}

async fn connect(dc: &FakeDiscord) -> Ws {
    let (ws, _) = connect_async(format!("{}/?v=10&encoding=json", dc.gateway_url()))
        .await
        .unwrap();
    ws
}

/// Next JSON frame (panics on timeout / close).
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(T, ws.next())
            .await
            .expect("gateway frame in time")
            .expect("socket open")
            .expect("frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Connects, checks Hello, identifies and returns READY's `d`.
async fn identify(dc: &FakeDiscord) -> (Ws, Value) {
    let mut ws = connect(dc).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["op"], 10);
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 37377, "properties": {"os": "linux", "browser": "serenity", "device": "serenity"}, "compress": true, "large_threshold": 250, "shard": [0, 1]}}),
    )
    .await;
    let ready = recv(&mut ws).await;
    assert_eq!(ready["t"], "READY", "{ready}");
    (ws, ready["d"].clone())
}

fn assert_user(u: &Value) {
    for k in [
        "id",
        "username",
        "discriminator",
        "global_name",
        "avatar",
        "bot",
    ] {
        assert!(u.get(k).is_some(), "user lacks {k}: {u}");
    }
    assert_eq!(u["discriminator"], "0");
}

#[tokio::test]
async fn rest_basics_auth_and_unknown_routes() {
    let dc = FakeDiscord::start(TOKEN).await;
    assert!(dc.api_base().starts_with("http://127.0.0.1:"));

    let (s, g) = rest_as(&dc, "GET", "/gateway", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(g, json!({"url": dc.gateway_url()}));
    assert!(dc.gateway_url().starts_with("ws://127.0.0.1:"));
    let (s, gb) = rest(&dc, "GET", "/gateway/bot", None).await;
    assert_eq!(s, 200);
    assert_eq!(gb["url"], json!(dc.gateway_url()));
    assert_eq!(gb["shards"], 1);
    assert_eq!(gb["session_start_limit"]["max_concurrency"], 1);

    let (s, me) = rest(&dc, "GET", "/users/@me", None).await;
    assert_eq!(s, 200);
    assert_user(&me);
    assert_eq!(me["id"], json!(dc.bot_user_id().to_string()));
    assert_eq!(me["bot"], true);

    let (s, app) = rest(&dc, "GET", "/oauth2/applications/@me", None).await;
    assert_eq!(s, 200);
    assert_eq!(app["id"], json!(dc.application_id().to_string()));
    for k in [
        "name",
        "flags",
        "bot_public",
        "bot_require_code_grant",
        "description",
        "icon",
        "verify_key",
        "team",
        "owner",
    ] {
        assert!(app.get(k).is_some(), "application lacks {k}");
    }

    let (s, body) = rest_as(&dc, "GET", "/users/@me", None, Some("Bot wrong")).await;
    assert_eq!(
        (s, body),
        (401, json!({"message": "401: Unauthorized", "code": 0}))
    );
    let (s, _) = rest_as(&dc, "GET", "/users/@me", None, None).await;
    assert_eq!(s, 401);
    let (s, body) = rest(&dc, "GET", "/nope/here", None).await;
    assert_eq!(
        (s, body),
        (404, json!({"message": "404: Not Found", "code": 0}))
    );

    let calls = dc.calls_matching("get", "/users/@me");
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].authorization(),
        Some(format!("Bot {TOKEN}").as_str())
    );
    assert_eq!(calls[1].status, 401);
}

#[tokio::test]
async fn gateway_handshake_heartbeat_and_dispatches() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.set_heartbeat_interval(45_000);
    let mut ws = connect(&dc).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["d"]["heartbeat_interval"], 45_000);
    assert_eq!(hello["s"], Value::Null);

    send(&mut ws, json!({"op": 1, "d": null})).await;
    assert_eq!(recv(&mut ws).await["op"], 11);

    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 37377, "properties": {}}}),
    )
    .await;
    let ready = recv(&mut ws).await;
    assert_eq!(
        (ready["op"].clone(), ready["s"].clone()),
        (json!(0), json!(1))
    );
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_user(&d["user"]);
    assert_eq!(d["guilds"], json!([]));
    assert!(d["session_id"].as_str().unwrap().len() >= 16);
    assert_eq!(d["resume_gateway_url"], json!(dc.gateway_url()));
    assert_eq!(
        d["application"]["id"],
        json!(dc.application_id().to_string())
    );
    assert!(d["application"]["flags"].is_u64());
    assert!(dc.wait_ready(T).await);
    assert_eq!(dc.identifies(), 1);
    assert_eq!(dc.last_identify().unwrap()["intents"], 37377);

    let mid = dc.send_message(500, Some(600), 42, "alice", "hello bot", true);
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["t"].clone(), ev["s"].clone()),
        (json!("MESSAGE_CREATE"), json!(2))
    );
    let m = &ev["d"];
    assert_eq!(m["id"], json!(mid.to_string()));
    assert_eq!(m["channel_id"], "500");
    assert_eq!(m["guild_id"], "600");
    assert_eq!(
        m["content"],
        json!(format!("<@{}> hello bot", dc.bot_user_id()))
    );
    assert_user(&m["author"]);
    assert_eq!(m["author"]["username"], "alice");
    assert_eq!(m["mentions"][0]["id"], json!(dc.bot_user_id().to_string()));
    for k in [
        "timestamp",
        "edited_timestamp",
        "tts",
        "mention_everyone",
        "mention_roles",
        "attachments",
        "embeds",
        "pinned",
        "type",
        "member",
    ] {
        assert!(m.get(k).is_some(), "message lacks {k}");
    }
    assert!(m["timestamp"].as_str().unwrap().ends_with("+00:00"));

    let dm = dc.send_message(501, None, 43, "bob", "psst", false);
    let ev = recv(&mut ws).await;
    assert_eq!(ev["s"], 3);
    assert_eq!(ev["d"]["id"], json!(dm.to_string()));
    assert!(ev["d"].get("guild_id").is_none());
    assert_eq!(ev["d"]["content"], "psst");

    let (iid, token) = dc.send_slash_command(
        Some(600),
        500,
        42,
        "ask",
        json!([{"name": "q", "type": 3, "value": "hi"}]),
    );
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["t"].clone(), ev["s"].clone()),
        (json!("INTERACTION_CREATE"), json!(4))
    );
    let i = &ev["d"];
    assert_eq!(i["id"], json!(iid.to_string()));
    assert_eq!(i["token"], json!(token));
    assert_eq!(i["type"], 2);
    assert_eq!(i["data"]["name"], "ask");
    assert_eq!(i["data"]["options"][0]["value"], "hi");
    assert_user(&i["member"]["user"]);
    for k in [
        "attachment_size_limit",
        "app_permissions",
        "entitlements",
        "authorizing_integration_owners",
        "context",
        "locale",
        "version",
        "application_id",
        "channel",
        "channel_id",
        "guild_id",
    ] {
        assert!(i.get(k).is_some(), "interaction lacks {k}");
    }
    let (_, _) = dc.send_autocomplete(
        None,
        501,
        43,
        "ask",
        json!([{"name": "q", "type": 3, "value": "h", "focused": true}]),
    );
    let ev = recv(&mut ws).await;
    assert_eq!(ev["d"]["type"], 4);
    assert_user(&ev["d"]["user"]);
    assert_eq!(ev["d"]["context"], 1);
    assert!(dc.wait_delivered(T).await);

    send(&mut ws, json!({"op": 1, "d": 5})).await;
    assert_eq!(recv(&mut ws).await["op"], 11);
    assert_eq!(dc.heartbeats(), 2);
    assert_eq!(dc.connections(), 1);
}

#[tokio::test]
async fn gateway_rejects_bad_token_and_second_identify() {
    let dc = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&dc).await;
    recv(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": "nope", "intents": 0, "properties": {}}}),
    )
    .await;
    match tokio::time::timeout(T, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4004),
        other => panic!("expected close 4004, got {other:?}"),
    }
    let (mut ws, _) = identify(&dc).await;
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 0, "properties": {}}}),
    )
    .await;
    match tokio::time::timeout(T, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4005),
        other => panic!("expected close 4005, got {other:?}"),
    }
}

#[tokio::test]
async fn drop_connection_then_resume_replays_missed_events() {
    let dc = FakeDiscord::start(TOKEN).await;
    let (mut ws, ready) = identify(&dc).await;
    let session = ready["session_id"].as_str().unwrap().to_string();

    // Written to the socket (s = 2) but the client "misses" it.
    dc.send_message(500, None, 42, "alice", "missed", false);
    assert!(dc.wait_delivered(T).await);
    dc.drop_connection();
    // The socket ends without a close frame.
    loop {
        match tokio::time::timeout(T, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(_))) => {}
            Some(Ok(Message::Close(_))) => panic!("abrupt drop expected"),
            Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    // Queued while nobody is connected.
    dc.send_message(500, None, 42, "alice", "while away", false);
    assert_eq!(dc.pending_events(), 1);

    let mut ws = connect(&dc).await;
    assert_eq!(recv(&mut ws).await["op"], 10);
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 1}}),
    )
    .await;
    let replay = recv(&mut ws).await;
    assert_eq!(
        (replay["t"].clone(), replay["s"].clone()),
        (json!("MESSAGE_CREATE"), json!(2))
    );
    assert_eq!(replay["d"]["content"], "missed");
    let resumed = recv(&mut ws).await;
    assert_eq!(
        (resumed["t"].clone(), resumed["s"].clone()),
        (json!("RESUMED"), json!(3))
    );
    let later = recv(&mut ws).await;
    assert_eq!(
        (later["s"].clone(), later["d"]["content"].clone()),
        (json!(4), json!("while away"))
    );
    assert_eq!((dc.connections(), dc.identifies(), dc.resumes()), (2, 1, 1));
    assert_eq!(dc.successful_resumes(), 1);

    // A resume of an unknown session is refused with op 9 d=false.
    let mut ws2 = connect(&dc).await;
    recv(&mut ws2).await;
    send(
        &mut ws2,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": "other", "seq": 4}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws2).await,
        json!({"op": 9, "d": false, "s": null, "t": null})
    );
    assert!(dc.wait_for_resumes(2, T).await);
    assert!(dc.wait_for_connections(3, T).await);
}

#[tokio::test]
async fn commands_bulk_overwrite_list_and_delete() {
    let dc = FakeDiscord::start(TOKEN).await;
    let app = dc.application_id();
    let cmds = json!([
        {"name": "ask", "description": "Ask the agent", "type": 1, "options": [
            {"type": 3, "name": "prompt", "description": "What to ask", "required": true, "autocomplete": true}
        ]},
        {"name": "reset", "description": "Reset the session"}
    ]);
    let (s, out) = rest(
        &dc,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(cmds.clone()),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out.as_array().unwrap().len(), 2);
    for c in out.as_array().unwrap() {
        for k in [
            "id",
            "application_id",
            "version",
            "default_member_permissions",
            "dm_permission",
            "type",
            "nsfw",
            "integration_types",
            "contexts",
        ] {
            assert!(c.get(k).is_some(), "command lacks {k}");
        }
        assert_eq!(c["application_id"], json!(app.to_string()));
    }
    assert_eq!(dc.registered_commands(None), out);
    let (s, listed) = rest(&dc, "GET", &format!("/applications/{app}/commands"), None).await;
    assert_eq!((s, &listed), (200, &out));

    // Overwriting keeps the id of a command with the same name.
    let (_, again) = rest(
        &dc,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(json!([cmds[0]])),
    )
    .await;
    assert_eq!(again[0]["id"], out[0]["id"]);
    assert_eq!(dc.registered_commands(None).as_array().unwrap().len(), 1);

    let (s, err) = rest(
        &dc,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(json!([{"name": "Bad Name", "description": "x"}])),
    )
    .await;
    assert_eq!((s, err["code"].clone()), (400, json!(50035)));
    let (s, _) = rest(
        &dc,
        "PUT",
        &format!("/applications/{}/commands", dc.bot_user_id()),
        Some(json!([])),
    )
    .await;
    assert_eq!(s, 403);

    let (s, g) = rest(
        &dc,
        "PUT",
        &format!("/applications/{app}/guilds/77/commands"),
        Some(json!([cmds[1]])),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(g[0]["guild_id"], "77");
    assert_eq!(dc.registered_commands(Some(77)), g);

    let id = again[0]["id"].as_str().unwrap();
    let (s, _) = rest(
        &dc,
        "DELETE",
        &format!("/applications/{app}/commands/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(dc.registered_commands(None), json!([]));
    let (s, _) = rest(
        &dc,
        "DELETE",
        &format!("/applications/{app}/commands/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn channel_messages_typing_dm_and_length_limit() {
    let dc = FakeDiscord::start(TOKEN).await;
    let (s, msg) = rest(
        &dc,
        "POST",
        "/channels/900/messages",
        Some(json!({"content": "hi there", "message_reference": {"message_id": "1"}})),
    )
    .await;
    assert_eq!(s, 200, "{msg}");
    assert_eq!(msg["author"]["id"], json!(dc.bot_user_id().to_string()));
    assert_eq!(msg["channel_id"], "900");
    assert_eq!(msg["type"], 19);
    for k in [
        "id",
        "timestamp",
        "edited_timestamp",
        "tts",
        "mention_everyone",
        "mentions",
        "mention_roles",
        "attachments",
        "embeds",
        "pinned",
    ] {
        assert!(msg.get(k).is_some(), "message lacks {k}");
    }
    let got = dc.wait_for_channel_messages(900, 1, T).await;
    assert_eq!(got, vec![msg.clone()]);

    let (s, err) = rest(
        &dc,
        "POST",
        "/channels/900/messages",
        Some(json!({"content": "x".repeat(2001)})),
    )
    .await;
    assert_eq!(
        (s, err["code"].clone(), err["message"].clone()),
        (400, json!(50035), json!("Invalid Form Body"))
    );
    let (s, err) = rest(
        &dc,
        "POST",
        "/channels/900/messages",
        Some(json!({"content": ""})),
    )
    .await;
    assert_eq!((s, err["code"].clone()), (400, json!(50006)));
    assert_eq!(dc.channel_messages(900).len(), 1);

    let (s, _) = rest(&dc, "POST", "/channels/900/typing", None).await;
    assert_eq!(s, 204);
    let id = msg["id"].as_str().unwrap();
    let (s, edited) = rest(
        &dc,
        "PATCH",
        &format!("/channels/900/messages/{id}"),
        Some(json!({"content": "edited"})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(edited["edited_timestamp"].is_string());
    assert_eq!(dc.channel_messages(900)[0]["content"], "edited");

    dc.send_message(901, None, 44, "carol", "hey", false);
    let (s, ch) = rest(
        &dc,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": "44"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (ch["id"].clone(), ch["type"].clone()),
        (json!("901"), json!(1))
    );
    assert_eq!(ch["recipients"][0]["username"], "carol");
    let (s, _) = rest(&dc, "GET", "/channels/900", None).await;
    assert_eq!(s, 404);
    dc.register_channel(903, Some(77), 0);
    let (s, ch) = rest(&dc, "GET", "/channels/903", None).await;
    assert_eq!(
        (s, ch["guild_id"].clone(), ch["type"].clone()),
        (200, json!("77"), json!(0))
    );

    // Multipart with payload_json and a file.
    let boundary = "XyZbOuNdArY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{{\"content\":\"file\",\"attachments\":[{{\"id\":0,\"filename\":\"a.txt\"}}]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let resp = reqwest::Client::new()
        .post(dc.api_url("/channels/902/messages"))
        .header("authorization", format!("Bot {TOKEN}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let call = dc
        .calls_matching("POST", "/channels/902/messages")
        .pop()
        .unwrap();
    assert_eq!(call.body["content"], "file");
    assert_eq!(call.files[0].filename, "a.txt");
    assert_eq!(call.files[0].data, b"hello");
    assert_eq!(dc.channel_messages(902)[0]["attachments"][0]["size"], 5);
}

#[tokio::test]
async fn interaction_callback_edit_and_followup_in_order() {
    let dc = FakeDiscord::start(TOKEN).await;
    let app = dc.application_id();
    let (iid, token) = dc.send_slash_command(None, 700, 42, "ask", Value::Null);

    // Follow-up before acknowledging fails.
    let (s, _) = rest_as(
        &dc,
        "POST",
        &format!("/webhooks/{app}/{token}"),
        Some(json!({"content": "early"})),
        None,
    )
    .await;
    assert_eq!(s, 404);

    let (s, _) = rest(
        &dc,
        "POST",
        &format!("/interactions/{iid}/{token}/callback"),
        Some(json!({"type": 5, "data": {"flags": 64}})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, edited) = rest(
        &dc,
        "PATCH",
        &format!("/webhooks/{app}/{token}/messages/@original"),
        Some(json!({"content": "done"})),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(edited["content"], "done");
    assert_eq!(edited["flags"], 64);
    assert_eq!(dc.interaction_original(iid).unwrap()["content"], "done");
    let (s, f) = rest(
        &dc,
        "POST",
        &format!("/webhooks/{app}/{token}"),
        Some(json!({"content": "more"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(f["author"]["id"], json!(dc.bot_user_id().to_string()));
    let (s, err) = rest(
        &dc,
        "POST",
        &format!("/interactions/{iid}/{token}/callback"),
        Some(json!({"type": 4, "data": {"content": "again"}})),
    )
    .await;
    assert_eq!((s, err["code"].clone()), (400, json!(40060)));

    let calls = dc.wait_for_interaction(iid, 5, T).await;
    let kinds: Vec<_> = calls.iter().map(|c| c.interaction_kind()).collect();
    assert_eq!(
        kinds,
        [
            "followup",
            "callback",
            "edit_original",
            "followup",
            "callback"
        ]
    );
    assert_eq!(calls[1].callback_type(), Some(5));
    assert!(calls[1].is_ephemeral());
    assert_eq!(calls[2].content(), Some("done"));
    assert_eq!(calls[3].status, 200);
    assert_eq!(calls[4].status, 400);

    // Autocomplete only takes type 8.
    let (aid, atoken) = dc.send_autocomplete(Some(1), 2, 42, "ask", json!([]));
    let (s, _) = rest(
        &dc,
        "POST",
        &format!("/interactions/{aid}/{atoken}/callback"),
        Some(json!({"type": 4, "data": {"content": "x"}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = rest(
        &dc,
        "POST",
        &format!("/interactions/{aid}/{atoken}/callback"),
        Some(json!({"type": 8, "data": {"choices": [{"name": "a", "value": "a"}]}})),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(dc.interaction_responses(aid).len(), 2);
}

#[tokio::test]
async fn interaction_ack_deadline() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.set_interaction_ack_deadline(Some(Duration::from_millis(50)));
    let (mut ws, _) = identify(&dc).await;
    let (iid, token) = dc.send_slash_command(Some(1), 2, 3, "ask", Value::Null);
    assert_eq!(recv(&mut ws).await["t"], "INTERACTION_CREATE");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (s, err) = rest(
        &dc,
        "POST",
        &format!("/interactions/{iid}/{token}/callback"),
        Some(json!({"type": 5})),
    )
    .await;
    assert_eq!((s, err["code"].clone()), (404, json!(10062)));
}

#[tokio::test]
async fn scripted_rate_limits() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.rate_limit_next("/channels/5/messages", 2, 1.5);
    for _ in 0..2 {
        let resp = reqwest::Client::new()
            .post(dc.api_url("/channels/5/messages"))
            .header("authorization", format!("Bot {TOKEN}"))
            .json(&json!({"content": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        let h = resp.headers();
        assert_eq!(h["retry-after"], "2");
        assert_eq!(h["x-ratelimit-global"], "false");
        assert_eq!(h["x-ratelimit-scope"], "user");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
        );
    }
    let (s, _) = rest(
        &dc,
        "POST",
        "/channels/5/messages",
        Some(json!({"content": "hi"})),
    )
    .await;
    assert_eq!(s, 200);
    let statuses: Vec<u16> = dc
        .calls_matching("post", "/channels/5/messages")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!(dc.channel_messages(5).len(), 1);
}

/// Connects and identifies as shard `shard`; returns the socket and READY's `d`.
async fn identify_shard(dc: &FakeDiscord, shard: Value) -> (Ws, Value) {
    let mut ws = connect(dc).await;
    assert_eq!(recv(&mut ws).await["op"], 10);
    send(
        &mut ws,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 37377, "properties": {}, "shard": shard}}),
    )
    .await;
    let ready = recv(&mut ws).await;
    assert_eq!(ready["t"], "READY", "{ready}");
    (ws, ready["d"].clone())
}

#[tokio::test]
async fn shards_get_the_events_discord_routes_to_them() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.set_max_concurrency(16);
    let (s, gb) = rest(&dc, "GET", "/gateway/bot", None).await;
    assert_eq!(s, 200);
    assert_eq!(gb["session_start_limit"]["max_concurrency"], 16);
    for k in ["total", "remaining", "reset_after"] {
        assert!(gb["session_start_limit"][k].is_u64(), "{k}: {gb}");
    }

    let (mut ws0, ready0) = identify_shard(&dc, json!([0, 2])).await;
    let (mut ws1, ready1) = identify_shard(&dc, json!([1, 2])).await;
    assert_eq!(
        (ready0["shard"].clone(), ready1["shard"].clone()),
        (json!([0, 2]), json!([1, 2]))
    );
    assert_ne!(
        ready0["session_id"], ready1["session_id"],
        "a session per shard"
    );
    assert_eq!(dc.identify_shards(), [json!([0, 2]), json!([1, 2])]);

    // Guild 600 is on shard 0 of 2 (600 >> 22 == 0), this one on shard 1.
    let on_1: u64 = 1_100_000_000_000_000_111;
    assert_eq!(shard_of(&json!({"guild_id": on_1.to_string()}), 2), 1);
    let m1 = dc.send_message(501, Some(on_1), 42, "alice", "for shard one", true);
    let m0 = dc.send_message(500, Some(600), 42, "alice", "for shard zero", true);
    let dm = dc.send_message(502, None, 42, "alice", "a DM", false);
    let ev1 = recv(&mut ws1).await;
    assert_eq!(
        (ev1["d"]["id"].clone(), ev1["s"].clone()),
        (json!(m1.to_string()), json!(2))
    );
    let ev0 = recv(&mut ws0).await;
    assert_eq!(
        (ev0["d"]["id"].clone(), ev0["s"].clone()),
        (json!(m0.to_string()), json!(2))
    );
    let ev_dm = recv(&mut ws0).await;
    assert_eq!(ev_dm["d"]["id"], json!(dm.to_string()), "DMs on shard 0");
    assert!(dc.wait_delivered(T).await);
    let ids = |shard: [u64; 2]| -> Vec<Value> {
        dc.dispatched_on(shard)
            .iter()
            .filter(|d| d["t"] == "MESSAGE_CREATE")
            .map(|d| d["d"]["id"].clone())
            .collect()
    };
    assert_eq!(ids([1, 2]), [json!(m1.to_string())]);
    assert_eq!(ids([0, 2]), [json!(m0.to_string()), json!(dm.to_string())]);

    // Resuming shard 1's session after a drop replays only shard 1's events.
    let session1 = ready1["session_id"].clone();
    drop(ws1);
    let mut ws = connect(&dc).await;
    assert_eq!(recv(&mut ws).await["op"], 10);
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session1, "seq": 1}}),
    )
    .await;
    let replayed = recv(&mut ws).await;
    assert_eq!(replayed["d"]["id"], json!(m1.to_string()));
    assert_eq!(recv(&mut ws).await["t"], "RESUMED");

    // A shard id outside the count is refused, as Discord does (4010).
    let mut bad = connect(&dc).await;
    assert_eq!(recv(&mut bad).await["op"], 10);
    send(
        &mut bad,
        json!({"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}, "shard": [2, 2]}}),
    )
    .await;
    let close = tokio::time::timeout(T, bad.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match close {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4010),
        other => panic!("expected close 4010, got {other:?}"),
    }
}
