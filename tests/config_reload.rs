//! Live config reload (DESIGN §11, issue 14): a running `remoteclaw gateway` process
//! notices an edited `remoteclaw.toml` and applies it to the next message, without a
//! restart (same PID); an invalid edit keeps the running config and shows as
//! `configError` on `/health` until the file is fixed; a changed channel token restarts
//! only that channel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::telegram_support;

use remoteclaw::app::App;
use remoteclaw::gateway::channels::Channels;
use remoteclaw::gateway::reload::Reloader;
use serde_json::Value;
use std::sync::Arc;
use support::fake_discord::FakeDiscord;
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;
use telegram_support::{Binary, TOKEN, WAIT, prepare};

/// The gateway's `/health` body.
async fn health(b: &Binary) -> Value {
    reqwest::get(format!("http://{}/health", b.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Replace `from` by `to` in the config file (an operator's edit).
fn edit(home: &TestHome, from: &str, to: &str) {
    edit_all(home, &[(from, to)]);
}

/// Several replacements saved at once, the file replaced whole (as editors save), so
/// the gateway never reads half an edit.
fn edit_all(home: &TestHome, changes: &[(&str, &str)]) {
    let path = home.config_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in changes {
        assert!(text.contains(from), "{from:?} not in:\n{text}");
        text = text.replacen(from, to, 1);
    }
    let tmp = path.with_extension("toml.edit");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Send a DM and wait for the bot's answer to that chat; its text.
async fn ask(tg: &FakeTelegram, user: i64, text: &str) -> String {
    let before = tg.sent_messages().len();
    tg.send_dm(user, "someone", text);
    let sent = tg.wait_for_messages(before + 1, WAIT).await;
    let reply = sent
        .iter()
        .skip(before)
        .find(|m| m.chat_id == user)
        .unwrap_or_else(|| panic!("no answer to {text:?} from {user}: {sent:?}"));
    reply.text.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_applies_to_the_next_message_and_an_invalid_one_keeps_the_old() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (home, _llm) = prepare(&tg, "dmPolicy = \"allowlist\"\n").await;
    let mut gw = Binary::spawn(&home).await;
    let pid = gw.child.id();

    // 44 is not on the allowlist: no answer (42's later message is answered first,
    // so 44's was looked at and dropped).
    tg.send_dm(44, "carol", "let me in");
    let _ = ask(&tg, 42, "ping").await;
    assert!(
        tg.sent_messages().iter().all(|m| m.chat_id != 44),
        "a user off the allowlist got an answer"
    );
    let reply = ask(&tg, 42, "/opus").await;
    assert!(
        reply.contains("Model set to anthropic/claude-opus-4-5 (opus)"),
        "{reply}"
    );

    // Allow 44 and rename the alias.
    edit_all(
        &home,
        &[
            ("allowFrom = [42, 43]", "allowFrom = [42, 43, 44]"),
            ("alias = \"opus\"", "alias = \"big\""),
        ],
    );
    gw.wait_for_line("config reloaded").await;
    let reply = ask(&tg, 44, "hello again").await;
    assert!(reply.contains("hello again"), "{reply}");
    let reply = ask(&tg, 42, "/model big").await;
    assert!(
        reply.contains("Model set to anthropic/claude-opus-4-5 (big)"),
        "{reply}"
    );
    let reply = ask(&tg, 42, "/model opus").await;
    assert!(
        !reply.contains("Model set"),
        "the old alias still works: {reply}"
    );

    // A live change neither restarted the process nor the channel.
    assert_eq!(gw.child.id(), pid);
    assert!(gw.child.try_wait().unwrap().is_none());
    assert_eq!(gw.log().matches("Telegram channel connected").count(), 1);
    assert!(health(&gw).await.get("configError").is_none());

    // A key that needs a restart: named in the log, the running value stays.
    let mut text = std::fs::read_to_string(home.config_path()).unwrap();
    text.push_str("\n[gateway]\nmaxBodyBytes = 4096\n");
    std::fs::write(home.config_path(), text).unwrap();
    gw.wait_for_line("take effect only after a restart").await;
    assert!(
        gw.log()
            .lines()
            .any(|l| l.contains("only after a restart") && l.contains("gateway.maxBodyBytes")),
        "{}",
        gw.log()
    );

    // An invalid edit: logged with file, line and key; the running config stays.
    edit(&home, "allowFrom = [42, 43, 44]", "allowFrom = [42, \"x\"]");
    gw.wait_for_line("config file changed but is invalid").await;
    let body = health(&gw).await;
    let error = body["configError"]
        .as_str()
        .expect("configError")
        .to_string();
    let path = home.config_path().display().to_string();
    assert!(error.contains(&path), "{error}");
    assert!(error.contains("channels.telegram.allowFrom"), "{error}");
    let line = std::fs::read_to_string(home.config_path())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("allowFrom"))
        .unwrap()
        + 1;
    assert!(error.contains(&format!("{path}:{line}")), "{error}");
    let reply = ask(&tg, 44, "still here").await;
    assert!(reply.contains("still here"), "{reply}");

    // Fixed again: the error goes away.
    edit(&home, "allowFrom = [42, \"x\"]", "allowFrom = [42]");
    gw.wait_for_line("config file is valid again").await;
    assert!(health(&gw).await.get("configError").is_none());
    assert_eq!(gw.child.id(), pid);

    // The file goes away: not an edit to the defaults (which would drop the bot token
    // and the fake provider); the running config stays and says why, until it is back.
    let saved = std::fs::read_to_string(home.config_path()).unwrap();
    let invalid = gw
        .log()
        .matches("config file changed but is invalid")
        .count();
    let valid = gw.log().matches("config file is valid again").count();
    std::fs::remove_file(home.config_path()).unwrap();
    wait_for_another(&gw, "config file changed but is invalid", invalid).await;
    let error = health(&gw).await["configError"]
        .as_str()
        .expect("configError")
        .to_string();
    assert!(error.contains("is gone"), "{error}");
    let reply = ask(&tg, 42, "without a file").await;
    assert!(reply.contains("without a file"), "{reply}");
    assert_eq!(gw.log().matches("Telegram channel connected").count(), 1);
    std::fs::write(home.config_path(), saved).unwrap();
    wait_for_another(&gw, "config file is valid again", valid).await;
    assert!(health(&gw).await.get("configError").is_none());
}

/// Wait until the log holds more than `seen` lines with `needle`.
async fn wait_for_another(gw: &Binary, needle: &str, seen: usize) {
    let deadline = std::time::Instant::now() + WAIT * 3;
    while gw.log().matches(needle).count() <= seen {
        assert!(
            std::time::Instant::now() < deadline,
            "no new {needle:?}:\n{}",
            gw.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_token_restarts_only_that_channel() {
    const DISCORD_TOKEN: &str = "discord-test-token";
    const NEW_TOKEN: &str = "123456:NEW-token";
    let tg = FakeTelegram::start(TOKEN).await;
    tg.accept_token(NEW_TOKEN);
    let dc = FakeDiscord::start(DISCORD_TOKEN).await;
    let (home, _llm) = prepare(&tg, "").await;
    let mut config = std::fs::read_to_string(home.config_path()).unwrap();
    config.push_str(&format!(
        "\n[channels.discord]\nenabled = true\napiBase = \"{}\"\ntoken = \"{DISCORD_TOKEN}\"\nallowFrom = [\"222\"]\n",
        dc.api_base()
    ));
    std::fs::write(home.config_path(), config).unwrap();
    let gw = Binary::spawn(&home).await;
    gw.wait_for_line("Discord channel connected").await;
    let identifies = dc.identifies();

    edit(&home, TOKEN, NEW_TOKEN);
    gw.wait_for_line("restarting the Telegram channel").await;
    telegram_support::eventually(
        "the Telegram channel polls with the new token",
        WAIT,
        || {
            let polled = tg
                .calls_of("getUpdates")
                .iter()
                .any(|c| c.token == NEW_TOKEN && c.authorized);
            async move { polled }
        },
    )
    .await;
    let reply = ask(&tg, 42, "after the token change").await;
    assert!(reply.contains("after the token change"), "{reply}");
    assert_eq!(gw.log().matches("Telegram channel connected").count(), 2);

    // Discord kept its connection: no second Identify, no restart.
    assert_eq!(dc.identifies(), identifies);
    assert_eq!(gw.log().matches("Discord channel connected").count(), 1);
    assert!(!gw.log().contains("restarting the Discord channel"));
}

/// A reloader on `home`, driven poll by poll (no clock): what it puts in force.
async fn reloader(home: &TestHome) -> (Arc<App>, Reloader) {
    let app = Arc::new(home.app().await);
    let channels = Arc::new(tokio::sync::Mutex::new(Channels::default()));
    let r = Reloader::new(app.clone(), channels).await;
    (app, r)
}

fn primary(app: &App) -> String {
    app.config().agents.defaults.model.primary.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_read_between_truncating_and_writing_it_is_not_put_in_force() {
    let text = "[agents.defaults.model]\nprimary = \"openai/gpt-4o-mini\"\n";
    let home = TestHome::new(text);
    let (app, mut r) = reloader(&home).await;
    let path = home.config_path();

    // An editor that saves in place truncates first: three polls (1.5 s) see the file
    // empty, then it is written with an edit.
    std::fs::write(&path, "").unwrap();
    for _ in 0..3 {
        r.poll().await;
        assert_eq!(
            primary(&app),
            "openai/gpt-4o-mini",
            "an empty file mid-save"
        );
    }
    std::fs::write(&path, text.replace("gpt-4o-mini", "gpt-4o")).unwrap();
    r.poll().await;
    assert_eq!(primary(&app), "openai/gpt-4o-mini", "not settled yet");
    r.poll().await;
    assert_eq!(primary(&app), "openai/gpt-4o", "settled: in force");
    assert!(app.config_error().is_none());

    // Emptied for good: the defaults, once it stayed empty for four polls.
    std::fs::write(&path, "").unwrap();
    for _ in 0..3 {
        r.poll().await;
    }
    assert_eq!(primary(&app), "openai/gpt-4o");
    r.poll().await;
    assert_ne!(
        primary(&app),
        "openai/gpt-4o",
        "an empty file means the defaults"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_config_restored_as_it_was_clears_the_error() {
    let text = "[agents.defaults.model]\nprimary = \"openai/gpt-4o-mini\"\n";
    let home = TestHome::new(text);
    let (app, mut r) = reloader(&home).await;
    let path = home.config_path();

    let mut latin1 = b"# caf\xe9\n".to_vec();
    latin1.extend_from_slice(text.as_bytes());
    std::fs::write(&path, &latin1).unwrap();
    r.poll().await;
    r.poll().await;
    let error = app.config_error().expect("configError").to_string();
    assert!(error.contains(&format!("{}:1", path.display())), "{error}");
    assert!(error.contains("UTF-8"), "{error}");
    assert_eq!(primary(&app), "openai/gpt-4o-mini");

    // The exact text from before the bad save: valid again.
    std::fs::write(&path, text).unwrap();
    r.poll().await;
    r.poll().await;
    assert!(app.config_error().is_none(), "{:?}", app.config_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_restarted_during_a_long_turn_answers_its_message_once() {
    let tg = FakeTelegram::start(TOKEN).await;
    let (home, llm) = prepare(&tg, "").await;
    // The turn outlasts the channel's grace: the restart cuts it off, and the
    // restarted channel answers the message from its journal — once.
    let mut text = std::fs::read_to_string(home.config_path()).unwrap();
    text.push_str("\n[gateway]\nshutdownGraceSecs = 5\n");
    std::fs::write(home.config_path(), text).unwrap();
    let gw = Binary::spawn(&home).await;
    llm.hold();
    tg.send_dm(42, "alice", "a long question");
    telegram_support::eventually("the turn reached the model", WAIT, || {
        let n = llm.requests().len();
        async move { n == 1 }
    })
    .await;
    // The Bot API root moves (same server, another name): the channel restarts.
    let root = tg.api_url();
    edit(&home, &root, &root.replace("127.0.0.1", "localhost"));
    gw.wait_for_line("restarting the Telegram channel").await;
    // A live edit during the drain applies at once, not after it.
    edit(&home, "allowFrom = [42, 43]", "allowFrom = [42, 43, 44]");
    gw.wait_for_line("did not finish its turns within 5 s")
        .await;
    let log = gw.log();
    let reloaded = log.find("config reloaded").expect("the live edit applied");
    let cut = log.find("did not finish its turns").unwrap();
    assert!(reloaded < cut, "the live edit waited for the drain:\n{log}");

    // The cut-off turn's model call answers now: nobody is left to reply with it.
    llm.release();
    telegram_support::eventually("the restarted channel asked the model again", WAIT, || {
        let n = llm.requests().len();
        async move { n == 2 }
    })
    .await;
    let reply = ask(&tg, 44, "ping").await;
    assert!(reply.contains("ping"), "{reply}");
    let to_42: Vec<_> = tg
        .sent_messages()
        .into_iter()
        .filter(|m| m.chat_id == 42)
        .collect();
    assert_eq!(to_42.len(), 1, "answered twice: {to_42:?}");
    assert!(to_42[0].text.contains("a long question"), "{to_42:?}");
}
