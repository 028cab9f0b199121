//! Answered marks: a MESSAGE_CREATE or INTERACTION_CREATE that Discord delivers twice
//! (a resume replays it, or a second replica sees it) is answered once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_is_answered_once() {
    let s = setup().await;
    let id =
        s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "once please", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    // The same event again, as a gateway resume replays it.
    s.dc.send_raw_dispatch("MESSAGE_CREATE", s.dc.message(id).unwrap());
    // A sentinel queued behind it in the same session, then every handler finishes.
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "sentinel", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 2, WAIT).await;
    let s = s.finish().await;
    assert_eq!(
        contents(&s.dc, DM_CHANNEL),
        ["fake reply to: once please", "fake reply to: sentinel"]
    );
    assert_eq!(
        s.llm.request_count(),
        2,
        "the replay never reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_delivered_twice_is_answered_once() {
    let s = setup().await;
    let (iid, _) = s.dc.send_slash_command(
        None,
        DM_CHANNEL,
        OWNER,
        "model",
        json!([{"name": "model", "type": 3, "value": "list"}]),
    );
    s.dc.wait_for_interaction(iid, 2, WAIT).await;
    let event =
        s.dc.dispatched()
            .into_iter()
            .find(|d| d["t"] == "INTERACTION_CREATE" && d["d"]["id"] == json!(iid.to_string()))
            .unwrap();
    s.dc.send_raw_dispatch("INTERACTION_CREATE", event["d"].clone());
    s.dc.send_message(DM_CHANNEL, None, OWNER, "alice", "sentinel", false);
    s.dc.wait_for_channel_messages(DM_CHANNEL, 1, WAIT).await;
    let s = s.finish().await;
    let answers: Vec<_> =
        s.dc.interaction_responses(iid)
            .into_iter()
            .filter(|c| c.succeeded())
            .map(|c| c.interaction_kind())
            .collect();
    assert_eq!(answers, ["callback", "edit_original"], "one answer");
}
