//! Telegram answers teloxide cannot read, read anyway where that saves a message (DESIGN
//! §8: a malformed platform reply is an error, never a stalled channel or a lost reply).
//!
//! - A `getUpdates` batch that does not parse as a whole (one update holding a string
//!   with a lone UTF-16 surrogate escape, which JSON parsers refuse, or any update
//!   teloxide cannot read) is read update by update: the readable ones are answered,
//!   the others skipped by id, so the offset moves past them instead of asking for the
//!   same batch forever.
//! - An error answer whose `retry_after` does not fit teloxide's type (a 429 asking for
//!   more than `u32::MAX` seconds) is still a 429: its wait, clamped to 24 h, is kept.

use super::limiter::MAX_RETRY_AFTER;
use serde_json::Value;
use std::borrow::Cow;
use teloxide::RequestError;
use teloxide::types::{Seconds, Update};

/// What `getUpdates` held, read one update at a time.
pub struct Batch {
    pub updates: Vec<Update>,
    /// Ids of the updates that could not be read.
    pub skipped: Vec<i64>,
}

/// The updates of a `getUpdates` answer teloxide refused as a whole; `None` when even
/// the batch around them cannot be read (then nothing tells which ids to skip).
pub fn updates(raw: &str) -> Option<Batch> {
    let text = without_lone_surrogates(raw);
    let answer: Value = serde_json::from_str(&text).ok()?;
    let list = answer.get("result")?.as_array()?;
    let mut batch = Batch {
        updates: Vec::with_capacity(list.len()),
        skipped: Vec::new(),
    };
    for item in list {
        // From text, not from the `Value`: teloxide reads the update's kind from
        // borrowed keys, which a `Value` cannot lend.
        match serde_json::from_str::<Update>(&item.to_string()) {
            Ok(u) => batch.updates.push(u),
            // Skipped by id when it has one a poll offset can pass (an id out of that
            // range must not move the offset past every later update).
            Err(_) => batch.skipped.extend(
                item.get("update_id")
                    .and_then(Value::as_i64)
                    .filter(|id| (0..i64::from(i32::MAX)).contains(id)),
            ),
        }
    }
    Some(batch)
}

/// `e`, or the 429 it really is: an answer with `"error_code": 429` whose `retry_after`
/// teloxide could not read becomes [`RequestError::RetryAfter`], clamped to 24 h.
pub fn readable(e: RequestError) -> RequestError {
    let RequestError::InvalidJson { raw, .. } = &e else {
        return e;
    };
    let Ok(answer) = serde_json::from_str::<Value>(&without_lone_surrogates(raw)) else {
        return e;
    };
    if answer.get("error_code").and_then(Value::as_i64) != Some(429) {
        return e;
    }
    let asked = answer
        .pointer("/parameters/retry_after")
        .and_then(|v| v.as_f64())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    let secs = asked.ceil().min(MAX_RETRY_AFTER.as_secs_f64()) as u32;
    RequestError::RetryAfter(Seconds::from_seconds(secs))
}

/// `raw` with every `\uXXXX` escape of a UTF-16 surrogate that is not half of a pair
/// replaced by `\ufffd` (JSON parsers refuse such strings, Telegram's text may hold
/// them when a client cut a character in two).
pub fn without_lone_surrogates(raw: &str) -> Cow<'_, str> {
    if !raw.contains("\\u") {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let escape_at = |i: usize| -> Option<u16> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
            let hex = raw.get(i + 2..i + 6)?;
            u16::from_str_radix(hex, 16).ok()
        } else {
            None
        }
    };
    let high = |u: u16| (0xD800..0xDC00).contains(&u);
    let low = |u: u16| (0xDC00..0xE000).contains(&u);
    let mut out = String::with_capacity(raw.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            Some(u) if high(u) && escape_at(i + 6).is_some_and(low) => i += 12,
            Some(u) if high(u) || low(u) => {
                out.push_str(&raw[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
            }
            Some(_) => i += 6,
            // Any other escape (`\\`, `\"`, `\n`, …): two bytes, never the start of `\u`.
            None => i += 2,
        }
    }
    if last == 0 {
        return Cow::Borrowed(raw);
    }
    out.push_str(&raw[last..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_replaced_and_pairs_kept() {
        let cases = [
            (r#""hi \udcff""#, r#""hi \ufffd""#),
            (r#""\ud83d""#, r#""\ufffd""#),
            (r#""\ud83d\ude00 ok""#, r#""\ud83d\ude00 ok""#),
            (r#""\ud83dx""#, r#""\ufffdx""#),
            (r#""\\udcff is text""#, r#""\\udcff is text""#),
            (r#""\\\udcff""#, r#""\\\ufffd""#),
            (r#""\u00e9 plain""#, r#""\u00e9 plain""#),
            (r#""\u12""#, r#""\u12""#),
        ];
        for (raw, want) in cases {
            let got = without_lone_surrogates(raw);
            assert_eq!(got, want, "{raw}");
            assert!(
                serde_json::from_str::<String>(&got).is_ok() || raw.contains("\\u12"),
                "{got}"
            );
        }
    }

    #[test]
    fn a_batch_with_one_unreadable_update_keeps_the_others() {
        let raw = r#"{"ok":true,"result":[
            {"update_id":10,"message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private","first_name":"A"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi \udcff"}},
            {"update_id":11,"message":{"message_id":2,"date":1,"chat":{"id":42,"type":"private","first_name":"A"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"fine"}},
            {"update_id":12,"message":"not a message"},
            {"update_id":"13"},
            {"update_id":99999999999}
        ]}"#;
        assert!(
            serde_json::from_str::<Value>(raw).is_err(),
            "as sent, unreadable"
        );
        let batch = updates(raw).expect("readable one by one");
        let ids: Vec<i64> = batch.updates.iter().map(|u| i64::from(u.id.0)).collect();
        // 12 is read as an update of a kind the channel skips (teloxide's own leniency).
        assert_eq!(ids, [10, 11, 12]);
        match &batch.updates[0].kind {
            teloxide::types::UpdateKind::Message(m) => assert_eq!(m.text(), Some("hi \u{fffd}")),
            other => panic!("{other:?}"),
        }
        // No id a poll offset could pass: nothing to skip (the offset does not jump).
        assert!(batch.skipped.is_empty(), "{:?}", batch.skipped);
    }

    #[test]
    fn an_oversized_retry_after_is_still_a_429_clamped_to_a_day() {
        let raw = r#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":99999999999}}"#;
        let source = serde_json::from_str::<Value>("x").unwrap_err();
        let e = RequestError::InvalidJson {
            source: std::sync::Arc::new(source),
            raw: raw.into(),
        };
        match readable(e) {
            RequestError::RetryAfter(s) => assert_eq!(s.duration(), MAX_RETRY_AFTER),
            other => panic!("{other:?}"),
        }
        let other = r#"{"ok":false,"error_code":400,"description":"Bad Request"}"#;
        let source = serde_json::from_str::<Value>("x").unwrap_err();
        let e = RequestError::InvalidJson {
            source: std::sync::Arc::new(source),
            raw: other.into(),
        };
        assert!(matches!(readable(e), RequestError::InvalidJson { .. }));
    }
}
