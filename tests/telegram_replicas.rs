//! Two `remoteclaw gateway` processes on one Telegram bot token over one Redis (DESIGN
//! §9, issue 13): one holds the poller lease and polls, the other stands by; every
//! message is answered exactly once; when the poller is killed the other takes over
//! within the lease TTL and answers what comes next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::telegram_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::fake_provider::FakeProvider;
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;
use support::redis::RedisServer;
use telegram_support::{Binary, TOKEN, prepare};

/// A replica's home: the shared fake Bot API, its own fake provider, the shared Redis.
async fn replica(tg: &FakeTelegram, redis: &RedisServer) -> (TestHome, FakeProvider) {
    let (home, llm) = prepare(tg, "").await;
    let mut config = std::fs::read_to_string(home.config_path()).unwrap();
    config.push_str(&format!(
        "\n[session]\nstore = \"redis\"\nredisUrl = \"{}\"\nredisPrefix = \"rc-tg:\"\n",
        redis.url()
    ));
    std::fs::write(home.config_path(), config).unwrap();
    (home, llm)
}

/// Two replicas' homes in webhook mode (secret `s3cret_hook`, path `/tg`) over the
/// shared Redis under `prefix`, each with its own fake provider.
async fn webhook_replicas(
    tg: &FakeTelegram,
    redis: &RedisServer,
    prefix: &str,
) -> Vec<(TestHome, FakeProvider)> {
    let hook = "\n[channels.telegram.webhook]\nurl = \"https://bot.example.com/tg\"\nsecretToken = \"s3cret_hook\"\n";
    let mut homes = Vec::new();
    for _ in 0..2 {
        let (home, llm) = prepare(tg, hook).await;
        let mut config = std::fs::read_to_string(home.config_path()).unwrap();
        config.push_str(&format!(
            "\n[session]\nstore = \"redis\"\nredisUrl = \"{}\"\nredisPrefix = \"{prefix}\"\n",
            redis.url()
        ));
        std::fs::write(home.config_path(), config).unwrap();
        homes.push((home, llm));
    }
    homes
}

/// Wait until the shared inbox (under `prefix`) has no update left unanswered.
async fn all_marked_answered(redis: &RedisServer, prefix: &str) {
    let conn = remoteclaw::state::redis::Redis::connect(&redis.url(), prefix)
        .await
        .unwrap();
    let inbox = remoteclaw::state::stores::Stores::redis(conn).inbox;
    let channel = format!("telegram:{}", telegram_support::BOT_ID);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !inbox.pending(&channel).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "answers never marked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many times each reply text was sent.
fn replies(tg: &FakeTelegram) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in tg.sent_messages() {
        if !m.is_edit() && !m.is_draft() {
            *out.entry(m.text.clone()).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_answer_each_message_once_and_hand_polling_over_when_one_dies() {
    let tg = FakeTelegram::start(TOKEN).await;
    let redis = RedisServer::start();
    let (home_a, llm_a) = replica(&tg, &redis).await;
    let (home_b, llm_b) = replica(&tg, &redis).await;
    let mut a = Binary::spawn(&home_a).await;
    let mut b = Binary::spawn(&home_b).await;

    // Two chats (a session queue holds 8 waiting messages besides the one answered).
    for i in 0..10 {
        let (user, name) = if i % 2 == 0 {
            (42, "alice")
        } else {
            (43, "bob")
        };
        tg.send_dm(user, name, &format!("m{i}"));
    }
    tg.wait_for_messages(10, Duration::from_secs(20)).await;
    let sent = replies(&tg);
    for i in 0..10 {
        assert_eq!(
            sent.get(&format!("fake reply to: m{i}")),
            Some(&1),
            "{sent:?}"
        );
    }
    assert_eq!(sent.values().sum::<usize>(), 10, "{sent:?}");
    let (na, nb) = (llm_a.request_count(), llm_b.request_count());
    assert_eq!(na + nb, 10, "each message reached a model once");
    assert!(na == 0 || nb == 0, "one replica polls: {na} + {nb}");
    let (poller, standby, standby_llm) = if na > 0 {
        (&mut a, &b, &llm_b)
    } else {
        (&mut b, &a, &llm_a)
    };
    assert!(standby.log().contains("standing by"), "{}", standby.log());

    // Once every answer is marked in the shared inbox (a reply sent but not yet marked
    // when the process dies is answered again: DESIGN §8 prefers that to losing it)...
    all_marked_answered(&redis, "rc-tg:").await;
    // ...the poller dies (SIGKILL): no goodbye, its lease runs out.
    poller.child.start_kill().unwrap();
    poller.child.wait().await.unwrap();
    let killed = Instant::now();
    for i in 10..13 {
        tg.send_dm(42, "alice", &format!("m{i}"));
    }
    tg.wait_for_messages(13, Duration::from_secs(40)).await;
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "handed over within the 15 s lease TTL (and a standby check): {took:?}"
    );
    standby
        .wait_for_line("this replica polls Telegram now")
        .await;
    let sent = replies(&tg);
    for i in 0..13 {
        assert_eq!(
            sent.get(&format!("fake reply to: m{i}")),
            Some(&1),
            "{sent:?}"
        );
    }
    assert_eq!(standby_llm.request_count(), 3);
}

/// Webhook mode behind a load balancer: the same delivery reaching both replicas (a
/// retry sent elsewhere) is answered once; a wrong secret gets 403 on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_to_either_replica_are_answered_once() {
    let tg = FakeTelegram::start(TOKEN).await;
    let redis = RedisServer::start();
    let homes = webhook_replicas(&tg, &redis, "rc-hook:").await;
    let a = Binary::spawn(&homes[0].0).await;
    let b = Binary::spawn(&homes[1].0).await;
    for r in [&a, &b] {
        r.wait_for_line("Telegram webhook set").await;
    }
    let client = reqwest::Client::new();
    let post = |addr: String, body: serde_json::Value, secret: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("http://{addr}/tg"))
                .header("X-Telegram-Bot-Api-Secret-Token", secret)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        let id = tg.send_dm(42, "alice", &format!("hook {i}"));
        let update = tg
            .updates()
            .into_iter()
            .find(|u| u["update_id"] == serde_json::json!(id))
            .unwrap();
        let (sa, sb) = tokio::join!(
            post(a.addr(), update.clone(), "s3cret_hook"),
            post(b.addr(), update, "s3cret_hook")
        );
        assert_eq!((sa, sb), (200, 200));
    }
    tg.wait_for_messages(5, Duration::from_secs(20)).await;
    // Both answers to each pair of posts came after the shared inbox decided which one
    // is new; once nothing is pending every turn that was started has replied.
    all_marked_answered(&redis, "rc-hook:").await;
    let sent = replies(&tg);
    for i in 0..5 {
        assert_eq!(
            sent.get(&format!("fake reply to: hook {i}")),
            Some(&1),
            "{sent:?}"
        );
    }
    assert_eq!(
        homes[0].1.request_count() + homes[1].1.request_count(),
        5,
        "each delivery reached a model once"
    );
    let id = tg.send_dm(42, "alice", "forged");
    let update = tg
        .updates()
        .into_iter()
        .find(|u| u["update_id"] == serde_json::json!(id))
        .unwrap();
    assert_eq!(post(b.addr(), update, "wrong").await, 403);
}

/// With the Redis store, a message in a turn when its gateway is killed is answered
/// at the next start — once (DESIGN §8), as with the SQLite store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_a_turn_at_a_crash_is_answered_at_the_next_start() {
    let tg = FakeTelegram::start(TOKEN).await;
    let redis = RedisServer::start();
    let (home, llm) = replica(&tg, &redis).await;
    let mut gw = Binary::spawn(&home).await;
    llm.hold();
    tg.send_dm(42, "alice", "in flight");
    telegram_support::eventually(
        "the turn reached the model",
        Duration::from_secs(20),
        || {
            let n = llm.request_count();
            async move { n == 1 }
        },
    )
    .await;
    gw.child.start_kill().unwrap();
    gw.child.wait().await.unwrap();
    llm.release();
    let again = Binary::spawn(&home).await;
    tg.wait_for_messages(1, Duration::from_secs(40)).await;
    all_marked_answered(&redis, "rc-tg:").await;
    assert_eq!(
        replies(&tg).get("fake reply to: in flight"),
        Some(&1),
        "{}",
        again.log()
    );
    assert_eq!(llm.request_count(), 2, "asked again after the restart");
}

/// Webhook mode: a replica that starts while another is answering a delivery leaves
/// it to that replica (no second answer); when a replica dies in a turn, another
/// answers that message once the dead one's claim runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_leaves_a_message_to_the_replica_answering_it_until_that_dies() {
    let tg = FakeTelegram::start(TOKEN).await;
    let redis = RedisServer::start();
    let homes = webhook_replicas(&tg, &redis, "rc-hook2:").await;
    // Two chats: a chat's turns wait for each other across replicas.
    let deliver = |addr: String, user: i64, text: &str| {
        let id = tg.send_dm(user, "someone", text);
        let update = tg
            .updates()
            .into_iter()
            .find(|u| u["update_id"] == serde_json::json!(id))
            .unwrap();
        async move {
            reqwest::Client::new()
                .post(format!("http://{addr}/tg"))
                .header("X-Telegram-Bot-Api-Secret-Token", "s3cret_hook")
                .json(&update)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut a = Binary::spawn(&homes[0].0).await;
    a.wait_for_line("Telegram webhook set").await;
    homes[0].1.hold();
    assert_eq!(deliver(a.addr(), 42, "first").await, 200);
    telegram_support::eventually(
        "A's turn reached its model",
        Duration::from_secs(20),
        || {
            let n = homes[0].1.request_count();
            async move { n == 1 }
        },
    )
    .await;

    // B starts while A answers "first": B leaves it alone.
    let b = Binary::spawn(&homes[1].0).await;
    b.wait_for_line("Telegram webhook set").await;
    assert_eq!(deliver(b.addr(), 43, "second").await, 200);
    let sent = tg.wait_for_messages(1, Duration::from_secs(20)).await;
    assert_eq!(
        homes[1].1.request_count(),
        1,
        "B answered only its own delivery: {sent:?}"
    );
    assert_eq!(replies(&tg).get("fake reply to: second"), Some(&1));

    // A answers "first" when its model does: once, B never took it.
    homes[0].1.release();
    tg.wait_for_messages(2, Duration::from_secs(20)).await;
    all_marked_answered(&redis, "rc-hook2:").await;
    assert_eq!(replies(&tg).get("fake reply to: first"), Some(&1));

    // A dies in a turn: B, already running, answers that message once A's claim runs
    // out (B sweeps for such messages).
    homes[0].1.hold();
    assert_eq!(deliver(a.addr(), 42, "third").await, 200);
    telegram_support::eventually(
        "A's turn reached its model",
        Duration::from_secs(20),
        || {
            let n = homes[0].1.request_count();
            async move { n == 2 }
        },
    )
    .await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    homes[0].1.release();
    tg.wait_for_messages(3, Duration::from_secs(60)).await;
    all_marked_answered(&redis, "rc-hook2:").await;
    let sent = replies(&tg);
    assert_eq!(sent.get("fake reply to: third"), Some(&1), "{sent:?}");
    assert_eq!(sent.values().sum::<usize>(), 3, "{sent:?}");
    assert_eq!(homes[1].1.request_count(), 2, "B answered second and third");
}
