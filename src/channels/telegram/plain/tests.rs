use super::*;
use proptest::prelude::*;
use serde_json::json;

/// What teloxide itself reads from the update's text.
fn teloxide_reads(text: &str) -> Option<Update> {
    serde_json::from_str::<Update>(text).ok()
}

/// What the channel reads from it.
fn ours(text: &str) -> Option<Update> {
    serde_json::from_str::<Polled>(text).ok().map(|p| p.0)
}

/// An update as Telegram writes one: `update_id` first, then its kind.
fn text_of(update_id: &Value, kind: &str, payload: &Value) -> String {
    format!("{{\"update_id\":{update_id},{}:{payload}}}", json!(kind))
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(any::<String>())
}

fn user() -> impl Strategy<Value = Value> {
    (
        any::<u64>(),
        any::<bool>(),
        any::<String>(),
        opt_text(),
        opt_text(),
        prop::option::of("[a-z]{2}(-[A-Z]{2})?"),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(id, is_bot, first, last, username, lang, premium)| {
            let mut u = json!({"id": id, "is_bot": is_bot, "first_name": first});
            for (k, v) in [
                ("last_name", last),
                ("username", username),
                ("language_code", lang),
            ] {
                if let Some(v) = v {
                    u[k] = json!(v);
                }
            }
            if let Some(p) = premium {
                u["is_premium"] = json!(p);
            }
            u
        })
}

fn chat() -> impl Strategy<Value = Value> {
    (
        any::<i64>(),
        0..3u8,
        opt_text(),
        opt_text(),
        opt_text(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(id, kind, a, b, c, forum)| match kind {
            0 => {
                let mut ch = json!({"id": id, "type": "private"});
                for (k, v) in [("first_name", a), ("last_name", b), ("username", c)] {
                    if let Some(v) = v {
                        ch[k] = json!(v);
                    }
                }
                ch
            }
            1 => {
                let mut ch = json!({"id": id, "type": "group"});
                if let Some(t) = a {
                    ch["title"] = json!(t);
                }
                ch
            }
            _ => {
                let mut ch = json!({"id": id, "type": "supergroup"});
                if let Some(t) = a {
                    ch["title"] = json!(t);
                }
                if let Some(u) = c {
                    ch["username"] = json!(u);
                }
                if let Some(f) = forum {
                    ch["is_forum"] = json!(f);
                }
                ch
            }
        })
}

fn entities() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::collection::vec((0..50usize, 1..20usize, 0..3u8), 0..3).prop_map(|es| {
        Value::Array(
            es.into_iter()
                .map(|(offset, length, kind)| match kind {
                    0 => json!({"type": "bot_command", "offset": offset, "length": length}),
                    1 => json!({"type": "bold", "offset": offset, "length": length}),
                    _ => json!({"type": "text_link", "offset": offset, "length": length, "url": "https://example.com/a?b=c"}),
                })
                .collect(),
        )
    }))
}

/// A plain text message update (`update_id`, `message`), as Telegram sends one.
fn plain_update() -> impl Strategy<Value = (Value, Value)> {
    (
        any::<u32>(),
        any::<i32>(),
        prop::option::of(user()),
        chat(),
        // Seconds since 1970 up to the year 2100, and now and then out of any range.
        prop_oneof![9 => 0..4_102_444_800i64, 1 => any::<i64>()],
        any::<String>(),
        entities(),
    )
        .prop_map(
            |(update_id, message_id, from, chat, date, text, entities)| {
                let mut m =
                    json!({"message_id": message_id, "chat": chat, "date": date, "text": text});
                if let Some(f) = from {
                    m["from"] = f;
                }
                if let Some(e) = entities {
                    m["entities"] = e;
                }
                (json!(update_id), m)
            },
        )
}

/// A field that makes a message more than plain, at the message or the chat.
fn extra() -> impl Strategy<Value = (bool, &'static str, Value)> {
    prop_oneof![
        Just((true, "message_thread_id", json!(7))),
        Just((true, "is_topic_message", json!(true))),
        Just((true, "edit_date", json!(1_700_000_000))),
        Just((true, "caption", json!("a caption"))),
        Just((
            true,
            "photo",
            json!([{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}])
        )),
        Just((
            true,
            "reply_to_message",
            json!({"message_id": 1, "chat": {"id": 5, "type": "private"}, "date": 1, "text": "earlier"})
        )),
        Just((
            true,
            "sender_chat",
            json!({"id": -100, "type": "channel", "title": "c"})
        )),
        Just((true, "link_preview_options", json!({"is_disabled": true}))),
        Just((true, "something_new", json!({"a": 1}))),
        Just((false, "title", json!("a title"))),
        Just((false, "is_forum", json!(true))),
        Just((false, "first_name", json!("Ann"))),
        Just((false, "all_members_are_administrators", json!(true))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_plain_text_message_reads_as_teloxide_reads_it((id, message) in plain_update()) {
        let text = text_of(&id, "message", &message);
        let read = ours(&text);
        prop_assert_eq!(&read, &teloxide_reads(&text), "{}", text);
        // Every plain update teloxide reads as a message went the short way.
        if read.as_ref().is_some_and(|u| matches!(u.kind, UpdateKind::Message(_))) {
            prop_assert!(plain(&id, &message).is_some(), "not read as plain: {}", text);
        }
    }

    #[test]
    fn a_message_with_anything_more_reads_as_teloxide_reads_it(
        (id, message) in plain_update(),
        (at_message, key, value) in extra(),
    ) {
        let mut message = message;
        if at_message {
            message[key] = value;
        } else {
            message["chat"][key] = value;
        }
        let text = text_of(&id, "message", &message);
        prop_assert_eq!(ours(&text), teloxide_reads(&text), "{}", text);
    }
}

#[test]
fn other_updates_and_shapes_go_to_teloxide_as_they_came() {
    let chat = r#"{"id":5,"type":"private","first_name":"Ann"}"#;
    let from = r#"{"id":5,"is_bot":false,"first_name":"Ann"}"#;
    let message =
        format!(r#"{{"message_id":3,"from":{from},"chat":{chat},"date":1700000000,"text":"hi"}}"#);
    let query =
        format!(r#"{{"id":"q","from":{from},"chat_instance":"1","data":"x","message":{message}}}"#);
    let cases = [
        format!(r#"{{"update_id":1,"edited_message":{message}}}"#),
        format!(r#"{{"update_id":2,"channel_post":{message}}}"#),
        format!(r#"{{"update_id":3,"callback_query":{query}}}"#),
        format!(
            r#"{{"update_id":4,"message":{{"message_id":3,"chat":{chat},"date":1,"sticker":{{}}}}}}"#
        ),
        r#"{"update_id":5,"brand_new_kind":{"x":1}}"#.to_string(),
        // Fields past the kind, or before it: teloxide takes the first after update_id.
        format!(r#"{{"update_id":6,"message":{message},"extra":1}}"#),
        format!(r#"{{"update_id":7,"callback_query":{query},"business_x":1}}"#),
        format!(r#"{{"update_id":8,"aaa":1,"message":{message}}}"#),
        format!(r#"{{"message":{message},"update_id":9}}"#),
        // Duplicated keys.
        format!(r#"{{"update_id":10,"update_id":11,"message":{message}}}"#),
        // A supergroup whose is_forum is null: teloxide cannot read the chat.
        r#"{"update_id":13,"message":{"message_id":1,"chat":{"id":-100,"type":"supergroup","is_forum":null},"date":1,"text":"x"}}"#.to_string(),
    ];
    for text in cases {
        assert_eq!(ours(&text), teloxide_reads(&text), "{text}");
    }
    // A key written with escapes is the same key (teloxide alone cannot borrow it and
    // reads no kind; Telegram does not escape its keys).
    let escaped = format!(r#"{{"update_id":12,"mess\u0061ge":{message}}}"#);
    let plain_text = format!(r#"{{"update_id":12,"message":{message}}}"#);
    assert_eq!(ours(&escaped), teloxide_reads(&plain_text));
    // `update_id` after the message is the same update, and still plain.
    let text = format!(r#"{{"message":{message},"update_id":15}}"#);
    let v: Value = serde_json::from_str(&text).unwrap();
    let fields = vec![
        ("message".to_string(), v["message"].clone()),
        ("update_id".to_string(), v["update_id"].clone()),
    ];
    assert!(short(&fields).is_some(), "read the short way");
    assert_eq!(ours(&text), teloxide_reads(&text));
    // The same plain message, in Telegram's order, goes the short way.
    let text = format!(r#"{{"update_id":14,"message":{message}}}"#);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(plain(&v["update_id"], &v["message"]).is_some());
    assert_eq!(ours(&text), teloxide_reads(&text));
}

#[test]
fn a_getupdates_answer_reads_through_the_bots_envelope() {
    // Inside teloxide's untagged envelope (`lean::updates`), the fields keep their order.
    let plain_update = r#"{"update_id":10,"message":{"message_id":1,"chat":{"id":5,"type":"private"},"date":1700000000,"text":"plain"}}"#;
    let threaded = r#"{"update_id":11,"message":{"message_id":2,"chat":{"id":5,"type":"private"},"date":1700000000,"text":"with thread","message_thread_id":4}}"#;
    let late_kind = r#"{"update_id":12,"aaa":1,"message":{"message_id":3,"chat":{"id":5,"type":"private"},"date":1700000000,"text":"x"}}"#;
    let text = format!(r#"{{"ok":true,"result":[{plain_update},{threaded},{late_kind}]}}"#);
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Envelope {
        Ok { result: Vec<Polled> },
    }
    let Envelope::Ok { result } = serde_json::from_str(&text).unwrap();
    let read: Vec<Update> = result.into_iter().map(|p| p.0).collect();
    let teloxide: Vec<Update> = [plain_update, threaded, late_kind]
        .iter()
        .map(|u| teloxide_reads(u).unwrap())
        .collect();
    assert_eq!(read, teloxide);
    assert!(
        matches!(read[2].kind, UpdateKind::Error(_)),
        "{:?}",
        read[2]
    );
}
