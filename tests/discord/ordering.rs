//! A channel's messages reach the model in the order they arrived (DESIGN §4), however
//! serenity schedules their handlers, and as the person wrote them (§8: only the bot's
//! mention is removed).

use super::harness::*;
use crate::support::fake_discord::{BOT_USER_ID, FakeAttachment};
use remoteclaw::session::BUSY_REPLY;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_one_chat_are_answered_in_arrival_order() {
    let s = setup().await;
    s.llm.set_latency(Duration::from_millis(30));
    const N: usize = 8;
    for i in 0..N {
        s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", &format!("m{i}"), false);
    }
    s.dc.wait_for_channel_messages(DM_CHANNEL, N, WAIT).await;
    let s = s.finish().await;
    let asked: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(asked, want, "the order the model saw");
    let shown = contents(&s.dc, DM_CHANNEL);
    let want: Vec<String> = (0..N).map(|i| format!("fake reply to: m{i}")).collect();
    assert_eq!(shown, want, "the order of the replies");
}

/// A message that takes long to take in (a large image to download) is not overtaken
/// by the plain one sent after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_an_image_is_not_overtaken_by_the_next_one() {
    let s = setup().await;
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(3 << 20, 7);
    let img = FakeAttachment::new("big.png", Some("image/png"), png);
    s.dc.send_message_with_attachments(
        DM_CHANNEL,
        None,
        OWNER,
        "alice",
        "first, with a picture",
        false,
        &[img],
    );
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "second", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    let s = s.finish().await;
    let asked: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    assert_eq!(asked, ["first, with a picture", "second"]);
}

/// One message answered, eight waiting: the tenth and later get the busy reply at once,
/// the others their answers in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_eight_waiting_a_message_gets_the_busy_reply() {
    let s = setup().await;
    s.llm.set_latency(Duration::from_millis(400));
    const N: usize = 12;
    for i in 0..N {
        s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", &format!("m{i}"), false);
    }
    s.dc.wait_for_channel_messages(DM_CHANNEL, N, Duration::from_secs(30))
        .await;
    let s = s.finish().await;
    let shown = contents(&s.dc, DM_CHANNEL);
    let answered: Vec<&String> = shown.iter().filter(|t| *t != BUSY_REPLY).collect();
    let want: Vec<String> = (0..9).map(|i| format!("fake reply to: m{i}")).collect();
    assert_eq!(answered, want.iter().collect::<Vec<_>>(), "{shown:#?}");
    assert_eq!(shown.iter().filter(|t| *t == BUSY_REPLY).count(), N - 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_removed_and_the_rest_kept_as_written() {
    let s = setup().await;
    for text in [
        format!("<@{BOT_USER_ID}>\n    let x = 1;\n    let y = 2;"),
        format!("please <@{BOT_USER_ID}> review this"),
        format!("<@!{BOT_USER_ID}> hi"),
    ] {
        s.dc.send_message(GUILD_CHANNEL, Some(GUILD), MEMBER, "bob", &text, true);
    }
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 3, WAIT).await;
    let s = s.finish().await;
    let seen: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    assert_eq!(
        seen,
        ["    let x = 1;\n    let y = 2;", "please review this", "hi"]
    );
}

/// A thread has a session of its own (`discord:channel:<channel>:thread:<thread>`), and
/// its parent channel's listing and prompt apply to it (DESIGN §4, §10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_has_its_own_session_under_its_parent_channel() {
    const THREAD: u64 = 7777;
    let body = format!(
        "{}channels = [\"{GUILD_CHANNEL}\"]\nchannelPrompts = {{ \"{GUILD_CHANNEL}\" = \"You review pull requests.\" }}\n",
        default_body()
    );
    let s = setup_with(&body, None).await;
    // The connection's READY has been handled once a first message is answered.
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "warm up", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    s.dc.send_raw_dispatch(
        "THREAD_CREATE",
        serde_json::json!({
            "id": THREAD.to_string(), "type": 11, "guild_id": GUILD.to_string(),
            "parent_id": GUILD_CHANNEL.to_string(), "owner_id": MEMBER.to_string(),
            "name": "review", "last_message_id": null, "rate_limit_per_user": 0,
            "message_count": 0, "member_count": 1, "flags": 0, "newly_created": true,
        }),
    );
    // No mention: the parent channel is listed, so the thread's messages are answered.
    s.dc.send_message(THREAD, Some(GUILD), MEMBER, "bob", "in the thread", false);
    s.dc.wait_for_channel_messages(THREAD, 1, WAIT).await;
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        MEMBER,
        "bob",
        "in the channel",
        false,
    );
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    let store = s.app.sessions.store().clone();
    let s = s.finish().await;
    let requests = s.llm.requests();
    let prompts: Vec<&serde_json::Value> = requests[1..]
        .iter()
        .map(|r| &r.body["messages"][0]["content"])
        .collect();
    assert_eq!(
        prompts,
        ["You review pull requests.", "You review pull requests."]
    );
    let thread_key = format!("discord:channel:{GUILD_CHANNEL}:thread:{THREAD}");
    let thread = store
        .load(&thread_key, 10)
        .await
        .unwrap()
        .expect("the thread's session");
    assert_eq!(thread.history.len(), 2, "{:?}", thread.history);
    let channel = store
        .load(&format!("discord:channel:{GUILD_CHANNEL}"), 10)
        .await
        .unwrap()
        .expect("the channel's session");
    assert_eq!(channel.history[0].content, "in the channel");
}
