//! Acceptance (issue 10): the real `remoteclaw gateway` binary serving Telegram through
//! the fake Bot API, stopped while 20 turns are in flight — by SIGTERM (every reply is
//! delivered, the process exits within `gateway.shutdownGraceSecs`, a restart answers
//! nothing twice) or by SIGKILL (after the restart every message is answered exactly
//! once). Conditions are polled with deadlines; no sleep decides anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::telegram_support;

use rustix::process::Signal;
use std::collections::BTreeMap;
use std::time::Duration;
use support::fake_provider::FakeProvider;
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;
use telegram_support::{Binary, TOKEN, WAIT, config, eventually, inbox, wait_answered};

const CHATS: i64 = 20;
const GRACE_SECS: u64 = 10;

/// Users 1..=20 may talk; the gateway drains for at most `GRACE_SECS`.
fn home(tg: &FakeTelegram, llm: &FakeProvider) -> TestHome {
    let users: Vec<String> = (1..=CHATS).map(|u| u.to_string()).collect();
    let mut c = config(
        llm,
        "openai/gpt-4o-mini",
        "",
        &tg.api_url(),
        &format!(
            "botToken = \"{TOKEN}\"\ndmPolicy = \"allowlist\"\nallowFrom = [{}]\n",
            users.join(", ")
        ),
    );
    c.push_str(&format!("[gateway]\nshutdownGraceSecs = {GRACE_SECS}\n"));
    let mut home = TestHome::new(&c);
    home.set("OPENAI_API_KEY", "sk-oa");
    home
}

fn ask(tg: &FakeTelegram, users: std::ops::RangeInclusive<i64>) -> Vec<i64> {
    users
        .map(|u| tg.send_dm(u, &format!("user{u}"), &format!("question {u}")))
        .collect()
}

/// The replies each chat got, in order.
fn replies(tg: &FakeTelegram) -> BTreeMap<i64, Vec<String>> {
    let mut by_chat: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for m in tg.sent_messages() {
        by_chat.entry(m.chat_id).or_default().push(m.text);
    }
    by_chat
}

/// Every chat got exactly the answer to its question (and `extra` for chat 1).
fn assert_each_answered_once(tg: &FakeTelegram, extra: &[&str]) {
    let by_chat = replies(tg);
    for u in 1..=CHATS {
        let mut want = vec![format!("fake reply to: question {u}")];
        if u == 1 {
            want.extend(extra.iter().map(|e| format!("fake reply to: {e}")));
        }
        assert_eq!(by_chat.get(&u), Some(&want), "chat {u}: {by_chat:?}");
    }
    assert_eq!(by_chat.len(), usize::try_from(CHATS).unwrap());
}

async fn wait_at_model(llm: &FakeProvider, n: usize) {
    eventually("turns are at the model", WAIT, move || async move {
        llm.request_count() >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_20_turns_delivers_every_reply_and_a_restart_answers_nothing_twice() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let home = home(&tg, &llm);
    let mut gw = Binary::spawn(&home).await;
    // The model holds every reply until after the SIGTERM.
    llm.hold();
    let ids = ask(&tg, 1..=CHATS);
    wait_at_model(&llm, 20).await;
    assert!(
        tg.sent_messages().is_empty(),
        "the 20 turns are still in flight at the SIGTERM"
    );
    gw.signal(Signal::TERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    llm.release();
    let status = gw.exit(Duration::from_secs(GRACE_SECS + 20)).await;
    assert!(status.success(), "{status:?}\n{}", gw.log());
    assert!(
        !gw.log().contains("ran out"),
        "drained within the grace period:\n{}",
        gw.log()
    );
    assert_each_answered_once(&tg, &[]);
    assert!(
        gw.log()
            .contains("Telegram channel stopped taking messages")
    );

    // Restart: nothing is answered again, and polling resumes after the last update.
    llm.set_latency(Duration::ZERO);
    let polls_before = tg.poll_offsets().len();
    let mut gw = Binary::spawn(&home).await;
    let sentinel = tg.send_dm(1, "user1", "sentinel");
    wait_answered(&tg, &inbox(&home), &[sentinel]).await;
    assert_eq!(
        tg.poll_offsets()[polls_before],
        Some(ids.iter().max().unwrap() + 1),
        "the offset was stored after the replies"
    );
    assert_each_answered_once(&tg, &["sentinel"]);
    assert_eq!(llm.request_count(), 21);
    gw.signal(Signal::TERM);
    assert!(
        gw.exit(Duration::from_secs(GRACE_SECS + 20))
            .await
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_turns_then_a_restart_answers_every_message_exactly_once() {
    let tg = FakeTelegram::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let home = home(&tg, &llm);
    let mut gw = Binary::spawn(&home).await;
    // Ten answered before the crash…
    let early = ask(&tg, 1..=10);
    wait_answered(&tg, &inbox(&home), &early).await;
    // …and ten in flight when it comes, already acknowledged to Telegram.
    llm.set_latency(Duration::from_secs(600));
    let late = ask(&tg, 11..=CHATS);
    wait_at_model(&llm, 20).await;
    let last = *late.iter().max().unwrap();
    let tg_ref = &tg;
    eventually(
        "the late updates are acknowledged",
        WAIT,
        move || async move { tg_ref.poll_offsets().iter().flatten().any(|o| *o > last) },
    )
    .await;
    gw.signal(Signal::KILL);
    gw.exit(WAIT).await;
    assert_eq!(tg.sent_messages().len(), 10);
    assert_eq!(tg.pending_updates(), 0, "Telegram will not send them again");

    llm.set_latency(Duration::ZERO);
    let mut gw = Binary::spawn(&home).await;
    wait_answered(&tg, &inbox(&home), &late).await;
    let sentinel = tg.send_dm(1, "user1", "sentinel");
    wait_answered(&tg, &inbox(&home), &[sentinel]).await;
    assert_each_answered_once(&tg, &["sentinel"]);
    gw.signal(Signal::TERM);
    assert!(
        gw.exit(Duration::from_secs(GRACE_SECS + 20))
            .await
            .success()
    );
}
