//! `channels.<c>.agent` chooses whose auth-profiles.json a channel's sessions use
//! (DESIGN §3, §8). Regression: the key was parsed but ignored — every channel used the
//! default agent's credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::chat::{Inbound, handle};
use serde_json::json;
use support::fake_provider::FakeProvider;
use support::home::{TestHome, stdout};

fn home(fake: &FakeProvider) -> TestHome {
    let config = format!(
        r#"{}
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "opus"

[channels.telegram]
agent = "ops"

[channels.discord]
agent = "ops"
"#,
        TestHome::config_for_fake("anthropic/claude-opus-4-5", fake)
    );
    let home = TestHome::new(&config);
    let profile = |id: &str, key: &str| {
        json!({"version": 1, "profiles": {id: {"type": "api_key", "provider": "anthropic", "key": key}}})
            .to_string()
    };
    home.write(
        "agents/main/agent/auth-profiles.json",
        &profile("anthropic:main-key", "sk-ant-main"),
    );
    home.write(
        "agents/ops/agent/auth-profiles.json",
        &profile("anthropic:ops-key", "sk-ant-ops"),
    );
    home
}

fn msg<'a>(session: &'a str, text: &'a str, agent: Option<&'a str>) -> Inbound<'a> {
    Inbound {
        session,
        text,
        owner: true,
        bot_username: None,
        agent,
        system_prompt: None,
        attachments: &[],
        quoted: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_agent_is_honoured_for_turns_pins_and_status() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let app = h.app().await;

    // A channel with agent = "ops" answers with the ops agent's credential…
    let r = handle(&app, msg("telegram:dm:1", "hello", Some("ops")), None).await;
    assert!(!r.is_error(), "{}", r.reply_text());
    assert_eq!(
        r.turn.unwrap().credential.as_deref(),
        Some("anthropic:ops-key")
    );
    assert_eq!(fake.requests()[0].key.as_deref(), Some("sk-ant-ops"));
    // …while the default agent keeps its own.
    let r = handle(&app, msg("web:x", "hello", None), None).await;
    assert_eq!(
        r.turn.unwrap().credential.as_deref(),
        Some("anthropic:main-key")
    );

    // Pins are checked against that agent's profiles.
    let r = handle(
        &app,
        msg(
            "telegram:dm:1",
            "/model opus@anthropic:main-key",
            Some("ops"),
        ),
        None,
    )
    .await;
    assert!(r.is_error());
    assert!(
        r.reply_text()
            .contains("Profiles for anthropic: anthropic:ops-key"),
        "{}",
        r.reply_text()
    );
    let r = handle(
        &app,
        msg(
            "telegram:dm:1",
            "/model opus@anthropic:ops-key",
            Some("ops"),
        ),
        None,
    )
    .await;
    assert!(!r.is_error(), "{}", r.reply_text());

    // `/model status` lists the agent's candidates.
    let r = handle(
        &app,
        msg("telegram:dm:1", "/model status", Some("ops")),
        None,
    )
    .await;
    let status = r.reply_text();
    assert!(
        status.contains("anthropic:ops-key") && !status.contains("anthropic:main-key"),
        "{status}"
    );
    assert!(!status.contains("sk-ant-ops"));
}

#[tokio::test]
async fn an_agent_id_that_is_not_a_plain_name_is_refused_at_start() {
    let fake = FakeProvider::start().await;
    let h = TestHome::new(&format!(
        "{}\n[channels.telegram]\nagent = \"../escape\"\n",
        TestHome::config_for_fake("anthropic/claude-opus-4-5", &fake)
    ));
    let err = remoteclaw::app::App::load(h.env_map(), None)
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(err.contains("\"../escape\" is not a plain name"), "{err}");
    // A load error like any other (DESIGN §3): the file, the line and the key path.
    assert!(
        err.contains("remoteclaw.toml:") && err.contains("(key `channels.telegram.agent`)"),
        "{err}"
    );
    // And doctor reports the config as not loading.
    let out = h.run(&["doctor", "--json"]).await;
    assert!(
        stdout(&out).contains("channels.telegram.agent"),
        "{}",
        stdout(&out)
    );
}

/// `gateway.maxConcurrentTurns` holds for the chat channels too: past the running turns
/// and the wait queue, a chat message gets a busy reply at once and reaches no model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_past_max_concurrent_turns_get_a_busy_reply() {
    use remoteclaw::chat::{GATEWAY_BUSY_REPLY, handle_limited};
    use std::sync::Arc;
    let fake = FakeProvider::start().await;
    let mut h = TestHome::new(&format!(
        "{}\n[gateway]\nmaxConcurrentTurns = 1\n",
        TestHome::config_for_fake("anthropic/claude-opus-4-5", &fake)
    ));
    h.set("ANTHROPIC_API_KEY", "sk-ant-slow");
    fake.set_default(support::fake_provider::Behavior::Stall);
    let app = Arc::new(h.app().await);
    let running = {
        let app = app.clone();
        tokio::spawn(
            async move { handle_limited(&app, msg("telegram:dm:1", "one", None), None).await },
        )
    };
    while app.turns.running() < 1 {
        tokio::task::yield_now().await;
    }
    let waiting = {
        let app = app.clone();
        tokio::spawn(
            async move { handle_limited(&app, msg("telegram:dm:2", "two", None), None).await },
        )
    };
    while app.turns.waiting() < 1 {
        tokio::task::yield_now().await;
    }
    let r = handle_limited(&app, msg("discord:dm:3", "three", None), None).await;
    assert!(r.is_error());
    assert_eq!(r.reply_text(), GATEWAY_BUSY_REPLY);
    assert!(
        fake.requests().iter().all(|q| q.user_text() != "three"),
        "the refused message reached no model"
    );
    running.abort();
    waiting.abort();
}
