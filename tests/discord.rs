//! The Discord channel: the real serenity client (REST through `apiBase`, ratelimiter
//! off, gateway websocket) against the loopback fake Discord, with the fake provider.
//! Hardening flows (drain, who may talk in guilds, 429s, answered marks, shard ranges)
//! live in the submodules under `tests/discord/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

#[path = "discord/access.rs"]
mod access;
#[path = "discord/drain.rs"]
mod drain;
#[path = "discord/harness.rs"]
pub(crate) mod harness;
#[path = "discord/inbox.rs"]
mod inbox;
#[path = "discord/ordering.rs"]
mod ordering;
#[path = "discord/rate_limits.rs"]
mod rate_limits;
#[path = "discord/shards.rs"]
mod shards;
#[path = "discord/streaming.rs"]
mod streaming;

use harness::*;
use remoteclaw::channels::discord;
use remoteclaw::secret::Secret;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::fake_discord::FakeDiscord;
use support::fake_provider::{Behavior, FakeProvider};
use support::home::TestHome;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_turn_and_command_registration() {
    let s = setup().await;
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "hello there", false);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: hello there");
    assert!(
        !s.dc
            .wait_for_calls("PUT", "/commands", 1, WAIT)
            .await
            .is_empty()
    );
    let cmds = s.dc.registered_commands(Some(GUILD));
    let names: Vec<&str> = cmds
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in ["model", "new", "reset", "help"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let payload = s.dc.calls_matching("PUT", "/commands")[0].body.clone();
    insta::assert_json_snapshot!("discord_command_registration", payload);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guild_messages_need_a_mention_and_long_replies_are_split() {
    let s = setup().await;
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        MEMBER,
        "bob",
        "just chatting",
        false,
    );
    let long = "line of text\n".repeat(400);
    s.llm.script("sk-oa", [Behavior::Reply(long)]);
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        MEMBER,
        "bob",
        "long please",
        true,
    );
    let sent = s.dc.wait_for_channel_messages(GUILD_CHANNEL, 3, WAIT).await;
    assert!(sent.len() >= 3, "{} parts", sent.len());
    for m in &sent {
        assert!(m["content"].as_str().unwrap().chars().count() <= 2000);
    }
    assert_eq!(
        s.llm.request_count(),
        1,
        "the unmentioned message never reached the model"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_status_is_deferred_then_edited_and_ephemeral() {
    let s = setup().await;
    let (iid, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        OWNER,
        "model",
        json!([{"name": "model", "type": 3, "value": "status"}]),
    );
    let calls = s.dc.wait_for_interaction(iid, 2, WAIT).await;
    assert_eq!(calls[0].callback_type(), Some(5), "deferred first");
    assert!(calls[0].is_ephemeral(), "status names profiles: ephemeral");
    let edited = calls[1].content().unwrap_or_default().to_string();
    assert!(
        edited.contains(&s.llm.openai_base()) && edited.contains("openai-completions"),
        "{edited}"
    );
    assert!(!edited.contains("sk-oa"));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_may_pin_through_the_slash_command() {
    let s = setup().await;
    let (iid, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        MEMBER,
        "model",
        json!([{"name": "model", "type": 3, "value": "opus@anthropic:work"}]),
    );
    let calls = s.dc.wait_for_interaction(iid, 2, WAIT).await;
    let text = calls[1].content().unwrap_or_default().to_string();
    assert!(text.starts_with("Only owners can pin"), "{text}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_send_is_retried_and_sent_once() {
    let s = setup().await;
    s.dc.rate_limit_next("/messages", 1, 0.1);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "hi", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    // Count only once every handler is done, so a late duplicate would be seen.
    let s = s.finish().await;
    assert_eq!(contents(&s.dc, DM_CHANNEL), ["fake reply to: hi"]);
    let posts = s.dc.calls_matching("POST", "/messages");
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200], "one 429, then one delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_gateway_drops() {
    let s = setup().await;
    s.dc.drop_connection();
    assert!(
        s.dc.wait_for_connections(2, WAIT).await,
        "the client came back"
    );
    assert!(
        s.dc.wait_for_resumes(1, WAIT).await,
        "and resumed its session instead of identifying again"
    );
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "still there?", false);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: still there?");
    s.finish().await;
}

/// What `/model` autocomplete offers `user` for `typed`.
async fn autocomplete_choices(s: &Setup, user: u64, typed: &str) -> Vec<String> {
    let (iid, _) = s.dc.send_autocomplete(
        Some(GUILD),
        GUILD_CHANNEL,
        user,
        "model",
        json!([{"name": "model", "type": 3, "value": typed, "focused": true}]),
    );
    let calls = s.dc.wait_for_interaction(iid, 1, WAIT).await;
    assert_eq!(calls[0].callback_type(), Some(8));
    calls[0].body["data"]["choices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_offers_alias_at_profile_to_owners_only() {
    let profiles = r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-work"}}}"#;
    let s = setup_with(&default_body(), Some(profiles)).await;
    let owner = autocomplete_choices(&s, OWNER, "op").await;
    assert!(owner.iter().any(|c| c == "opus"), "{owner:?}");
    assert!(
        owner.iter().any(|c| c == "opus@anthropic:work"),
        "owners are offered pins: {owner:?}"
    );
    let member = autocomplete_choices(&s, MEMBER, "op").await;
    assert!(member.iter().any(|c| c == "opus"), "{member:?}");
    assert!(
        !member.iter().any(|c| c.contains('@')),
        "no pins for a non-owner: {member:?}"
    );
    let stranger = autocomplete_choices(&s, STRANGER, "").await;
    assert!(
        stranger.is_empty(),
        "nothing for someone who may not talk here: {stranger:?}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dm_sender_gets_a_pairing_code() {
    let s = setup().await;
    s.dc.register_channel(5002, None, 999);
    s.dc.send_message(5002, None, 999, "mallory", "let me in", false);
    let sent = s.dc.wait_for_channel_messages(5002, 1, WAIT).await;
    assert!(
        sent[0]["content"]
            .as_str()
            .unwrap()
            .contains("remoteclaw pairing approve discord ")
    );
    assert_eq!(s.llm.request_count(), 0);
    s.finish().await;
}

/// The acceptance walk through the real `remoteclaw gateway` binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_binary_serves_discord_end_to_end() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let models = format!("{OPUS}[agents.defaults.models.\"anthropic/claude-sonnet-4-5\"]\n");
    let body = format!("guilds = [\"{GUILD}\"]\nallowFrom = [\"222\"]\n");
    let config = config(
        &llm,
        "anthropic/claude-sonnet-4-5",
        &models,
        &dc.api_base(),
        &body,
    );
    let mut home = TestHome::new(&config);
    home.set("DISCORD_BOT_TOKEN", TOKEN)
        .set("ANTHROPIC_API_KEY", "sk-ant-env");
    home.write("agents/main/agent/auth-profiles.json", r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-work"}}}"#);
    let (mut child, _addr) = support::gateway::spawn_binary(&home).await;
    assert!(dc.wait_ready(WAIT).await);
    dc.register_channel(DM_CHANNEL, None, 222);
    let slash = |value: &str| json!([{"name": "model", "type": 3, "value": value}]);
    let (iid, _) = dc.send_slash_command(None, DM_CHANNEL, 222, "model", slash("list"));
    let list = dc.wait_for_interaction(iid, 2, WAIT).await[1]
        .content()
        .unwrap_or_default()
        .to_string();
    assert!(list.contains("anthropic/claude-opus-4-5 (opus)"), "{list}");
    let (iid, _) =
        dc.send_slash_command(None, DM_CHANNEL, 222, "model", slash("opus@anthropic:work"));
    let pinned = dc.wait_for_interaction(iid, 2, WAIT).await[1]
        .content()
        .unwrap_or_default()
        .to_string();
    assert!(
        pinned.contains("Pinned to credential profile anthropic:work"),
        "{pinned}"
    );
    dc.send_message(DM_CHANNEL, None, 222, "alice", "what is **rust**?", false);
    let sent = dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: what is **rust**?");
    assert_eq!(
        llm.requests()[0].key.as_deref(),
        Some("sk-ant-work"),
        "the pinned profile answered"
    );
    let (iid, _) = dc.send_slash_command(None, DM_CHANNEL, 222, "model", slash("status"));
    let calls = dc.wait_for_interaction(iid, 2, WAIT).await;
    let status = calls[1].content().unwrap_or_default().to_string();
    assert!(
        calls[0].is_ephemeral()
            && status.contains("→ anthropic:work")
            && status.contains(&llm.anthropic_base()),
        "{status}"
    );
    assert!(!status.contains("sk-ant-work"));
    child.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_channels_need_no_mention() {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    // Anyone in a listed channel: that takes groupPolicy = "open".
    let body = format!("channels = [\"{GUILD_CHANNEL}\"]\ngroupPolicy = \"open\"\n");
    let mut home = TestHome::new(&config(
        &llm,
        "openai/gpt-4o-mini",
        "",
        &dc.api_base(),
        &body,
    ));
    home.set("OPENAI_API_KEY", "sk-oa");
    let channel = run_channel(Arc::new(home.app().await), &dc).await;
    dc.register_channel(GUILD_CHANNEL, Some(GUILD), 0);
    dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        333,
        "bob",
        "no mention here",
        false,
    );
    let sent = dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: no mention here");
    channel.stop_and_wait().await;
}

/// DESIGN §10: `channelPrompts` beats `systemPrompt`; a reply carries the text of the
/// message it replies to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_prompts_and_the_referenced_message_reach_the_model() {
    let body = format!(
        "{}channels = [\"{GUILD_CHANNEL}\"]\nsystemPrompt = \"You are the DM bot.\"\nchannelPrompts = {{ \"{GUILD_CHANNEL}\" = \"You review pull requests.\" }}\n",
        default_body()
    );
    let s = setup_with(&body, None).await;
    let first = s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        MEMBER,
        "bob",
        "the diff looks odd",
        false,
    );
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    s.dc.send_reply(
        GUILD_CHANNEL,
        GUILD,
        OWNER,
        "alice",
        "what do you mean?",
        first,
    );
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 2, WAIT).await;
    let s = s.finish().await;
    let requests = s.llm.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let system = r.body["messages"][0].clone();
        assert_eq!(system["role"], "system");
        assert_eq!(system["content"], "You review pull requests.");
    }
    let user = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        user.contains("> the diff looks odd") && user.ends_with("what do you mean?"),
        "{user}"
    );
}

/// A command's answer is shown as written (what the user typed is not formatted), and
/// no reply pings anyone: every message body turns mention parsing off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_answers_are_literal_and_replies_ping_nobody() {
    let s = setup().await;
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "/model __secret__", false);
    let sent = s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let text = sent[0]["content"].as_str().unwrap();
    assert!(text.contains(r#""\_\_secret\_\_""#), "{text}");
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "@everyone hello", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    let posts =
        s.dc.calls_matching("POST", &format!("/channels/{DM_CHANNEL}/messages"));
    assert_eq!(posts.len(), 2);
    for p in posts {
        assert_eq!(
            p.body["allowed_mentions"],
            json!({"parse": []}),
            "{}",
            p.body
        );
    }
}
