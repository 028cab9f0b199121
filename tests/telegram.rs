//! The Telegram channel end to end: the real teloxide client against the loopback fake
//! Bot API, with the fake provider behind it — DMs, pairing, text kept as written,
//! owner-only pins, the model picker, chunked replies, 429 retries and restarts without
//! reprocessing. Groups: `telegram_groups.rs`; delivery under load, crash and shutdown:
//! `telegram_delivery.rs`, `telegram_shutdown.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use crate::telegram_support;

use remoteclaw::channels::telegram;
use remoteclaw::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider};
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;
use telegram_support::{
    Binary, MODELS, OFFSET_KEY, TOKEN, WAIT, config, inbox, prepare, setup, setup_with, start,
    wait_answered,
};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_from_an_allowed_user_is_answered_and_the_menu_registered() {
    let s = setup("").await;
    let hello = s.tg.send_dm(42, "alice", "hello there");
    wait_answered(&s.tg, &inbox(&s.home), &[hello]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, 42);
    assert_eq!(sent[0].text, "fake reply to: hello there");
    assert_eq!(
        sent[0].parse_mode.as_deref(),
        Some("HTML"),
        "the model's Markdown goes as Telegram HTML"
    );
    let names: Vec<String> = s.tg.commands().unwrap()["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap().to_string())
        .collect();
    for n in ["model", "new", "reset", "help"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    assert_eq!(
        s.llm.requests()[0].body["messages"][0]["content"],
        "hello there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_shows_the_typing_indicator_first() {
    let s = setup("").await;
    s.llm.set_latency(telegram::TYPING_AFTER * 4);
    let hello = s.tg.send_dm(42, "alice", "take your time");
    wait_answered(&s.tg, &inbox(&s.home), &[hello]).await;
    let calls = s.tg.calls();
    let typing = calls
        .iter()
        .position(|c| c.method == "sendchataction")
        .expect("typing indicator");
    assert_eq!(calls[typing].body["action"], "typing");
    assert_eq!(calls[typing].body["chat_id"], 42);
    let reply = calls
        .iter()
        .position(|c| c.method == "sendmessage")
        .unwrap();
    assert!(typing < reply, "typing shows before the reply: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sender_gets_a_pairing_code_and_never_reaches_the_model() {
    let s = setup("").await;
    s.tg.send_dm(99, "mallory", "let me in");
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert!(
        sent[0]
            .text
            .contains("remoteclaw pairing approve telegram "),
        "{}",
        sent[0].text
    );
    let code = sent[0]
        .text
        .split("approve telegram ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let again = s.tg.send_dm(99, "mallory", "again?");
    wait_answered(&s.tg, &inbox(&s.home), &[again]).await;
    assert_eq!(s.tg.sent_messages().len(), 1, "at most one code per hour");
    assert_eq!(
        s.llm.request_count(),
        0,
        "unknown senders never reach a model"
    );

    s.app.pairing().approve("telegram", &code).await.unwrap();
    s.tg.send_dm(99, "mallory", "now?");
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    assert_eq!(sent[1].text, "fake reply to: now?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_may_pin_a_profile() {
    let s = setup("").await;
    s.tg.send_dm(43, "bob", "/model opus@anthropic:work");
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert!(
        sent[0]
            .text
            .starts_with("Only owners can pin a credential profile"),
        "{}",
        sent[0].text
    );
    s.tg.send_dm(42, "alice", "/model opus@anthropic:work");
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    assert!(
        sent[1]
            .text
            .contains("Pinned to credential profile anthropic:work"),
        "{}",
        sent[1].text
    );
    let pin = s
        .app
        .sessions
        .store()
        .load("telegram:dm:42", 0)
        .await
        .unwrap()
        .unwrap()
        .pin
        .unwrap();
    assert_eq!(pin.profile, "anthropic:work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_replies_are_chunked_within_telegram_limits() {
    let s = setup("").await;
    let mut long = String::new();
    while long.encode_utf16().count() < 14_000 {
        long.push_str("Ünïcödé 🌍 words and more words.\n```rust\nfn main() {}\n```\n\n");
    }
    s.llm.script("sk-oa", [Behavior::Reply(long.clone())]);
    s.tg.send_dm(42, "alice", "long please");
    let sent = s.tg.wait_for_messages(3, WAIT).await;
    assert!(sent.len() >= 3, "{} parts", sent.len());
    for m in &sent {
        assert!(m.plain_text.encode_utf16().count() <= 4096);
        assert_eq!(m.parse_mode.as_deref(), Some("HTML"), "no part was refused");
        assert_eq!(
            m.text.matches("<pre>").count(),
            m.text.matches("</pre>").count(),
            "code blocks closed in every part: {}",
            m.text
        );
    }
    let shown: String = sent.iter().map(|m| m.plain_text.as_str()).collect();
    assert_eq!(
        shown.matches("fn main() {}").count(),
        long.matches("fn main() {}").count(),
        "no code lost between parts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_sends_are_retried_once_and_sent_exactly_once() {
    let s = setup("").await;
    s.tg.rate_limit_next("sendMessage", 1, 0);
    let hi = s.tg.send_dm(42, "alice", "hi");
    // Count only once the turn is done: its reply sent and the update marked answered,
    // so a late second send would be seen too.
    wait_answered(&s.tg, &inbox(&s.home), &[hi]).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, "fake reply to: hi");
    assert_eq!(
        s.tg.calls_of("sendMessage").len(),
        2,
        "one 429, then one successful send"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_does_not_reprocess_updates() {
    let s = setup("").await;
    let first = s.tg.send_dm(42, "alice", "first");
    s.tg.wait_for_messages(1, WAIT).await;
    let s = s.stop_channel().await;
    assert_eq!(
        inbox(&s.home).offset(OFFSET_KEY).await.unwrap(),
        Some(first + 1),
        "the offset is stored once the reply was sent"
    );
    let polls_before = s.tg.poll_offsets().len();
    // Telegram still offers the update to a bot that does not say where it stopped.
    s.tg.redeliver(first);
    let s = s.restart();
    let second = s.tg.send_dm(42, "alice", "second");
    wait_answered(&s.tg, &inbox(&s.home), &[first, second]).await;
    assert_eq!(
        s.tg.poll_offsets()[polls_before],
        Some(first + 1),
        "the first poll after the restart carries the stored offset"
    );
    let texts: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["fake reply to: first", "fake reply to: second"]);
    assert_eq!(
        s.llm.request_count(),
        2,
        "the first update was not processed again"
    );
    s.stop_channel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mention_stripping_keeps_newlines_and_indentation() {
    let s = setup("").await;
    let bot = s.tg.bot_username().to_string();
    let code = "Please fix:\n\n```rust\nfn main() {\n    let  x = 1;\n\tprintln!(\"{x}\");\n}\n```\nThanks  a lot";
    let dm = s.tg.send_dm(42, "alice", code);
    let group = s.tg.send_group(
        -1001234,
        42,
        "alice",
        &format!("@{bot}  here:\n    indented  line\n\n  - item"),
        None,
        None,
    );
    wait_answered(&s.tg, &inbox(&s.home), &[dm, group]).await;
    let mut seen: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    seen.sort();
    assert_eq!(
        seen,
        [code, "here:\n    indented  line\n\n  - item"],
        "byte for byte, only the mention removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_unreachable_at_start_is_asked_again_until_the_stop() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let llm = FakeProvider::start().await;
    let config = config(
        &llm,
        "openai/gpt-4o-mini",
        "",
        &format!("http://{closed}"),
        &format!("botToken = \"{TOKEN}\"\n"),
    );
    let home = TestHome::new(&config);
    let app = Arc::new(home.app().await);
    let cfg = app.config().channels.telegram.clone().unwrap();
    let (stop, rx) = watch::channel(false);
    let run = tokio::spawn(telegram::run(
        app,
        remoteclaw::config::live::section(cfg),
        Secret::new(TOKEN),
        rx,
    ));
    // Past the first retry (1 s): still running, not stopped by the network error.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!run.is_finished(), "the channel gave up on a network error");
    let _ = stop.send(true);
    let ended = tokio::time::timeout(WAIT, run)
        .await
        .expect("stops when told");
    assert!(ended.unwrap().is_ok());
}

/// A failed `getMe` at start-up (Telegram briefly down) is asked again; the channel then
/// answers, and the log's warning names what failed without the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_get_me_at_start_is_retried_and_the_bot_then_answers() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.fail_next("getMe", 502, "Bad Gateway");
    let (home, _llm) = prepare(&tg, "").await;
    let mut gw = Binary::spawn(&home).await;
    let dm = tg.send_dm(42, "alice", "are you there?");
    wait_answered(&tg, &inbox(&home), &[dm]).await;
    assert_eq!(
        tg.calls_of("getMe").len(),
        2,
        "asked again after the failure"
    );
    gw.signal(rustix::process::Signal::TERM);
    assert!(gw.exit(WAIT).await.success());
    let log = gw.log();
    assert!(log.contains("Telegram getMe failed"), "{log}");
    assert!(log.contains("retrying in 1 s"), "{log}");
    let secret = TOKEN.split(':').nth(1).unwrap();
    assert!(!log.contains(secret), "the token leaked: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_menu_keeps_the_channel_running() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.fail_next("setMyCommands", 400, "Bad Request: BOT_COMMANDS_TOO_MUCH");
    let llm = FakeProvider::start().await;
    let config = config(
        &llm,
        "openai/gpt-4o-mini",
        "",
        &tg.api_url(),
        &format!("botToken = \"{TOKEN}\"\ndmPolicy = \"allowlist\"\nallowFrom = [42]\n"),
    );
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "sk-oa");
    let app = Arc::new(home.app().await);
    let (stop, task) = start(&app);
    let ids = [
        tg.send_dm(77, "stranger", "hello?"),
        tg.send_dm(42, "alice", "hello"),
    ];
    wait_answered(&tg, &inbox(&home), &ids).await;
    let sent = tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].chat_id, 42,
        "allowlist: the stranger gets nothing, not even a pairing code"
    );
    assert!(
        tg.commands().is_none(),
        "no menu was accepted, and none was deleted"
    );
    assert!(tg.calls_of("deleteMyCommands").is_empty());
    let _ = stop.send(true);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_picker_buttons_apply_the_choice_after_rechecking_the_sender() {
    let s = setup("").await;
    s.tg.send_dm(42, "alice", "/model");
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    let data = sent[0].callback_data();
    assert!(
        !data.is_empty(),
        "an inline keyboard: {:?}",
        sent[0].reply_markup
    );
    assert!(
        data.iter().all(|d| d.len() <= 64),
        "callback data fits Telegram's 64 bytes"
    );
    let labels: Vec<String> = sent[0].reply_markup.as_ref().unwrap()["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0]["text"].as_str().unwrap().to_string())
        .collect();
    let opus = labels
        .iter()
        .position(|l| l.starts_with("anthropic/claude-opus-4-5"))
        .expect("opus offered");
    // Another user pressing alice's button gets nothing applied.
    s.tg.press_button(43, 42, sent[0].message_id, &data[opus]);
    s.tg.press_button(42, 42, sent[0].message_id, &data[opus]);
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    assert!(
        sent.last()
            .unwrap()
            .text
            .starts_with("Model set to anthropic/claude-opus-4-5"),
        "{:?}",
        sent.last().unwrap().text
    );
    let model = s
        .app
        .sessions
        .store()
        .load("telegram:dm:42", 0)
        .await
        .unwrap()
        .unwrap()
        .model;
    assert_eq!(model.as_deref(), Some("anthropic/claude-opus-4-5"));
    assert!(
        s.app
            .sessions
            .store()
            .load("telegram:dm:43", 0)
            .await
            .unwrap()
            .is_none_or(|r| r.model.is_none())
    );
    assert!(!s.tg.calls_of("answerCallbackQuery").is_empty());
}

/// The acceptance walk: the real `remoteclaw gateway` binary with a bot token and
/// `allowFrom`, driven through the fake Bot API.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_binary_serves_telegram_end_to_end() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let models = format!("{MODELS}[agents.defaults.models.\"anthropic/claude-sonnet-4-5\"]\n");
    let config = config(
        &llm,
        "anthropic/claude-sonnet-4-5",
        &models,
        &tg.api_url(),
        "allowFrom = [42]\n",
    );
    let mut home = TestHome::new(&config);
    home.set("TELEGRAM_BOT_TOKEN", TOKEN)
        .set("ANTHROPIC_API_KEY", "sk-ant-env");
    home.write("agents/main/agent/auth-profiles.json", r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-work"}}}"#);
    let (mut child, _addr) = support::gateway::spawn_binary(&home).await;
    let steps = [
        ("/model list", "anthropic/claude-opus-4-5 (opus)"),
        (
            "/model opus@anthropic:work",
            "Pinned to credential profile anthropic:work",
        ),
        (
            "what is *rust* _really_ [about]?",
            "fake reply to: what is rust really [about]?",
        ),
        ("/model status", "→ anthropic:work"),
    ];
    for (i, (text, want)) in steps.iter().enumerate() {
        tg.send_dm(42, "alice", text);
        let sent = tg.wait_for_messages(i + 1, WAIT).await;
        let got = &sent.last().unwrap().plain_text;
        assert!(got.contains(want), "{text}: {got}");
    }
    let status = tg.sent_messages().last().unwrap().plain_text.clone();
    assert!(
        status.contains(&llm.anthropic_base()) && !status.contains("sk-ant-work"),
        "{status}"
    );
    assert_eq!(
        llm.requests()[0].key.as_deref(),
        Some("sk-ant-work"),
        "the question used the pinned profile"
    );
    child.start_kill().unwrap();
}

/// The channel alone (no config token, no allowlist) at `tg` with `token`, run as a
/// task; its result says why it stopped.
async fn run_channel(
    tg: &FakeTelegram,
    token: &str,
) -> tokio::task::JoinHandle<Result<(), telegram::TelegramError>> {
    let home = TestHome::new(&format!(
        "[channels.telegram]\nenabled = true\napiRoot = \"{}\"\n",
        tg.api_url()
    ));
    let app = Arc::new(home.app().await);
    let cfg = app.config().channels.telegram.clone().unwrap();
    let token = Secret::new(token);
    tokio::spawn(async move {
        let (_stop, rx) = watch::channel(false);
        let _home = home;
        telegram::run(app, remoteclaw::config::live::section(cfg), token, rx).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_stops_the_channel_with_a_clear_error() {
    let tg = FakeTelegram::start(TOKEN).await;
    let err = run_channel(&tg, "999:WRONG-token")
        .await
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejected the bot token"), "{err}");
    assert!(!err.contains("WRONG-token"), "{err}");
}

/// An update Telegram's JSON parser-refusing text (a lone UTF-16 surrogate escape, a
/// character cut in two) does not stall the channel: teloxide cannot read that batch,
/// the channel reads it update by update, answers both messages (the broken character
/// as U+FFFD) and polls on past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_with_a_lone_surrogate_neither_stalls_the_channel_nor_is_lost() {
    let s = setup("").await;
    s.tg.rewrite_next_updates("CUT", "\\udcff");
    let cut = s.tg.send_dm(42, "alice", "hi CUT");
    let fine = s.tg.send_dm(43, "bob", "second");
    wait_answered(&s.tg, &inbox(&s.home), &[cut, fine]).await;
    let mut seen: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    seen.sort();
    assert_eq!(seen, ["hi \u{fffd}", "second"]);
    // And the channel goes on: a later message is answered too.
    let later = s.tg.send_dm(42, "alice", "still there?");
    wait_answered(&s.tg, &inbox(&s.home), &[later]).await;
}

/// A 429 on `getUpdates` is waited out (its `retry_after`), then the poll goes on and
/// the message sent meanwhile is answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_poll_waits_and_then_answers_what_came_meanwhile() {
    let tg = FakeTelegram::start(TOKEN).await;
    tg.rate_limit_next("getUpdates", 1, 1);
    let s = setup_with(tg, "").await;
    let id = s.tg.send_dm(42, "alice", "still there?");
    wait_answered(&s.tg, &inbox(&s.home), &[id]).await;
    assert_eq!(s.tg.pending_failures("getUpdates"), 0);
    let polls = s.tg.calls_of("getUpdates");
    assert_eq!(polls[0].error_code(), Some(429), "{polls:?}");
    // Answered polls (the last one may still be waiting) all succeeded; the first of
    // them came after the wait Telegram asked for.
    let answered: Vec<_> = polls[1..].iter().filter(|c| c.status != 0).collect();
    assert!(
        !answered.is_empty() && answered.iter().all(|c| c.succeeded()),
        "{polls:?}"
    );
    assert!(
        polls[1].at - polls[0].at >= Duration::from_secs(1),
        "{polls:?}"
    );
    assert_eq!(s.llm.requests().len(), 1);
    assert_eq!(s.tg.sent_messages().len(), 1);
}

/// A token revoked while the channel runs (a later `getUpdates` answers 401) stops the
/// channel with the same clear error as a token refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_while_polling_stops_the_channel_with_a_clear_error() {
    let tg = FakeTelegram::start(TOKEN).await;
    let channel = run_channel(&tg, TOKEN).await;
    // The channel polls; then the token is revoked and a message ends the waiting poll.
    tg.wait_for_calls("getUpdates", 1, WAIT).await;
    tg.fail_next("getUpdates", 401, "Unauthorized");
    tg.send_dm(42, "alice", "hello");
    let err = tokio::time::timeout(WAIT, channel)
        .await
        .expect("the channel stops")
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("rejected the bot token"), "{err}");
    assert_eq!(tg.pending_failures("getUpdates"), 0);
    let polls = tg.calls_of("getUpdates");
    assert!(polls.len() >= 2 && polls[0].succeeded(), "{polls:?}");
}
