//! Streamed replies on Discord (DESIGN §10): a message is posted early and edited as the
//! model writes, at least `streamIntervalMs` apart, continued in a new message past
//! 2000 characters; a slash command streams into its deferred response and follow-ups;
//! a 429 on an edit still ends with the whole text once. Real clock: edits may come
//! later than the interval, never sooner (the exact timing is tested on paused time in
//! `channels::stream`).

use super::harness::*;
use crate::support::fake_discord::RecordedCall;
use crate::support::slow_stream;
use serde_json::json;
use std::time::Duration;

const INTERVAL_MS: u64 = 300;

fn body() -> String {
    format!(
        "{}streaming = \"edit\"\nstreamIntervalMs = {INTERVAL_MS}\n",
        default_body()
    )
}

const WORDS: [&str; 10] = [
    "Discord ",
    "gets ",
    "**Markdown** ",
    "as ",
    "it ",
    "is, ",
    "streamed ",
    "into ",
    "one ",
    "message.",
];

fn assert_spaced(writes: &[RecordedCall]) {
    for w in writes.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(INTERVAL_MS),
            "two writes of {} only {gap:?} apart",
            w[0].path
        );
    }
}

/// Successful calls of `method` whose path ends with `suffix`.
fn calls_to(s: &Setup, method: &str, suffix: &str) -> Vec<RecordedCall> {
    s.dc.calls()
        .into_iter()
        .filter(|c| c.method == method && c.path.ends_with(suffix) && c.succeeded())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_reply_is_posted_early_then_edited_an_interval_apart() {
    let s = setup_with(&body(), None).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "stream it", false);
    let s = wait_until_final(s, DM_CHANNEL, &WORDS.concat()).await;
    let posts = calls_to(&s, "POST", &format!("/channels/{DM_CHANNEL}/messages"));
    assert_eq!(posts.len(), 1, "one message");
    let first = posts[0].body["content"].as_str().unwrap();
    assert!(
        first.len() < WORDS.concat().len(),
        "posted early: {first:?}"
    );
    let id = posts[0].response["id"].as_str().unwrap().to_string();
    let edits = calls_to(&s, "PATCH", &format!("/messages/{id}"));
    assert!(!edits.is_empty(), "edited as the text grew");
    let mut writes = posts.clone();
    writes.extend(edits.iter().cloned());
    assert_spaced(&writes);
    assert_eq!(
        edits.last().unwrap().body["content"],
        json!(WORDS.concat()),
        "Markdown as is"
    );
}

/// Wait until the channel's last bot message reads `text`, then stop the channel (so
/// every call is in).
async fn wait_until_final(s: Setup, channel: u64, text: &str) -> Setup {
    let deadline = tokio::time::Instant::now() + WAIT;
    while contents(&s.dc, channel).concat() != text {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never showed the whole reply: {:?}",
            contents(&s.dc, channel)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_2000_characters_the_stream_continues_in_a_new_message() {
    let s = setup_with(&body(), None).await;
    let word = "0123456789 ".repeat(10); // 110 characters
    let words: Vec<&str> = std::iter::repeat_n(word.as_str(), 25).collect();
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(&words, Duration::from_millis(40))],
    );
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "long", false);
    let full = words.concat();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = contents(&s.dc, DM_CHANNEL);
        if shown.len() == 2 && shown.concat().replace(' ', "") == full.replace(' ', "") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = s.finish().await;
    for m in contents(&s.dc, DM_CHANNEL) {
        assert!(m.chars().count() <= 2000);
    }
    let posts = calls_to(&s, "POST", &format!("/channels/{DM_CHANNEL}/messages"));
    assert_eq!(posts.len(), 2, "each message posted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_an_edit_still_ends_with_the_whole_text_once() {
    let s = setup_with(&body(), None).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(100),
        )],
    );
    s.dc.rate_limit_next("/messages/", 2, 0.5);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "stream it", false);
    let s = wait_until_final(s, DM_CHANNEL, &WORDS.concat()).await;
    let limited =
        s.dc.calls()
            .into_iter()
            .filter(|c| c.method == "PATCH" && c.status == 429)
            .count();
    assert_eq!(limited, 2, "the edits met the 429s");
    assert_eq!(
        calls_to(&s, "POST", &format!("/channels/{DM_CHANNEL}/messages")).len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_command_streams_into_its_deferred_response() {
    let s = setup_with(&body(), None).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    let (iid, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        OWNER,
        "model",
        json!([{"name": "model", "type": 3, "value": "openai/gpt-4o-mini stream it"}]),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let calls = loop {
        let calls = s.dc.interaction_responses(iid);
        let done = calls
            .last()
            .and_then(|c| c.content())
            .is_some_and(|t| t.ends_with(&WORDS.concat()));
        if done {
            break calls;
        }
        assert!(tokio::time::Instant::now() < deadline, "{calls:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(calls[0].callback_type(), Some(5), "deferred first");
    let edits: Vec<RecordedCall> = calls[1..]
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with("/messages/@original"))
        .cloned()
        .collect();
    assert!(edits.len() >= 2, "the deferred response grew: {calls:#?}");
    assert_spaced(&edits);
    let s = s.finish().await;
    assert_eq!(s.llm.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_shows_the_typing_indicator_before_the_reply() {
    let s = setup_with(&default_body(), None).await;
    s.llm.set_latency(remoteclaw::channels::TYPING_AFTER * 4);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "take your time", false);
    let s = wait_until_final(s, DM_CHANNEL, "fake reply to: take your time").await;
    let typing = calls_to(&s, "POST", &format!("/channels/{DM_CHANNEL}/typing"));
    let posts = calls_to(&s, "POST", &format!("/channels/{DM_CHANNEL}/messages"));
    assert_eq!(typing.len(), 1, "typing shown once: {typing:?}");
    assert_eq!(posts.len(), 1);
    assert!(typing[0].at < posts[0].at, "typing shows before the reply");
}
