//! `remoteclaw pairing` end to end (DESIGN §4, §6): codes requested through the library
//! (as a channel would) on the home's state.db, then listed, approved, refused and
//! revoked with the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::clock::{Clock, ManualClock, SystemClock};
use remoteclaw::pairing::PairingStore;
use remoteclaw::state::StateDb;
use serde_json::Value;
use std::sync::Arc;
use support::home::{TestHome, stderr, stdout};

fn store(h: &TestHome, clock: Arc<dyn Clock>) -> PairingStore {
    let db = StateDb::open(&h.state_dir().join("state.db")).unwrap();
    PairingStore::new(db, clock)
}

async fn list_json(h: &TestHome) -> Value {
    let out = h.run(&["pairing", "list", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test]
async fn request_list_approve_revoke() {
    let h = TestHome::new("[channels.telegram]\nenabled = true\nbotToken = \"1:x\"\n");
    let s = store(&h, Arc::new(SystemClock));
    let req = s
        .request("telegram", "123456789", Some("@alice"))
        .await
        .unwrap();
    assert!(req.fresh);
    assert!(!s.is_approved("telegram", "123456789").await.unwrap());

    let v = list_json(&h).await;
    assert_eq!(v["pending"].as_array().unwrap().len(), 1, "{v}");
    let p = &v["pending"][0];
    assert_eq!(p["channel"], "telegram");
    assert_eq!(p["sender"], "123456789");
    assert_eq!(p["label"], "@alice");
    assert_eq!(p["code"], req.code.as_str());
    assert!(p["expiresAt"].as_i64().unwrap() > p["createdAt"].as_i64().unwrap());
    assert_eq!(v["approved"], Value::Array(vec![]));

    let out = h.run(&["pairing", "list"]).await;
    let text = stdout(&out);
    assert!(text.contains(&req.code), "{text}");
    assert!(text.contains("123456789 (@alice)"), "{text}");
    assert!(text.contains("expires in"), "{text}");

    // The doctor points at the waiting request.
    let out = h.run(&["doctor", "--json"]).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let waiting: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "pairing_pending")
        .collect();
    assert_eq!(waiting.len(), 1, "{v:#}");
    assert!(
        waiting[0]["message"]
            .as_str()
            .unwrap()
            .contains("telegram: 1 pairing request")
    );

    // Lower-case code, upper-case channel: both accepted.
    let out = h
        .run(&["pairing", "approve", "Telegram", &req.code.to_lowercase()])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("123456789 (@alice)"), "{text}");
    assert!(text.contains("can message the bot"), "{text}");
    assert!(
        !text.contains("note:"),
        "telegram is enabled with dmPolicy pairing: {text}"
    );
    assert!(s.is_approved("telegram", "123456789").await.unwrap());

    let v = list_json(&h).await;
    assert_eq!(v["pending"], Value::Array(vec![]));
    assert_eq!(v["approved"][0]["sender"], "123456789");
    assert!(v["approved"][0]["approvedAt"].as_i64().is_some());
    assert!(
        v["approved"][0].get("code").is_none(),
        "used codes are not shown"
    );

    // Asking again does not issue a new code to an approved sender.
    let again = s.request("telegram", "123456789", None).await.unwrap();
    assert!(again.approved && !again.fresh);

    let out = h.run(&["pairing", "approve", "telegram", &req.code]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already approved"),
        "{}",
        stderr(&out)
    );

    let out = h.run(&["pairing", "revoke", "telegram", "123456789"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Revoked"), "{}", stdout(&out));
    assert!(!s.is_approved("telegram", "123456789").await.unwrap());
    let out = h.run(&["pairing", "revoke", "telegram", "123456789"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("nothing changed"), "{}", stdout(&out));
}

#[tokio::test]
async fn unknown_and_expired_codes_and_bad_channels_are_refused() {
    let h = TestHome::new("");
    // A code issued two hours ago has expired by now.
    let past = ManualClock::new(SystemClock.now_ms() - 2 * 3_600_000);
    let old = store(&h, past)
        .request("discord", "222", None)
        .await
        .unwrap();
    let s = store(&h, Arc::new(SystemClock));

    let out = h.run(&["pairing", "approve", "discord", &old.code]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("message the bot again"), "{err}");
    assert!(!s.is_approved("discord", "222").await.unwrap());
    assert_eq!(
        list_json(&h).await["pending"],
        Value::Array(vec![]),
        "expired requests are not listed"
    );

    let out = h.run(&["pairing", "approve", "discord", "ZZZZ2222"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("ZZZZ2222"), "{err}");
    assert!(err.contains("remoteclaw pairing list"), "{err}");

    // A code belongs to its channel.
    let fresh = s.request("discord", "333", None).await.unwrap();
    let out = h
        .run(&["pairing", "approve", "telegram", &fresh.code])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!s.is_approved("discord", "333").await.unwrap());

    for args in [
        ["pairing", "approve", "slack", "ABCDEFGH"],
        ["pairing", "revoke", "matrix", "333"],
    ] {
        let out = h.run(&args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("telegram or discord"), "{err}");
    }

    // Approving on a channel that is not enabled works, with a note.
    let out = h.run(&["pairing", "approve", "discord", &fresh.code]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("not enabled"), "{}", stdout(&out));
    assert!(s.is_approved("discord", "333").await.unwrap());
}

/// Regression: pairing labels (first names, usernames chosen by whoever messages the
/// bot) were printed raw, terminal escapes included.
#[tokio::test]
async fn pairing_labels_with_terminal_escapes_are_printed_escaped() {
    let h = TestHome::new("[channels.telegram]\nenabled = true\nbotToken = \"1:x\"\n");
    let s = store(&h, Arc::new(SystemClock));
    let hostile = "Eve\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let req = s.request("telegram", "77", Some(hostile)).await.unwrap();
    let out = h.run(&["pairing", "list"]).await;
    let text = stdout(&out);
    assert!(text.contains(&req.code), "{text}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control characters printed: {text:?}"
    );
    assert!(
        text.contains("Eve\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{9b}31m"),
        "{text}"
    );
    let out = h.run(&["pairing", "list", "--json"]).await;
    let raw = stdout(&out);
    assert!(!raw.chars().any(|c| c.is_control() && c != '\n'), "{raw:?}");
    // JSON's own escapes keep the output free of control characters, and the value is
    // the label as it came (a script gets the true name, not a re-escaped one).
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["pending"][0]["label"], hostile);
    // Approving prints the name too.
    let out = h.run(&["pairing", "approve", "telegram", &req.code]).await;
    assert!(!stdout(&out).chars().any(|c| c.is_control() && c != '\n'));
}
