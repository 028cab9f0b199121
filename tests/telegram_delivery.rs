//! Telegram delivery (DESIGN §8): bounded session queues with a busy reply, every
//! message recorded before it is acknowledged and answered exactly once — across a
//! clean stop, a crash and a redelivery — the update offset stored only after the
//! replies, shutdown that waits for the turns in flight, and no SQLite wait on the
//! runtime threads. In-process, against the fake Bot API and the fake provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::telegram_support;

use remoteclaw::app::App;
use remoteclaw::channels::telegram;
use remoteclaw::secret::Secret;
use remoteclaw::session::BUSY_REPLY;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::fake_provider::Behavior;
use support::fake_telegram::FakeTelegram;
use telegram_support::{
    CHANNEL, OFFSET_KEY, TOKEN, WAIT, eventually, inbox, prepare, setup, start, wait_answered,
};
use tokio::sync::watch;

/// Wait until a poll acknowledged (and so the channel recorded) update `id`.
async fn wait_acknowledged(tg: &FakeTelegram, id: i64) {
    eventually("the update is acknowledged", WAIT, move || async move {
        tg.poll_offsets().iter().flatten().any(|o| *o > id)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_queue_gets_a_busy_reply_at_once() {
    let s = setup("").await;
    s.llm.script("sk-oa", [Behavior::Stall]);
    let first = s.tg.send_dm(42, "alice", "m0");
    let llm = &s.llm;
    eventually("the first turn is at the model", WAIT, move || async move {
        llm.request_count() == 1
    })
    .await;
    let queued: Vec<i64> = (1..=9)
        .map(|i| s.tg.send_dm(42, "alice", &format!("m{i}")))
        .collect();
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, BUSY_REPLY);
    assert_eq!(
        sent[0].reply_to_message_id,
        s.tg.message_id_of(queued[8]),
        "the ninth waiting message is the one refused"
    );
    let inbox = inbox(&s.home);
    wait_answered(&s.tg, &inbox, &[queued[8]]).await;
    let mut pending: Vec<i64> = inbox
        .pending(CHANNEL)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id.parse().unwrap())
        .collect();
    pending.sort_unstable();
    let mut waiting = vec![first];
    waiting.extend(&queued[..8]);
    assert_eq!(
        pending, waiting,
        "the one answering and 8 waiting stay queued"
    );
    assert_eq!(s.llm.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offset_is_stored_only_after_the_reply_is_sent() {
    let s = setup("").await;
    s.llm.script("sk-oa", [Behavior::Stall]);
    let held = s.tg.send_dm(42, "alice", "slow");
    wait_acknowledged(&s.tg, held).await;
    let inbox = inbox(&s.home);
    let stored = inbox.offset(OFFSET_KEY).await.unwrap();
    assert!(
        stored.is_none_or(|o| o <= held),
        "stored {stored:?} passes update {held}, whose reply was not sent"
    );
    // Another session answered meanwhile: the offset still does not pass `held`.
    let other = s.tg.send_dm(43, "bob", "quick");
    wait_answered(&s.tg, &inbox, &[other]).await;
    let later = s.tg.send_dm(43, "bob", "again");
    wait_answered(&s.tg, &inbox, &[later]).await;
    assert_eq!(inbox.offset(OFFSET_KEY).await.unwrap(), Some(held));
    assert!(s.tg.sent_messages().iter().all(|m| m.chat_id == 43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_are_answered_after_a_crash() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (home, llm) = prepare(&tg, "").await;
    llm.script("sk-oa", [Behavior::Stall, Behavior::Stall]);
    // The first run lives on a runtime of its own, so it can die mid-turn.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env = home.env_map();
    doomed.spawn(async move {
        let app = Arc::new(App::load(env, None).await.unwrap());
        let cfg = app.config().channels.telegram.clone().unwrap();
        let (stop, rx) = watch::channel(false);
        let _ = telegram::run(
            app,
            remoteclaw::config::live::section(cfg),
            Secret::new(TOKEN),
            rx,
        )
        .await;
        drop(stop);
    });
    let a = tg.send_dm(42, "alice", "first");
    let b = tg.send_dm(43, "bob", "second");
    let c = tg.send_dm(42, "alice", "third"); // waits behind "first"
    let llm_ref = &llm;
    eventually("both turns are at the model", WAIT, move || async move {
        llm_ref.request_count() == 2
    })
    .await;
    wait_acknowledged(&tg, c).await;
    doomed.shutdown_background(); // the crash: no drain, no reply
    assert!(tg.sent_messages().is_empty());
    assert_eq!(tg.pending_updates(), 0, "Telegram will not send them again");

    let app = Arc::new(home.app().await);
    let (stop, task) = start(&app);
    wait_answered(&tg, &inbox(&home), &[a, b, c]).await;
    let to = |chat: i64| -> Vec<String> {
        let sent = tg.sent_messages().into_iter();
        sent.filter(|m| m.chat_id == chat).map(|m| m.text).collect()
    };
    assert_eq!(
        to(42),
        ["fake reply to: first", "fake reply to: third"],
        "in the order they were sent"
    );
    assert_eq!(to(43), ["fake reply to: second"]);
    let _ = stop.send(true);
    task.await.unwrap();
    assert_eq!(tg.sent_messages().len(), 3, "each answered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_turns_in_flight_and_their_replies() {
    let s = setup("").await;
    s.llm.hold();
    let one = s.tg.send_dm(42, "alice", "one");
    let queued = s.tg.send_dm(42, "alice", "three");
    let two = s.tg.send_dm(43, "bob", "two");
    let llm = &s.llm;
    eventually("two turns are at the model", WAIT, move || async move {
        llm.request_count() == 2
    })
    .await;
    wait_acknowledged(&s.tg, two).await;
    assert!(
        s.tg.sent_messages().is_empty(),
        "the turns are still running"
    );
    // Stop as the gateway does; the model answers only once the stop is under way.
    let mut s = s;
    let _ = s.stop.send(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.llm.release();
    (&mut s.task).await.unwrap();
    let mut texts: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "fake reply to: one",
            "fake reply to: three",
            "fake reply to: two"
        ],
        "sent before the channel returned, the queued one too"
    );
    let inbox = inbox(&s.home);
    assert!(inbox.pending(CHANNEL).await.unwrap().is_empty());
    assert_eq!(
        inbox.offset(OFFSET_KEY).await.unwrap(),
        Some(one.max(queued).max(two) + 1),
        "the offset is stored after the replies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_update_is_never_answered_twice() {
    let s = setup("").await;
    let hello = s.tg.send_dm(42, "alice", "hello");
    let menu = s.tg.send_dm(42, "alice", "/model");
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    let picker = sent.iter().find(|m| !m.callback_data().is_empty()).unwrap();
    let press =
        s.tg.press_button(42, 42, picker.message_id, &picker.callback_data()[0]);
    wait_answered(&s.tg, &inbox(&s.home), &[hello, menu, press]).await;
    let before = s.tg.sent_messages().len();
    assert_eq!(before, 3, "reply, picker, choice");
    let s = s.stop_channel().await;
    // As after a crash before the next poll acknowledged them: Telegram offers them
    // again from the stored offset.
    inbox(&s.home).set_offset(OFFSET_KEY, hello).await.unwrap();
    for id in [hello, menu, press] {
        assert!(s.tg.redeliver(id));
    }
    let s = s.restart();
    let sentinel = s.tg.send_dm(43, "bob", "sentinel");
    wait_answered(&s.tg, &inbox(&s.home), &[hello, menu, press, sentinel]).await;
    let after: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert_eq!(after[before], "fake reply to: sentinel");
    assert_eq!(
        s.llm.request_count(),
        2,
        "hello and the sentinel, once each"
    );
    assert_eq!(s.tg.calls_of("answerCallbackQuery").len(), 1);
    s.stop_channel().await;
}

/// Another process holds a write transaction on state.db: the channel's store calls
/// wait for it on the blocking pool, never on a runtime thread — on this one-thread
/// runtime a blocked thread would also stop the test from releasing the lock.
#[tokio::test(flavor = "current_thread")]
async fn a_write_locked_state_db_does_not_stall_the_telegram_runtime() {
    let s = setup("").await;
    let first = s.tg.send_dm(42, "alice", "before");
    wait_answered(&s.tg, &inbox(&s.home), &[first]).await;

    let path = s.home.state_dir().join("state.db");
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let released_in_time = Arc::new(AtomicBool::new(false));
    let flag = released_in_time.clone();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let _ = locked_tx.send(());
        // The state db's busy timeout is 5 s: a runtime thread stuck in it could
        // not release us within 4.5 s.
        let on_time = release_rx.recv_timeout(Duration::from_millis(4500)).is_ok();
        flag.store(on_time, Ordering::SeqCst);
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.await.unwrap();
    let during = s.tg.send_dm(42, "alice", "during");
    s.tg.wait_for_calls("getUpdates", 1, WAIT).await;
    let tg = &s.tg;
    eventually(
        "the update was handed to the channel",
        WAIT,
        move || async move {
            tg.calls_of("getUpdates")
                .iter()
                .any(|c| c.response.to_string().contains(&format!("{during}")))
        },
    )
    .await;
    // Let the channel reach its store call, then release from this runtime.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = release_tx.send(());
    tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();
    assert!(
        released_in_time.load(Ordering::SeqCst),
        "the runtime was stalled while state.db was locked"
    );
    wait_answered(&s.tg, &inbox(&s.home), &[during]).await;
    assert_eq!(
        s.tg.sent_messages().last().unwrap().text,
        "fake reply to: during"
    );
}
