//! Self-test of the fake Telegram Bot API in `tests/support/fake_telegram`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_telegram::*;

const TOKEN: &str = "123456:TEST-token_abc";

async fn call(tg: &FakeTelegram, method: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(tg.method_url(method))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn assert_error(reply: &(u16, Value), code: u16, description_prefix: &str) {
    assert_eq!(reply.0, code, "{}", reply.1);
    assert_eq!(reply.1["ok"], json!(false));
    assert_eq!(reply.1["error_code"], json!(code));
    let d = reply.1["description"].as_str().unwrap();
    assert!(d.starts_with(description_prefix), "{d}");
}

#[tokio::test]
async fn get_me_has_the_full_shape() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (status, body) = call(&tg, "getMe", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ok": true, "result": {
            "id": 123456,
            "is_bot": true,
            "first_name": BOT_FIRST_NAME,
            "username": tg.bot_username(),
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        }})
    );
    assert_eq!(tg.bot_username(), "RemoteClawTestBot");
    assert_eq!(tg.api_url(), format!("http://{}", tg.addr));
    let calls = tg.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "getme");
    assert_eq!(calls[0].raw_method, "getMe");
    assert_eq!(calls[0].status, 200);
}

#[tokio::test]
async fn wrong_token_is_unauthorized_and_unknown_method_not_found() {
    let tg = FakeTelegram::start(TOKEN).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/bot999:other/getMe", tg.api_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    assert!(!tg.calls()[0].authorized);

    let reply = call(&tg, "frobnicate", json!({})).await;
    assert_error(&reply, 404, "Not Found: method not found");
}

#[tokio::test]
async fn long_poll_returns_queued_updates_at_once_and_acknowledges_by_offset() {
    let tg = FakeTelegram::start(TOKEN).await;
    let first = tg.send_dm(42, "alice", "hello");
    let second = tg.send_dm(42, "alice", "/start@RemoteClawTestBot now");
    assert_eq!(second, first + 1);

    let started = Instant::now();
    let (status, body) = call(&tg, "getUpdates", json!({"timeout": 10})).await;
    // At once, not after the 10 s poll timeout (bounds loose for a stalling host).
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, 200);
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    let msg = &updates[0]["message"];
    assert_eq!(updates[0]["update_id"], json!(first));
    assert_eq!(msg["text"], json!("hello"));
    assert_eq!(
        msg["chat"],
        json!({"id": 42, "type": "private", "first_name": "alice", "username": "alice"})
    );
    assert_eq!(msg["from"]["id"], json!(42));
    assert_eq!(msg["from"]["is_bot"], json!(false));
    assert!(msg["date"].as_i64().unwrap() > 1_600_000_000);
    assert!(msg["message_id"].as_i64().is_some());
    assert_eq!(
        updates[1]["message"]["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 24}])
    );

    // limit, then acknowledgment: updates below offset are gone for good.
    let (_, body) = call(&tg, "getUpdates", json!({"limit": 1})).await;
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
    let (_, body) = call(&tg, "getUpdates", json!({"offset": second, "timeout": 0})).await;
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["update_id"], json!(second));
    assert_eq!(tg.highest_offset_seen(), second);
    let (_, body) = call(&tg, "getUpdates", json!({"offset": second + 1})).await;
    assert_eq!(body["result"], json!([]));
    assert_eq!(tg.pending_updates(), 0);
    assert_eq!(tg.highest_offset_seen(), second + 1);
    assert_eq!(tg.updates().len(), 2);
    assert!(tg.message_id_of(first).is_some());
}

#[tokio::test]
async fn every_poll_offset_is_recorded_and_no_update_below_it_is_handed_out() {
    let tg = FakeTelegram::start(TOKEN).await;
    let first = tg.send_dm(42, "alice", "one");
    let second = tg.send_dm(42, "alice", "two");
    call(&tg, "getUpdates", json!({"timeout": 0})).await;
    let (_, body) = call(
        &tg,
        "getUpdates",
        json!({"offset": second + 1, "timeout": 0}),
    )
    .await;
    assert_eq!(body["result"], json!([]));
    // Queued again while a poll at a higher offset waits: that poll never hands it out.
    let poll = {
        let url = tg.method_url("getUpdates");
        tokio::spawn(async move {
            let body = json!({"offset": second + 1, "timeout": 5});
            let resp = reqwest::Client::new().post(url).json(&body).send().await;
            resp.unwrap().json::<Value>().await.unwrap()
        })
    };
    tg.wait_for_calls("getUpdates", 3, Duration::from_secs(5))
        .await;
    assert!(tg.redeliver(first));
    assert!(!tg.redeliver(first + 100), "unknown update id");
    let third = tg.send_dm(42, "alice", "three");
    let body = poll.await.unwrap();
    let ids: Vec<i64> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [third]);
    // Without an offset (a bot that lost its place), the redelivered update comes back.
    let (_, body) = call(&tg, "getUpdates", json!({"timeout": 0})).await;
    assert_eq!(body["result"][0]["update_id"], json!(first));
    assert_eq!(body["result"][0]["message"]["text"], json!("one"));
    assert_eq!(
        tg.poll_offsets(),
        [None, Some(second + 1), Some(second + 1), None],
        "every getUpdates' offset, in order"
    );
}

#[tokio::test]
async fn long_poll_times_out_empty_and_wakes_on_new_updates() {
    let tg = FakeTelegram::start(TOKEN).await;
    let started = Instant::now();
    let (status, body) = call(&tg, "getUpdates", json!({"timeout": 1})).await;
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(body, json!({"ok": true, "result": []}));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    let url = tg.method_url("getUpdates");
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let body: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"timeout": 10, "allowed_updates": ["message", "callback_query"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (started.elapsed(), body)
    });
    tg.wait_for_calls("getupdates", 2, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    tg.send_dm(7, "bob", "wake up");
    let (elapsed, body) = poll.await.unwrap();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(body["result"][0]["message"]["text"], json!("wake up"));
}

#[tokio::test]
async fn a_second_poll_ends_the_first_with_conflict() {
    let tg = FakeTelegram::start(TOKEN).await;
    let url = tg.method_url("getUpdates");
    let first = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .json(&json!({"timeout": 5}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    tg.wait_for_calls("getUpdates", 1, Duration::from_secs(10))
        .await;
    tg.send_dm(1, "x", "hi");
    // The waiting poll answers as soon as the update is queued.
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["result"].as_array().unwrap().len(), 1);

    let url = tg.method_url("getUpdates");
    let offset = tg.updates()[0]["update_id"].as_i64().unwrap() + 1;
    let waiting = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .json(&json!({"timeout": 5, "offset": offset}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    tg.wait_for_calls("getUpdates", 2, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn({
        let url = tg.method_url("getUpdates");
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"timeout": 0, "offset": offset}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let reply = waiting.await.unwrap();
    assert_error(
        &reply,
        409,
        "Conflict: terminated by other getUpdates request",
    );
    assert_eq!(second.await.unwrap(), 200);
}

#[tokio::test]
async fn method_names_are_case_insensitive_and_forms_are_accepted() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.send_dm(42, "alice", "hi");
    let (status, body) = call(&tg, "GetUpdates", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
    let (status, _) = call(&tg, "GETME", json!({})).await;
    assert_eq!(status, 200);

    let resp = reqwest::Client::new()
        .post(tg.method_url("SendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=42&text=a%20b+c")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(tg.sent_messages()[0].text, "a b c");
    let methods: Vec<String> = tg.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["getupdates", "getme", "sendmessage"]);
    assert_eq!(tg.calls_of("SENDMESSAGE").len(), 1);
}

#[tokio::test]
async fn send_message_is_recorded_and_returned_as_a_full_message() {
    let tg = FakeTelegram::start(TOKEN).await;
    let update = tg.send_dm(42, "alice", "question");
    let user_msg = tg.message_id_of(update).unwrap();
    let keyboard = json!({"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]});
    let (status, body) = call(
        &tg,
        "sendMessage",
        json!({
            "chat_id": 42,
            "text": "answer",
            "reply_markup": keyboard,
            "reply_parameters": {"message_id": user_msg},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let msg = &body["result"];
    assert_eq!(msg["from"]["id"], json!(123456));
    assert_eq!(msg["from"]["is_bot"], json!(true));
    assert_eq!(msg["chat"]["id"], json!(42));
    assert_eq!(msg["chat"]["type"], json!("private"));
    assert_eq!(msg["text"], json!("answer"));
    assert_eq!(msg["reply_markup"], keyboard);
    assert_eq!(msg["reply_to_message"]["message_id"], json!(user_msg));
    assert!(msg["date"].as_i64().unwrap() > 1_600_000_000);
    let id = msg["message_id"].as_i64().unwrap();
    assert_ne!(id, user_msg);

    let sent = tg.wait_for_messages(1, Duration::from_secs(1)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chat_id, 42);
    assert_eq!(sent[0].message_id, id);
    assert_eq!(sent[0].text, "answer");
    assert_eq!(sent[0].reply_to_message_id, Some(user_msg));
    assert_eq!(sent[0].reply_markup, Some(keyboard));
    assert_eq!(sent[0].callback_data(), ["yes"]);

    // Unknown chats and missing reply targets fail like the real server.
    assert_error(
        &call(&tg, "sendMessage", json!({"chat_id": 99, "text": "x"})).await,
        400,
        "Bad Request: chat not found",
    );
    assert_error(
        &call(
            &tg,
            "sendMessage",
            json!({"chat_id": 42, "text": "x", "reply_parameters": {"message_id": 9999}}),
        )
        .await,
        400,
        "Bad Request: message to be replied not found",
    );
    assert_error(
        &call(&tg, "sendMessage", json!({"chat_id": 42, "text": ""})).await,
        400,
        "Bad Request: message text is empty",
    );
    // Too few messages within the timeout: returns what was sent.
    assert_eq!(
        tg.wait_for_messages(2, Duration::from_millis(50))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn too_long_text_is_rejected_in_utf16_units() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.register_dm(5, "eve");
    let ok_text = "😀".repeat(2048); // 4096 UTF-16 units
    let (status, _) = call(&tg, "sendMessage", json!({"chat_id": 5, "text": ok_text})).await;
    assert_eq!(status, 200);
    let reply = call(
        &tg,
        "sendMessage",
        json!({"chat_id": 5, "text": "😀".repeat(2049)}),
    )
    .await;
    assert_error(&reply, 400, "Bad Request: message is too long");
    let reply = call(
        &tg,
        "sendMessage",
        json!({"chat_id": 5, "text": "a".repeat(4097)}),
    )
    .await;
    assert_error(&reply, 400, "Bad Request: message is too long");
    assert_eq!(tg.sent_messages().len(), 1);
}

#[tokio::test]
async fn parse_modes_are_validated() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.register_dm(5, "eve");
    let send = |text: &str, mode: &str| {
        call(
            &tg,
            "sendMessage",
            json!({"chat_id": 5, "text": text, "parse_mode": mode}),
        )
    };
    let reply = send("Done. See *this*", "MarkdownV2").await;
    assert_error(
        &reply,
        400,
        "Bad Request: can't parse entities: Character '.' is reserved",
    );
    let reply = send("a*b", "MarkdownV2").await;
    assert_error(
        &reply,
        400,
        "Bad Request: can't parse entities: Can't find end of Bold entity",
    );
    let reply = send("x_y [z", "MarkdownV2").await;
    assert_error(&reply, 400, "Bad Request: can't parse entities:");

    let (status, body) = send(
        "Done\\. *bold* _it_ a\\*b c\\_d e\\[f `co_de*` [link](https://x.y/a_(b\\))",
        "MarkdownV2",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["text"],
        json!("Done. bold it a*b c_d e[f co_de* link")
    );
    let sent = tg.sent_messages();
    assert_eq!(sent[0].plain_text, "Done. bold it a*b c_d e[f co_de* link");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("MarkdownV2"));

    let (status, _) = send("<b>x</b> &lt;3 a&b", "HTML").await;
    assert_eq!(status, 200);
    assert_eq!(tg.sent_messages()[1].plain_text, "x <3 a&b");
    assert_error(
        &send("line<br>two", "HTML").await,
        400,
        "Bad Request: can't parse entities: Unsupported start tag \"br\"",
    );
    assert_error(
        &send("<b>open", "HTML").await,
        400,
        "Bad Request: can't parse entities:",
    );
    assert_error(
        &send("x", "Fancy").await,
        400,
        "Bad Request: unsupported parse_mode",
    );
}

#[tokio::test]
async fn rate_limits_and_failures_are_scripted_per_method() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.register_dm(5, "eve");
    tg.rate_limit_next("SendMessage", 2, 3);
    tg.fail_next(
        "sendChatAction",
        403,
        "Forbidden: bot was blocked by the user",
    );
    for _ in 0..2 {
        let (status, body) = call(&tg, "sendMessage", json!({"chat_id": 5, "text": "hi"})).await;
        assert_eq!(status, 429);
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}})
        );
    }
    let (status, _) = call(&tg, "sendMessage", json!({"chat_id": 5, "text": "hi"})).await;
    assert_eq!(status, 200);
    assert_eq!(tg.pending_failures("sendmessage"), 0);
    let reply = call(
        &tg,
        "sendChatAction",
        json!({"chat_id": 5, "action": "typing"}),
    )
    .await;
    assert_error(&reply, 403, "Forbidden: bot was blocked by the user");
    let (status, _) = call(
        &tg,
        "sendChatAction",
        json!({"chat_id": 5, "action": "typing"}),
    )
    .await;
    assert_eq!(status, 200);

    let calls = tg.calls_of("sendMessage");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].error_code(), Some(429));
    assert!(calls[2].succeeded());
    assert_eq!(tg.sent_messages().len(), 1);
}

#[tokio::test]
async fn set_my_commands_is_validated() {
    let tg = FakeTelegram::start(TOKEN).await;
    let good = json!([{"command": "model", "description": "Switch model"}, {"command": "new_chat2", "description": "x"}]);
    let (status, _) = call(&tg, "setMyCommands", json!({"commands": good})).await;
    assert_eq!(status, 200);
    assert_eq!(tg.commands().unwrap()["commands"], good);
    let (_, body) = call(&tg, "getMyCommands", json!({})).await;
    assert_eq!(body["result"], good);

    for bad in [
        json!([{"command": "Model", "description": "x"}]),
        json!([{"command": "with-dash", "description": "x"}]),
        json!([{"command": "", "description": "x"}]),
        json!([{"command": "a".repeat(33), "description": "x"}]),
        json!([{"command": "ok", "description": ""}]),
        json!([{"command": "ok", "description": "d".repeat(257)}]),
        json!([{"command": "ok"}]),
    ] {
        let reply = call(&tg, "setMyCommands", json!({"commands": bad})).await;
        assert_error(&reply, 400, "Bad Request: ");
    }
    assert_eq!(tg.commands().unwrap()["commands"], good);

    let (status, _) = call(&tg, "deleteMyCommands", json!({})).await;
    assert_eq!(status, 200);
    let (_, body) = call(&tg, "getMyCommands", json!({})).await;
    assert_eq!(body["result"], json!([]));
}

#[tokio::test]
async fn groups_topics_buttons_and_edits() {
    let tg = FakeTelegram::start(TOKEN).await;
    let forum = -1_001_234_567_890_i64;
    tg.send_group(forum, 42, "alice", "@RemoteClawTestBot hi", Some(7), None);
    let (_, body) = call(&tg, "getUpdates", json!({})).await;
    let msg = &body["result"][0]["message"];
    assert_eq!(msg["chat"]["type"], json!("supergroup"));
    assert_eq!(msg["chat"]["is_forum"], json!(true));
    assert_eq!(msg["message_thread_id"], json!(7));
    assert_eq!(msg["is_topic_message"], json!(true));
    assert_eq!(msg["reply_to_message"]["message_id"], json!(7));
    assert!(msg["reply_to_message"]["forum_topic_created"].is_object());
    assert_eq!(msg["entities"][0]["type"], json!("mention"));
    let user_msg = msg["message_id"].as_i64().unwrap();

    // A reply without message_thread_id lands in the replied message's topic.
    let keyboard = json!({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]});
    let (_, body) = call(&tg, "sendMessage", json!({"chat_id": forum, "text": "pick", "reply_markup": keyboard, "reply_parameters": {"message_id": user_msg}})).await;
    let bot_msg = body["result"]["message_id"].as_i64().unwrap();
    assert_eq!(body["result"]["message_thread_id"], json!(7));

    tg.send_group(-555, 42, "alice", "thanks", None, Some(bot_msg));
    tg.press_button(42, forum, bot_msg, "a");
    let (_, body) = call(&tg, "getUpdates", json!({"offset": body_offset(&tg, 1)})).await;
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["message"]["chat"]["type"], json!("group"));
    assert_eq!(
        updates[0]["message"]["reply_to_message"]["from"]["is_bot"],
        json!(true)
    );
    let query = &updates[1]["callback_query"];
    assert_eq!(query["data"], json!("a"));
    assert_eq!(query["from"]["username"], json!("alice"));
    assert_eq!(query["message"]["message_id"], json!(bot_msg));
    assert_eq!(query["message"]["reply_markup"], keyboard);
    assert!(query["chat_instance"].is_string());
    let query_id = query["id"].as_str().unwrap();
    let (status, _) = call(
        &tg,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id}),
    )
    .await;
    assert_eq!(status, 200);
    let reply = call(
        &tg,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id}),
    )
    .await;
    assert_error(&reply, 400, "Bad Request: query is too old");

    let edit = json!({"chat_id": forum, "message_id": bot_msg, "text": "picked A"});
    let (status, body) = call(&tg, "editMessageText", edit.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["text"], json!("picked A"));
    assert!(body["result"]["edit_date"].is_i64());
    assert!(body["result"].get("reply_markup").is_none());
    assert_error(
        &call(&tg, "editMessageText", edit).await,
        400,
        "Bad Request: message is not modified",
    );
    let sent = tg.sent_messages();
    assert_eq!(sent.len(), 2);
    assert!(sent[1].is_edit());
    assert_eq!(
        tg.wait_for_messages(1, Duration::from_millis(10))
            .await
            .len(),
        1
    );

    let (_, body) = call(&tg, "getWebhookInfo", json!({})).await;
    assert_eq!(
        body["result"],
        json!({"url": "", "has_custom_certificate": false, "pending_update_count": 2})
    );
    call(&tg, "getUpdates", json!({"offset": body_offset(&tg, 3)})).await;
    assert_eq!(tg.pending_updates(), 0);
    for m in ["deleteWebhook", "close", "logOut"] {
        assert_eq!(call(&tg, m, json!({})).await.1["result"], json!(true));
    }
}

/// Offset acknowledging the first `n` updates ever queued.
fn body_offset(tg: &FakeTelegram, n: usize) -> i64 {
    tg.updates()[n - 1]["update_id"].as_i64().unwrap() + 1
}
