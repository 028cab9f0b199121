//! Shutdown and restart: a turn in flight when shutdown is signalled still posts its
//! reply before `run` returns; a message that arrives while draining, or one cut off by
//! a crash, is answered at the next start, and only once.

use super::*;
use remoteclaw::session::BUSY_REPLY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_turn_still_posts_the_reply_then_run_returns() {
    let s = setup().await;
    // Hold the model's answer long enough to signal shutdown mid-turn.
    s.llm.set_latency(Duration::from_secs(2));
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "long question", false);
    let llm = &s.llm;
    tokio::time::timeout(WAIT, async {
        while llm.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the turn reached the model");
    assert!(
        contents(&s.dc, DM_CHANNEL).is_empty(),
        "the turn is still running"
    );
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: long question"],
        "the reply was posted before run() returned"
    );
}

/// Probe with slash commands (in a guild channel, whose session is free) until one is
/// turned away because the channel is shutting down.
async fn wait_until_draining(s: &Setup) {
    for _ in 0..100 {
        let (iid, _) =
            s.dc.send_slash_command(Some(GUILD), GUILD_CHANNEL, OWNER, "help", json!(null));
        let calls = s.dc.wait_for_interaction(iid, 1, WAIT).await;
        if calls[0].content().is_some_and(|c| c.contains("restarting")) {
            assert!(calls[0].is_ephemeral());
            return;
        }
    }
    panic!("the channel never started draining");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_arriving_while_draining_is_answered_at_the_next_start() {
    let s = setup().await;
    s.llm.hold();
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "first", false);
    while s.llm.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.channel.signal_stop();
    wait_until_draining(&s).await;
    // Arrives while the first turn drains: not answered by this run.
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "second", false);
    assert!(s.dc.wait_delivered(WAIT).await);
    s.llm.release();
    let s = s.finish().await;
    assert_eq!(contents(&s.dc, DM_CHANNEL), ["fake reply to: first"]);
    assert_eq!(s.llm.request_count(), 1);

    let s = s.restart().await;
    s.dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: first", "fake reply to: second"],
        "answered at the next start, and the first one not again"
    );
    assert_eq!(s.llm.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_off_by_a_crash_is_answered_at_the_next_start() {
    // The first "process": its own runtime, dropped mid-turn like a SIGKILL.
    let (dc, llm, home, crashed, _app) = crashable().await;
    llm.set_latency(Duration::from_secs(600));
    dc.send_message(DM_CHANNEL, None, OWNER, "alice", "are you there?", false);
    while llm.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crashed.shutdown_background();
    assert!(dc.channel_messages(DM_CHANNEL).is_empty());

    // The next start answers it, once.
    llm.set_latency(Duration::ZERO);
    let channel = run_channel(Arc::new(home.app().await), &dc).await;
    assert!(dc.wait_readies(2, WAIT).await);
    dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    channel.stop_and_wait().await;
    assert_eq!(contents(&dc, DM_CHANNEL), ["fake reply to: are you there?"]);
    assert_eq!(llm.request_count(), 2, "the cut-off turn, then the answer");
}

/// A message waiting for its turn behind one in flight is recorded before it waits:
/// cut off by a crash, both are answered at the next start, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_waiting_its_turn_at_a_crash_is_answered_at_the_next_start() {
    let (dc, llm, home, crashed, app) = crashable().await;
    llm.set_latency(Duration::from_secs(600));
    dc.send_message(DM_CHANNEL, None, OWNER, "alice", "first", false);
    while llm.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = dc.send_message(DM_CHANNEL, None, OWNER, "alice", "second", false);
    let inbox = app.inbox();
    let deadline = std::time::Instant::now() + WAIT;
    while !inbox
        .pending("discord")
        .await
        .unwrap()
        .iter()
        .any(|p| p.id == second.to_string())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiting message was recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crashed.shutdown_background();

    llm.set_latency(Duration::ZERO);
    let channel = run_channel(Arc::new(home.app().await), &dc).await;
    dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    channel.stop_and_wait().await;
    assert_eq!(
        contents(&dc, DM_CHANNEL),
        ["fake reply to: first", "fake reply to: second"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_queue_gets_the_busy_reply_at_once() {
    let s = setup().await;
    // The first message holds the session in a model call; the ones behind it are
    // `/model` directives, answered without the model as soon as their turn comes.
    s.llm.hold();
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "m0", false);
    while s.llm.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    const MORE: usize = 11;
    for _ in 0..MORE {
        s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "/model", false);
    }
    // The busy replies come while the first turn still holds the session: the queue
    // holds 8 at most, so at least 3 of the 11 get one.
    let first = s.dc.wait_for_channel_messages(DM_CHANNEL, 3, WAIT).await;
    assert!(
        first.iter().all(|m| m["content"] == BUSY_REPLY),
        "the busy reply did not wait: {first:?}"
    );
    s.llm.release();
    s.dc.wait_for_channel_messages(DM_CHANNEL, MORE + 1, WAIT)
        .await;
    let s = s.finish().await;
    let all = contents(&s.dc, DM_CHANNEL);
    assert_eq!(all.len(), MORE + 1, "every message got one reply: {all:?}");
    assert_eq!(all.iter().filter(|t| *t == "fake reply to: m0").count(), 1);
    let queued = all
        .iter()
        .filter(|t| *t != BUSY_REPLY && *t != "fake reply to: m0")
        .count();
    assert!(
        (7..=8).contains(&queued),
        "a queue of 8 at most besides the running one: {all:?}"
    );
    assert!(all.iter().filter(|t| *t == BUSY_REPLY).count() >= 3);
    assert_eq!(s.llm.request_count(), 1);
}

/// A home whose Discord channel points at `dc`, the channel not started yet.
async fn unstarted(dc: &FakeDiscord, llm: &FakeProvider) -> (TestHome, Arc<remoteclaw::app::App>) {
    let mut home = TestHome::new(&config(
        llm,
        "openai/gpt-4o-mini",
        "[agents.defaults.models.\"openai/gpt-4o-mini\"]\n",
        &dc.api_base(),
        &default_body(),
    ));
    home.set("OPENAI_API_KEY", "sk-oa");
    let app = Arc::new(home.app().await);
    (home, app)
}

/// Discord briefly unreachable at start-up (a 502 on `GET /gateway`, which serenity
/// answers by falling back to discord.com's gateway): asked again after a pause, then
/// the channel connects to the gateway this `apiBase` names and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gateway_lookup_at_start_is_retried_and_the_bot_then_answers() {
    let dc = FakeDiscord::start(TOKEN).await;
    dc.fail_next(
        "/gateway",
        502,
        json!({"message": "Bad Gateway", "code": 0}),
    );
    let llm = FakeProvider::start().await;
    let (_home, app) = unstarted(&dc, &llm).await;
    let channel = run_channel(app, &dc).await;
    let lookups = dc
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/gateway"))
        .count();
    assert!(lookups >= 2, "asked again: {lookups}");
    dc.register_channel(DM_CHANNEL, None, OWNER);
    dc.send_message(DM_CHANNEL, None, OWNER, "alice", "are you there?", false);
    dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    channel.stop_and_wait().await;
    assert_eq!(contents(&dc, DM_CHANNEL), ["fake reply to: are you there?"]);
}

/// A refused token is not retried: the channel stops with a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_at_start_stops_the_channel_with_the_reason() {
    let dc = FakeDiscord::start(TOKEN).await;
    // Both lookups: serenity's own while the client is built, then the channel's.
    for _ in 0..2 {
        dc.fail_next(
            "/gateway",
            401,
            json!({"message": "401: Unauthorized", "code": 0}),
        );
    }
    let llm = FakeProvider::start().await;
    let (_home, app) = unstarted(&dc, &llm).await;
    let cfg = app.config().channels.discord.clone().unwrap();
    let (_stop, rx) = watch::channel(false);
    let err = tokio::time::timeout(
        WAIT,
        discord::run(
            app,
            remoteclaw::config::live::section(cfg),
            Secret::new(TOKEN),
            rx,
        ),
    )
    .await
    .expect("not retried")
    .expect_err("the channel stops");
    let text = err.to_string();
    assert!(text.contains("refused the bot token (401)"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

/// A DM set-up whose channel runs on a runtime of its own (its "process"), to be dropped
/// mid-turn like a SIGKILL (`shutdown_background`); returned once the client is READY.
async fn crashable() -> (
    FakeDiscord,
    FakeProvider,
    TestHome,
    tokio::runtime::Runtime,
    Arc<remoteclaw::app::App>,
) {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let mut home = TestHome::new(&config(
        &llm,
        "openai/gpt-4o-mini",
        "",
        &dc.api_base(),
        &default_body(),
    ));
    home.set("OPENAI_API_KEY", "sk-oa");
    dc.register_channel(DM_CHANNEL, None, OWNER);
    let crashed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = Arc::new(home.app().await);
    let cfg = app.config().channels.discord.clone().unwrap();
    let (stop, rx) = watch::channel(false);
    let run = discord::run(
        app.clone(),
        remoteclaw::config::live::section(cfg),
        Secret::new(TOKEN),
        rx,
    );
    crashed.spawn(async move {
        // Never signalled: the "process" ends by being dropped.
        let _stop = stop;
        let _ = run.await;
    });
    assert!(dc.wait_ready(WAIT).await);
    (dc, llm, home, crashed, app)
}
