//! Streamed replies and formatting on Telegram (DESIGN §10), end to end: the real
//! channel (teloxide) against the fake Bot API, the model streaming slowly from the fake
//! provider. The presenter's timing rules are tested on paused time in
//! `channels::stream`; here the real clock only bounds from below (edits may come later
//! than the interval, never sooner).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::telegram_support;

use std::time::Duration;
use support::fake_provider::Behavior;
use support::fake_telegram::SentMessage;
use support::slow_stream;
use telegram_support::{WAIT, inbox, setup, wait_answered};

const INTERVAL_MS: u64 = 300;

fn streaming(mode: &str) -> String {
    format!("streaming = \"{mode}\"\nstreamIntervalMs = {INTERVAL_MS}\n")
}

/// Writes to message `id` (its send and edits) in order.
fn writes_of(sent: &[SentMessage], id: i64) -> Vec<&SentMessage> {
    sent.iter()
        .filter(|m| m.message_id == id && !m.is_draft())
        .collect()
}

fn assert_spaced(writes: &[&SentMessage]) {
    for w in writes.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(INTERVAL_MS),
            "two writes of message {} only {gap:?} apart",
            w[0].message_id
        );
    }
}

const WORDS: [&str; 12] = [
    "Streaming ",
    "**works**: ",
    "the ",
    "text ",
    "grows ",
    "while ",
    "the ",
    "model ",
    "writes, ",
    "then ",
    "`ends`",
    ".",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_mode_sends_early_edits_an_interval_apart_and_ends_with_the_whole_formatted_text() {
    let s = setup(&streaming("edit")).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    let hi = s.tg.send_dm(42, "alice", "tell me");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    let sends: Vec<_> = sent.iter().filter(|m| m.method == "sendmessage").collect();
    assert_eq!(sends.len(), 1, "one message, sent once: {sent:#?}");
    assert!(
        sends[0].plain_text.len() < WORDS.concat().len(),
        "the first part went out before the model finished: {:?}",
        sends[0].plain_text
    );
    assert!(
        sends[0].reply_to_message_id.is_some(),
        "the first part answers the message"
    );
    let writes = writes_of(&sent, sends[0].message_id);
    assert!(writes.len() >= 2, "edited while the text grew: {sent:#?}");
    assert_spaced(&writes);
    let last = writes.last().unwrap();
    assert_eq!(
        last.plain_text,
        "Streaming works: the text grows while the model writes, then ends."
    );
    assert_eq!(
        last.text,
        "Streaming <b>works</b>: the text grows while the model writes, then <code>ends</code>."
    );
    assert_eq!(last.parse_mode.as_deref(), Some("HTML"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_an_edit_still_ends_with_the_full_text_once() {
    let s = setup(&streaming("edit")).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(100),
        )],
    );
    s.tg.rate_limit_next("editMessageText", 2, 1);
    let hi = s.tg.send_dm(42, "alice", "tell me");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    let sends: Vec<_> = sent.iter().filter(|m| m.method == "sendmessage").collect();
    assert_eq!(sends.len(), 1, "{sent:#?}");
    let writes = writes_of(&sent, sends[0].message_id);
    assert_eq!(
        writes.last().unwrap().plain_text,
        "Streaming works: the text grows while the model writes, then ends."
    );
    assert_eq!(
        s.tg.pending_failures("editMessageText"),
        0,
        "the 429s were hit"
    );
    assert_spaced(&writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_mode_drafts_in_a_dm_then_sends_the_final_message_once() {
    let s = setup(&streaming("draft")).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    let hi = s.tg.send_dm(42, "alice", "tell me");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    let drafts: Vec<_> = sent.iter().filter(|m| m.is_draft()).collect();
    assert!(!drafts.is_empty(), "{sent:#?}");
    let draft_ids: Vec<_> =
        s.tg.calls_of("sendMessageDraft")
            .iter()
            .map(|c| c.param("draft_id").cloned().unwrap())
            .collect();
    assert!(
        draft_ids.windows(2).all(|w| w[0] == w[1]) && draft_ids[0] != serde_json::json!(0),
        "one non-zero draft id per reply: {draft_ids:?}"
    );
    for w in drafts.windows(2) {
        assert!(w[1].at - w[0].at >= Duration::from_millis(INTERVAL_MS));
    }
    let messages: Vec<_> = sent.iter().filter(|m| !m.is_draft()).collect();
    assert_eq!(messages.len(), 1, "no edits, one final message: {sent:#?}");
    assert_eq!(messages[0].method, "sendmessage");
    assert_eq!(
        messages[0].plain_text,
        "Streaming works: the text grows while the model writes, then ends."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_mode_in_a_group_edits_instead() {
    let s = setup(&format!("{}requireMention = false\n", streaming("draft"))).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    let hi =
        s.tg.send_group(-1001234, 42, "alice", "tell me", None, None);
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    assert!(sent.iter().all(|m| !m.is_draft()), "{sent:#?}");
    assert!(sent.iter().any(|m| m.is_edit()), "{sent:#?}");
    assert_eq!(
        sent.last().unwrap().plain_text,
        "Streaming works: the text grows while the model writes, then ends."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_telegram_cannot_parse_is_sent_again_as_plain_text_once() {
    let s = setup("").await; // streaming off: one send per part
    s.llm
        .script("sk-oa", [Behavior::Reply("a **bold** claim".into())]);
    s.tg.fail_next(
        "sendMessage",
        400,
        "Bad Request: can't parse entities: Unsupported start tag \"b\" at byte offset 2",
    );
    let hi = s.tg.send_dm(42, "alice", "hi");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "shown once: {sent:#?}");
    assert_eq!(sent[0].parse_mode, None);
    assert_eq!(sent[0].text, "a bold claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_telegram_cannot_parse_is_made_again_as_plain_text() {
    let s = setup(&streaming("edit")).await;
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(
            &WORDS,
            Duration::from_millis(120),
        )],
    );
    s.tg.fail_next(
        "editMessageText",
        400,
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    );
    let hi = s.tg.send_dm(42, "alice", "tell me");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let refused = s.tg.calls_of("editMessageText");
    let refused = refused
        .iter()
        .find(|c| !c.succeeded())
        .expect("an edit was refused");
    let sent = s.tg.sent_messages();
    let sends = sent.iter().filter(|m| m.method == "sendmessage").count();
    assert_eq!(sends, 1, "the refused edit is not a new message: {sent:#?}");
    let plain = sent
        .iter()
        .find(|m| m.is_edit() && m.parse_mode.is_none())
        .expect("the edit was made again without parse_mode");
    let refused_html = refused.param("text").and_then(|t| t.as_str()).unwrap();
    assert_eq!(
        plain.text,
        remoteclaw::format::telegram_html::plain(refused_html),
        "the same text, formatting removed"
    );
    assert_eq!(
        sent.last().unwrap().plain_text,
        "Streaming works: the text grows while the model writes, then ends."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_from_the_model_arrives_as_telegram_html() {
    let s = setup("").await;
    let reply = "# Title\n\nSome *italic*, ~~gone~~ and a [link](https://example.com/?a=1&b=\"2\").\n\n```rust\nlet x = a < b && c > d;\n```\n\n> quoted <tag>";
    s.llm.script("sk-oa", [Behavior::Reply(reply.into())]);
    let hi = s.tg.send_dm(42, "alice", "format");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    let html = &sent[0].text;
    for want in [
        "<b>Title</b>",
        "<i>italic</i>",
        "<s>gone</s>",
        "<a href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\">link</a>",
        "<pre><code class=\"language-rust\">let x = a &lt; b &amp;&amp; c &gt; d;</code></pre>",
        "<blockquote>quoted &lt;tag&gt;</blockquote>",
    ] {
        assert!(html.contains(want), "{want} missing in {html}");
    }
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
}

/// A long link streaming in at the length limit: its raw Markdown pushes the partial
/// reply into a second message; rendered, the whole reply fits in the first. The second
/// message is removed, so the chat shows the reply once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_streamed_past_the_final_replys_end_is_removed() {
    let s = setup(&streaming("edit")).await;
    let paragraph = format!("{}\n\n", "word ".repeat(199).trim_end());
    let mut words: Vec<String> = vec![paragraph.clone(); 4];
    words.push("More in [the docs](https://docs.example.com/guide/".into());
    words.extend(std::iter::repeat_n("x".repeat(20), 12));
    words.push(").".into());
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    s.llm.script(
        "sk-oa",
        [slow_stream::openai_words(&refs, Duration::from_millis(150))],
    );
    let hi = s.tg.send_dm(42, "alice", "tell me");
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    let sends: Vec<_> = sent.iter().filter(|m| m.method == "sendmessage").collect();
    assert!(
        sends.len() >= 2,
        "the raw link went past the limit while streaming: {:?}",
        sends.iter().map(|m| m.plain_text.len()).collect::<Vec<_>>()
    );
    let first = s.tg.message(42, sends[0].message_id).unwrap();
    let expected = format!("{}More in the docs.", paragraph.repeat(4));
    assert_eq!(
        first["text"].as_str().unwrap().trim_end(),
        expected.trim_end()
    );
    for extra in &sends[1..] {
        assert!(
            s.tg.message(42, extra.message_id).is_none(),
            "message {} still shows {:?}",
            extra.message_id,
            extra.plain_text
        );
    }
    assert_eq!(s.tg.calls_of("deletemessage").len(), sends.len() - 1);
}

/// A command's answer is shown exactly as written: what the user typed comes back as
/// typed (`__x__` is not bold), in every streaming mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_answer_echoes_the_input_as_typed() {
    for mode in ["edit", "off"] {
        let s = setup(&streaming(mode)).await;
        let hi = s.tg.send_dm(42, "alice", "/model __secret__");
        let help = s.tg.send_dm(42, "alice", "/help");
        wait_answered(&s.tg, &inbox(&s.home), &[hi, help]).await;
        let sent = s.tg.sent_messages();
        assert!(
            sent[0].plain_text.contains("\"__secret__\""),
            "{mode}: {:?}",
            sent[0].plain_text
        );
        // `<alias-or-id>` in the help is text, escaped for Telegram's HTML.
        let help = sent.last().unwrap();
        assert!(
            help.plain_text.contains("/model <alias-or-id>@<profileId>"),
            "{mode}: {:?}",
            help.plain_text
        );
        assert!(
            help.text.contains("&lt;alias-or-id&gt;"),
            "{mode}: {:?}",
            help.text
        );
        assert_eq!(s.llm.request_count(), 0);
    }
}

/// A model that answers nothing: the chat says so instead of staying silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_model_reply_is_said_not_swallowed() {
    for mode in ["edit", "off"] {
        let s = setup(&streaming(mode)).await;
        s.llm.script("sk-oa", [Behavior::Reply("  \n ".into())]);
        let hi = s.tg.send_dm(42, "alice", "say nothing");
        wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
        let sent = s.tg.sent_messages();
        assert_eq!(sent.len(), 1, "{mode}: {sent:#?}");
        assert_eq!(
            sent[0].plain_text,
            remoteclaw::channels::stream::EMPTY_REPLY,
            "{mode}"
        );
    }
}

/// `/model opus tell me a joke`: the final message holds the command's answer (as
/// written) and then the model's reply (formatted), as the streamed text did — the
/// last edit does not drop the acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_with_a_message_shows_its_answer_before_the_reply() {
    for mode in ["edit", "off"] {
        let s = setup(&streaming(mode)).await;
        s.llm.set_default(Behavior::Reply("A **joke**.".into()));
        let id = s.tg.send_dm(42, "alice", "/model opus tell me a joke");
        wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
        let sent = s.tg.sent_messages();
        let last = sent.last().unwrap();
        assert_eq!(
            last.plain_text, "Model set to anthropic/claude-opus-4-5 (opus).\n\nA joke.",
            "{mode}: {sent:#?}"
        );
        assert!(last.text.contains("<b>joke</b>"), "{mode}: {}", last.text);
        assert_eq!(s.llm.request_count(), 1);
    }
}
