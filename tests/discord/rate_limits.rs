//! 429s behind a custom `apiBase` (serenity's ratelimiter off): the part is sent again
//! after the `retry_after` the 429 carries, exactly once; a hint above a minute is
//! given up. Gaps are lower bounds on the fake's own request timestamps, so they
//! cannot flake; the old fixed 1 s pause fails them.

use super::*;
use support::fake_discord::RecordedCall;

/// Time between two recorded calls.
fn gap(first: &RecordedCall, second: &RecordedCall) -> Duration {
    second.at.saturating_duration_since(first.at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_429_waits_the_retry_after_it_carries() {
    let s = setup().await;
    s.dc.rate_limit_next("/messages", 1, 2.5);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "hi", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: hi"],
        "sent once"
    );
    let posts = s.dc.calls_matching("POST", "/messages");
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200]);
    let waited = gap(&posts[0], &posts[1]);
    assert!(
        waited >= Duration::from_millis(2500),
        "sent again after {waited:?}, before the 2.5 s the 429 asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_asking_for_more_than_a_minute_is_given_up() {
    let s = setup().await;
    s.dc.rate_limit_next("/messages", 1, 600.0);
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "hi", false);
    s.dc.wait_for_calls("POST", "/messages", 1, WAIT).await;
    // A sentinel turn that answers later than a blind 1 s retry would have resent.
    s.llm.set_latency(Duration::from_secs(2));
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "sentinel", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    // Drains at once: nobody waits ten minutes.
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: sentinel"],
        "the rate-limited part was not sent again"
    );
    assert_eq!(s.dc.calls_matching("POST", "/messages").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_interaction_edit_waits_the_retry_after_it_carries() {
    let s = setup().await;
    s.dc.rate_limit_next("/messages/@original", 1, 1.5);
    let (iid, _) = s.dc.send_slash_command(
        Some(GUILD),
        GUILD_CHANNEL,
        OWNER,
        "model",
        json!([{"name": "model", "type": 3, "value": "list"}]),
    );
    s.dc.wait_for_interaction(iid, 3, WAIT).await;
    let s = s.finish().await;
    let calls = s.dc.interaction_responses(iid);
    let kinds: Vec<(&str, u16)> = calls
        .iter()
        .map(|c| (c.interaction_kind(), c.status))
        .collect();
    assert_eq!(
        kinds,
        [
            ("callback", 204),
            ("edit_original", 429),
            ("edit_original", 200)
        ],
        "deferred, then one edit after the 429"
    );
    let waited = gap(&calls[1], &calls[2]);
    assert!(
        waited >= Duration::from_millis(1500),
        "edited again after {waited:?}, before the 1.5 s the 429 asked for"
    );
    let original = s.dc.interaction_original(iid).unwrap();
    assert!(
        original["content"]
            .as_str()
            .unwrap()
            .contains("openai/gpt-4o-mini")
    );
}
