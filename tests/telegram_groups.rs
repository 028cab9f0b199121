//! Telegram groups (DESIGN §8 "Who may talk, in groups"): allowed groups only,
//! `groupPolicy`/`groupAllowFrom` deciding which members are answered (unknown
//! senders get nothing), mentions and commands for other bots, forum topics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telegram_support;

use telegram_support::{WAIT, inbox, setup, wait_answered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_answer_only_when_mentioned_and_commands_for_other_bots_are_ignored() {
    let s = setup("").await;
    let bot = s.tg.bot_username().to_string();
    let ids = [
        s.tg.send_group(-1001234, 42, "alice", "just chatting", None, None),
        s.tg.send_group(
            -1009999,
            42,
            "alice",
            &format!("@{bot} not an allowed group"),
            None,
            None,
        ),
        s.tg.send_group(-1001234, 42, "alice", "/model@OtherBot list", None, None),
        s.tg.send_group(
            -1001234,
            42,
            "alice",
            &format!("/model@{bot} list"),
            None,
            None,
        ),
    ];
    wait_answered(&s.tg, &inbox(&s.home), &ids).await;
    let sent = s.tg.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].text.contains("openai/gpt-4o-mini"),
        "the list: {}",
        sent[0].text
    );
    s.tg.send_group(
        -1001234,
        42,
        "alice",
        &format!("@{bot} what is rust?"),
        Some(7),
        None,
    );
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    assert_eq!(sent[1].text, "fake reply to: what is rust?");
    assert_eq!(sent[1].thread_id, Some(7), "answered in the forum topic");
    assert_eq!(s.llm.request_count(), 1);
    let out = s
        .app
        .sessions
        .store()
        .summary("telegram:group:-1001234:thread:7")
        .await
        .unwrap();
    assert!(out.is_some(), "topic session key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_not_in_allow_from_never_reach_a_model() {
    let s = setup("").await;
    let bot = s.tg.bot_username().to_string();
    let stranger =
        s.tg.send_group(-1001234, 77, "mallory", &format!("@{bot} hi"), None, None);
    let known =
        s.tg.send_group(-1001234, 42, "alice", &format!("@{bot} hello"), None, None);
    wait_answered(&s.tg, &inbox(&s.home), &[stranger, known]).await;
    let texts: Vec<String> = s.tg.sent_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["fake reply to: hello"], "no reply at all to 77");
    assert_eq!(s.llm.request_count(), 1, "77 never reached a model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_policy_and_group_allow_from_choose_who_talks_in_groups() {
    // (extra config, senders answered among 42 and 77)
    let cases: [(&str, &[i64]); 4] = [
        ("groupAllowFrom = [77]\n", &[77]),
        ("groupPolicy = \"open\"\n", &[42, 77]),
        ("groupPolicy = \"disabled\"\n", &[]),
        ("groupPolicy = \"allowlist\"\n", &[42]),
    ];
    for (extra, want) in cases {
        let s = setup(extra).await;
        let bot = s.tg.bot_username().to_string();
        let mut ids = Vec::new();
        for (user, name) in [(42, "alice"), (77, "mallory")] {
            let text = format!("@{bot} from {user}");
            ids.push(s.tg.send_group(-1001234, user, name, &text, None, None));
        }
        wait_answered(&s.tg, &inbox(&s.home), &ids).await;
        let mut answered: Vec<i64> = s
            .llm
            .requests()
            .iter()
            .map(|r| r.user_text().trim_start_matches("from ").parse().unwrap())
            .collect();
        answered.sort_unstable();
        assert_eq!(answered, want, "{extra}");
        assert_eq!(s.tg.sent_messages().len(), want.len(), "{extra}");
        s.stop_channel().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_require_mention_every_group_message_is_answered() {
    let s = setup("requireMention = false\n").await;
    s.tg.send_group(-1001234, 42, "alice", "no mention needed", None, None);
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert_eq!(sent[0].text, "fake reply to: no mention needed");
    assert_eq!(sent[0].chat_id, -1001234);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_each_sender_is_judged_on_their_own() {
    let s = setup("").await;
    let bot = s.tg.bot_username().to_string();
    s.tg.send_group(-1001234, 42, "alice", &format!("@{bot} hi"), None, None);
    s.tg.wait_for_messages(1, WAIT).await;
    s.tg.send_group(
        -1001234,
        43,
        "bob",
        &format!("@{bot} /model opus@anthropic:work"),
        None,
        None,
    );
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    assert!(
        sent[1].text.starts_with("Only owners can pin"),
        "bob is not an owner even after alice spoke: {}",
        sent[1].text
    );
}

/// DESIGN §10: a group's `groupPrompts` entry beats the channel's `systemPrompt`, which
/// beats `agents.defaults.systemPrompt`; and a reply carries the replied-to text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_channel_prompts_and_the_replied_to_text_reach_the_model() {
    let s = setup(
        "systemPrompt = \"You are the DM bot.\"\ngroupPrompts = { \"-1001234\" = \"You answer questions about our build system.\" }\n",
    )
    .await;
    let bot = s.tg.bot_username().to_string();
    s.tg.send_dm(42, "alice", "hello");
    let sent = s.tg.wait_for_messages(1, WAIT).await;
    assert_eq!(sent[0].text, "fake reply to: hello");
    s.tg.send_group(
        -1001234,
        42,
        "alice",
        &format!("@{bot} why is CI red?"),
        None,
        None,
    );
    let sent = s.tg.wait_for_messages(2, WAIT).await;
    // A reply to the bot's answer: the answer goes to the model with it.
    let answered = sent[1].message_id;
    s.tg.send_group(
        -1001234,
        42,
        "alice",
        "and how do I fix it?",
        None,
        Some(answered),
    );
    s.tg.wait_for_messages(3, WAIT).await;

    let requests = s.llm.requests();
    assert_eq!(requests.len(), 3);
    let system = |i: usize| -> String {
        requests[i].body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "system")
            .map(|m| m["content"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(system(0), "You are the DM bot.");
    assert_eq!(system(1), "You answer questions about our build system.");
    assert_eq!(system(2), "You answer questions about our build system.");
    let last_user = requests[2].body["messages"]
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
        last_user.contains("> fake reply to: why is CI red?")
            && last_user.ends_with("and how do I fix it?"),
        "{last_user}"
    );
}
