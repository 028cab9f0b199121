//! Shard ranges (DESIGN §9, `shardCount` + `shards`): each process identifies only its
//! shards, gets the events Discord routes to them (a guild's on `(guild_id >> 22) %
//! shardCount`, DMs on shard 0) and answers them; a later process waits its turn to
//! identify as the bot's `max_concurrency` says. Without the keys the client starts as
//! it always did.

use super::*;
use serde_json::Value;

/// A guild whose events Discord delivers on shard 1 of 2 (`(id >> 22) % 2 == 1`).
const GUILD_ON_SHARD_1: u64 = 1_100_000_000_000_000_111;
const CHANNEL_ON_SHARD_1: u64 = 6101;

/// A home whose `[channels.discord]` runs `shards` of 2 and whose OpenAI key is `key`,
/// so a reply tells which process wrote it.
fn sharded_home(dc: &FakeDiscord, llm: &FakeProvider, shards: [u32; 2], key: &str) -> TestHome {
    let body = format!(
        "{}shardCount = 2\nshards = [{}, {}]\n",
        sharded_body(),
        shards[0],
        shards[1]
    );
    let mut home = TestHome::new(&config(
        llm,
        "openai/gpt-4o-mini",
        "",
        &dc.api_base(),
        &body,
    ));
    home.set("DISCORD_BOT_TOKEN", TOKEN)
        .set("OPENAI_API_KEY", key);
    home
}

fn sharded_body() -> String {
    format!(
        "guilds = [\"{GUILD}\", \"{GUILD_ON_SHARD_1}\"]\nallowFrom = [\"{OWNER}\", \"{MEMBER}\"]\nowners = [\"{OWNER}\"]\n"
    )
}

/// The `shard` fields of every Identify, sorted.
fn identified_shards(dc: &FakeDiscord) -> Vec<Value> {
    let mut shards = dc.identify_shards();
    shards.sort_by_key(|s| s.to_string());
    shards
}

fn message_ids(dispatches: &[Value]) -> Vec<String> {
    dispatches
        .iter()
        .filter(|d| d["t"] == "MESSAGE_CREATE")
        .map(|d| d["d"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Two real `remoteclaw gateway` processes, shards [0, 0] and [1, 1] of 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_each_run_and_answer_their_own_shard() {
    let dc = FakeDiscord::start(TOKEN).await;
    // Two buckets: the processes may identify side by side.
    dc.set_max_concurrency(2);
    let llm = FakeProvider::start().await;
    let home0 = sharded_home(&dc, &llm, [0, 0], "sk-shard0");
    let home1 = sharded_home(&dc, &llm, [1, 1], "sk-shard1");
    let (mut p0, _) = support::gateway::spawn_binary(&home0).await;
    let (mut p1, _) = support::gateway::spawn_binary(&home1).await;
    assert!(dc.wait_readies(2, WAIT).await, "both processes got READY");
    assert_eq!(
        identified_shards(&dc),
        [json!([0, 2]), json!([1, 2])],
        "each process identified its one shard, once"
    );

    dc.register_channel(GUILD_CHANNEL, Some(GUILD), 0);
    dc.register_channel(CHANNEL_ON_SHARD_1, Some(GUILD_ON_SHARD_1), 0);
    dc.register_channel(DM_CHANNEL, None, OWNER);

    // A guild on shard 1: delivered on shard 1's connection, answered by its process.
    let on_1 = dc.send_message(
        CHANNEL_ON_SHARD_1,
        Some(GUILD_ON_SHARD_1),
        MEMBER,
        "bob",
        "who holds shard one?",
        true,
    );
    let sent = dc
        .wait_for_channel_messages(CHANNEL_ON_SHARD_1, 1, WAIT)
        .await;
    assert_eq!(sent[0]["content"], "fake reply to: who holds shard one?");
    assert_eq!(
        llm.requests()
            .iter()
            .map(|r| r.key.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["sk-shard1"],
        "the process running shard 1 answered"
    );
    assert_eq!(
        message_ids(&dc.dispatched_on([1, 2])),
        [on_1.to_string()],
        "the message went out on shard 1's connection"
    );
    assert!(message_ids(&dc.dispatched_on([0, 2])).is_empty());

    // A guild on shard 0, and a DM (Discord sends DMs on shard 0 only).
    dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        MEMBER,
        "bob",
        "and shard zero?",
        true,
    );
    dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    dc.send_message(DM_CHANNEL, None, OWNER, "alice", "a direct message", false);
    let dm = dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(dm[0]["content"], "fake reply to: a direct message");
    assert_eq!(
        contents(&dc, GUILD_CHANNEL),
        ["fake reply to: and shard zero?"]
    );
    assert_eq!(llm.requests_for_key("sk-shard0").len(), 2);
    assert_eq!(llm.requests_for_key("sk-shard1").len(), 1);
    assert_eq!(message_ids(&dc.dispatched_on([0, 2])).len(), 2);

    // Each process registered the slash commands once (its first shard's READY).
    assert_eq!(
        dc.wait_for_calls("PUT", &format!("/guilds/{GUILD}/commands"), 2, WAIT)
            .await
            .len(),
        2
    );
    p0.start_kill().unwrap();
    p1.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_keys_the_one_shard_identifies_as_0_of_1() {
    let s = setup().await;
    assert_eq!(s.dc.identify_shards(), [json!([0, 1])]);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "hi", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert!(
        s.dc.calls_matching("GET", "/gateway/bot").is_empty(),
        "no sharded start: no question about session limits"
    );
    assert_eq!(s.dc.identifies(), 1);
}

/// One bucket (`max_concurrency` = 1): the process running shard 1 identifies no
/// sooner than 5 s after it learnt that, and shard 0's process does not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_bucket_the_later_shard_waits_its_turn() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let home0 = sharded_home(&dc, &llm, [0, 0], "sk-shard0");
    let home1 = sharded_home(&dc, &llm, [1, 1], "sk-shard1");
    let started = std::time::Instant::now();
    let c1 = Running::start(Arc::new(home1.app().await));
    let c0 = Running::start(Arc::new(home0.app().await));
    assert!(dc.wait_readies(2, WAIT).await, "both shards got READY");
    let log = dc.identify_log();
    let at = |shard: Value| log.iter().find(|r| r.shard == shard).map(|r| r.at).unwrap();
    let asked = dc.calls_matching("GET", "/gateway/bot");
    assert_eq!(
        asked.len(),
        1,
        "only the process that may have to wait asks"
    );
    assert_eq!(
        asked[0].response["session_start_limit"]["max_concurrency"],
        1
    );
    assert!(
        at(json!([1, 2])).duration_since(asked[0].at) >= Duration::from_secs(5),
        "shard 1 waited 5 s for its turn"
    );
    assert!(
        at(json!([0, 2])).duration_since(started) < Duration::from_secs(5),
        "shard 0 did not wait"
    );
    c0.stop_and_wait().await;
    c1.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_waiting_to_identify_returns_at_once() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let home1 = sharded_home(&dc, &llm, [1, 1], "sk-shard1");
    let c1 = Running::start(Arc::new(home1.app().await));
    let asked = dc.wait_for_calls("GET", "/gateway/bot", 1, WAIT).await;
    c1.stop_and_wait().await;
    // Waiting it out would end 5 s after the ask at the earliest.
    let took = asked[0].at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "run returned without waiting out the 5 s: {took:?}"
    );
    assert_eq!(dc.identifies(), 0, "and never identified");
}
