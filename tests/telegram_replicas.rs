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
    let hook = "\n[channels.telegram.webhook]\nurl = \"https://bot.example.com/tg\"\nsecretToken = \"s3cret_hook\"\n";
    let mut homes = Vec::new();
    for _ in 0..2 {
        let (home, llm) = prepare(&tg, hook).await;
        let mut config = std::fs::read_to_string(home.config_path()).unwrap();
        config.push_str(&format!(
            "\n[session]\nstore = \"redis\"\nredisUrl = \"{}\"\nredisPrefix = \"rc-hook:\"\n",
            redis.url()
        ));
        std::fs::write(home.config_path(), config).unwrap();
        homes.push((home, llm));
    }
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
