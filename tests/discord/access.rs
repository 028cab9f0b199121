//! Who may talk in guilds (`groupPolicy`, `groupAllowFrom`): refused senders never
//! reach a model and get no reply in the channel; a refused slash command gets an
//! ephemeral refusal.

use super::*;

/// A slash command; returns the interaction's calls once it has `n` of them.
async fn slash(
    s: &Setup,
    user: u64,
    value: &str,
    n: usize,
) -> Vec<support::fake_discord::RecordedCall> {
    let (iid, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        user,
        "model",
        json!([{"name": "model", "type": 3, "value": value}]),
    );
    s.dc.wait_for_interaction(iid, n, WAIT).await
}

/// The refusal a slash command gets: one ephemeral message, no deferral, no model.
fn assert_refused(calls: &[support::fake_discord::RecordedCall]) {
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].callback_type(),
        Some(4),
        "refused at once, not deferred and run"
    );
    assert!(calls[0].is_ephemeral(), "only the sender sees the refusal");
    assert!(
        calls[0]
            .content()
            .unwrap_or_default()
            .contains("not allowed"),
        "{:?}",
        calls[0].content()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_guild_members_never_reach_a_model() {
    // Default groupPolicy = "allowlist", groupAllowFrom = allowFrom = [OWNER, MEMBER].
    let s = setup().await;
    s.dc.send_message(GUILD_CHANNEL, Some(GUILD), STRANGER, "eve", "hi bot", true);
    let (command, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        STRANGER,
        "model",
        json!([{"name": "model", "type": 3, "value": "list"}]),
    );
    // A sentinel from a listed member, answered after the stranger's events were seen.
    s.dc.send_message(GUILD_CHANNEL, Some(GUILD), MEMBER, "bob", "sentinel", true);
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, GUILD_CHANNEL),
        ["fake reply to: sentinel"],
        "no reply to the stranger in the channel"
    );
    assert_eq!(
        s.llm.request_count(),
        1,
        "only the member's message reached the model"
    );
    assert_refused(&s.dc.interaction_responses(command));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_allow_from_replaces_allow_from_in_guilds() {
    let body = format!(
        "guilds = [\"{GUILD}\"]\nallowFrom = [\"{OWNER}\"]\ngroupAllowFrom = [\"{STRANGER}\"]\n"
    );
    let s = setup_with(&body, None).await;
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        OWNER,
        "alice",
        "from owner",
        true,
    );
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        STRANGER,
        "eve",
        "from eve",
        true,
    );
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "dm", false);
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    assert_refused(&slash(&s, OWNER, "list", 1).await);
    let listed = slash(&s, STRANGER, "list", 2).await;
    assert_eq!(
        listed[0].callback_type(),
        Some(5),
        "deferred, then answered"
    );
    let s = s.finish().await;
    assert_eq!(contents(&s.dc, GUILD_CHANNEL), ["fake reply to: from eve"]);
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: dm"],
        "DMs still follow allowFrom"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_policy_open_answers_any_member_of_an_allowed_guild() {
    let body =
        format!("guilds = [\"{GUILD}\"]\nallowFrom = [\"{OWNER}\"]\ngroupPolicy = \"open\"\n");
    let s = setup_with(&body, None).await;
    s.dc.send_message(GUILD_CHANNEL, Some(GUILD), STRANGER, "eve", "hello", true);
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    let calls = slash(&s, STRANGER, "list", 2).await;
    assert!(
        calls[1]
            .content()
            .unwrap_or_default()
            .contains("openai/gpt-4o-mini")
    );
    // Still only in allowed guilds.
    s.dc.register_channel(7001, Some(999), 0);
    s.dc.send_message(7001, Some(999), STRANGER, "eve", "elsewhere", true);
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        STRANGER,
        "eve",
        "sentinel",
        true,
    );
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 2, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, GUILD_CHANNEL),
        ["fake reply to: hello", "fake reply to: sentinel"]
    );
    assert!(contents(&s.dc, 7001).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_policy_disabled_ignores_guild_traffic() {
    let body = format!(
        "guilds = [\"{GUILD}\"]\nchannels = [\"{GUILD_CHANNEL}\"]\nallowFrom = [\"{OWNER}\"]\ngroupPolicy = \"disabled\"\n"
    );
    let s = setup_with(&body, None).await;
    s.dc.send_message(
        GUILD_CHANNEL,
        Some(GUILD),
        OWNER,
        "alice",
        "in the guild",
        true,
    );
    assert_refused(&slash(&s, OWNER, "list", 1).await);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "sentinel", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert!(contents(&s.dc, GUILD_CHANNEL).is_empty());
    assert_eq!(contents(&s.dc, DM_CHANNEL), ["fake reply to: sentinel"]);
    assert_eq!(s.llm.request_count(), 1);
}

/// The pairing table is read off the runtime threads: on a one-thread runtime, a DM
/// from a paired sender while `state.db` is held elsewhere must not stop other tasks.
#[tokio::test(flavor = "current_thread")]
async fn a_pairing_lookup_does_not_stall_the_runtime_while_state_db_is_busy() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let s = setup().await;
    const PAIRED: u64 = 777;
    const PAIRED_DM: u64 = 5077;
    let pairing = s.app.pairing();
    let code = pairing
        .request("discord", &PAIRED.to_string(), Some("pat"))
        .await
        .unwrap()
        .code;
    pairing.approve("discord", &code).await.unwrap();
    s.dc.register_channel(PAIRED_DM, None, PAIRED);

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Another holder of state.db: the DM arrives at once, the lookup waits on the
    // database; count the ticker's progress in the second that follows.
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let (db, t) = (s.app.stores.db.clone().unwrap(), ticks.clone());
    let holder = std::thread::spawn(move || {
        db.with(|_| {
            let _ = held_tx.send(());
            std::thread::sleep(Duration::from_millis(500));
            let before = t.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(1));
            Ok(t.load(Ordering::SeqCst) - before)
        })
        .unwrap()
    });
    held_rx.await.unwrap();
    s.dc.send_message(PAIRED_DM, None, PAIRED, "pat", "hello", false);
    let progress = tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();
    ticker.abort();
    assert!(
        progress > 0,
        "no other task ran while the pairing lookup waited for state.db"
    );
    let sent = s.dc.wait_for_channel_messages(PAIRED_DM, 1, WAIT).await;
    assert_eq!(sent[0]["content"], "fake reply to: hello");
    s.finish().await;
}

/// In an allowed guild, a reply to the bot's message speaks to the bot even with the
/// reply's ping turned off (no mention), as a reply does on Telegram; a reply to
/// someone else without a mention does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_the_bot_is_answered_without_a_mention() {
    let s = setup().await;
    let hello = format!("<@{}> hello", crate::support::fake_discord::BOT_USER_ID);
    let first =
        s.dc.send_message(GUILD_CHANNEL, Some(GUILD), MEMBER, "bob", &hello, true);
    let sent = s.dc.wait_for_channel_messages(GUILD_CHANNEL, 1, WAIT).await;
    let bot_message: u64 = sent[0]["id"].as_str().unwrap().parse().unwrap();
    s.dc.send_reply(
        GUILD_CHANNEL,
        GUILD,
        MEMBER,
        "bob",
        "and then?",
        bot_message,
    );
    s.dc.wait_for_channel_messages(GUILD_CHANNEL, 2, WAIT).await;
    // A reply to a person's message, without a mention, is not for the bot.
    s.dc.send_reply(GUILD_CHANNEL, GUILD, OWNER, "alice", "agreed", first);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let s = s.finish().await;
    let seen: Vec<String> = s.llm.requests().iter().map(|r| r.user_text()).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].ends_with("and then?"), "{seen:?}");
    assert_eq!(contents(&s.dc, GUILD_CHANNEL).len(), 2);
}
