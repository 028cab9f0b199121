//! Credential alerts (`[alerts]`, DESIGN §11) against the fake Telegram Bot API and the
//! fake Discord REST API: expiring, expired and disabled credentials and a provider with
//! nothing left each give exactly one message per state change on each target, nothing
//! is repeated by later checks, a restart or a second replica, a recovery is reported
//! once, a failed post is tried again, a turn that disables a credential is reported at
//! once, and no message holds a secret.
//!
//! Most tests drive `Alerts::check` directly, one check at a time, with a `ManualClock`
//! in the resolver (no sleeps); one runs the real binary to see the gateway start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::alerts::Alerts;
use remoteclaw::app::App;
use remoteclaw::auth::CredentialResolver;
use remoteclaw::clock::{Clock, ManualClock};
use remoteclaw::engine::{Engine, TurnInput};
use remoteclaw::providers::error::classify;
use remoteclaw::providers::{ChatMessage, Role};
use remoteclaw::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use support::fake_discord::FakeDiscord;
use support::fake_provider::{Behavior, FakeProvider};
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;
use support::redis::RedisServer;

const T0: i64 = 1_767_225_600_000; // 2026-01-01 00:00 UTC
const HOUR: i64 = 3_600_000;
const WAIT: Duration = Duration::from_secs(15);
const TG_TOKEN: &str = "123456:alerts-telegram-bot-token";
const DC_TOKEN: &str = "alerts-discord-bot-token";
const CHAT: i64 = 777;
const CHANNEL: u64 = 9001;
/// Every credential secret in these tests contains this.
const SECRET_MARK: &str = "SECRET";
const WORK_KEY: &str = "sk-ant-api03-SECRET-work-key";

struct Setup {
    tg: FakeTelegram,
    dc: FakeDiscord,
    llm: FakeProvider,
    home: TestHome,
    clock: Arc<ManualClock>,
}

/// A home on the fakes: default model on anthropic, both bot tokens configured (the
/// channels themselves disabled), `[alerts]` with both targets, `extra` TOML appended.
async fn setup(extra: &str) -> Setup {
    let tg = FakeTelegram::start(TG_TOKEN).await;
    tg.register_dm(CHAT, "ops");
    let dc = FakeDiscord::start(DC_TOKEN).await;
    dc.register_channel(CHANNEL, Some(111), 1);
    let llm = FakeProvider::start().await;
    let mut config = TestHome::config_for_fake("anthropic/claude-sonnet-4-5", &llm);
    config.push_str(&format!(
        r#"
[channels.telegram]
enabled = false
botToken = "{TG_TOKEN}"
apiRoot = "{}"

[channels.discord]
enabled = false
token = "{DC_TOKEN}"
apiBase = "{}"

[alerts]
telegramChat = {CHAT}
discordChannel = "{CHANNEL}"
{extra}"#,
        tg.api_url(),
        dc.api_base()
    ));
    Setup {
        tg,
        dc,
        llm,
        home: TestHome::new(&config),
        clock: ManualClock::new(T0),
    }
}

impl Setup {
    /// A new `App` on this home (as a new process would open it) whose resolver reads
    /// the test's clock.
    async fn app(&self) -> Arc<App> {
        let mut app = self.home.app().await;
        let clock: Arc<dyn Clock> = self.clock.clone();
        let resolver = Arc::new(CredentialResolver::new(
            app.config(),
            app.env.clone(),
            app.paths.auth_profiles(&app.agent_id),
            clock.clone(),
            app.engine.resolver.cooldowns.clone(),
        ));
        app.engine = Engine::new(app.config(), resolver, app.metrics.clone());
        app.clock = clock;
        Arc::new(app)
    }

    fn profiles(&self, json: &str) {
        self.home
            .write("agents/main/agent/auth-profiles.json", json);
    }

    /// Texts posted in the alerts chat on Telegram.
    fn telegram(&self) -> Vec<String> {
        self.tg
            .sent_messages()
            .into_iter()
            .filter(|m| m.chat_id == CHAT && !m.is_edit())
            .map(|m| m.text)
            .collect()
    }

    /// Texts posted in the alerts channel on Discord.
    fn discord(&self) -> Vec<String> {
        self.dc
            .channel_messages(CHANNEL)
            .into_iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Both targets got `expected` messages so far, the same ones in the same order
    /// (without secrets); returns them.
    fn assert_posted(&self, expected: usize) -> Vec<String> {
        let tg = self.assert_posted_in_any_order(expected);
        assert_eq!(
            tg,
            self.discord(),
            "both targets get the alerts in the same order"
        );
        tg
    }

    /// As `assert_posted`, the order aside (replicas post side by side).
    fn assert_posted_in_any_order(&self, expected: usize) -> Vec<String> {
        let tg = self.telegram();
        let mut dc = self.discord();
        assert_eq!(tg.len(), expected, "Telegram: {tg:#?}");
        let mut sorted = tg.clone();
        sorted.sort();
        dc.sort();
        assert_eq!(sorted, dc, "both targets get the same alerts");
        for t in &tg {
            assert!(!t.contains(SECRET_MARK), "a secret in an alert: {t}");
            assert!(!t.contains(TG_TOKEN) && !t.contains(DC_TOKEN), "{t}");
        }
        tg
    }
}

fn token_profiles(manual_expires: i64, old_expires: i64) -> String {
    format!(
        r#"{{"version":1,"profiles":{{
  "anthropic:manual":{{"type":"token","provider":"anthropic","token":"sk-ant-oat01-SECRET-manual-token","expires":{manual_expires}}},
  "anthropic:old":{{"type":"token","provider":"anthropic","token":"sk-ant-oat01-SECRET-old-token","expires":{old_expires}}},
  "anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}}}}}}"#
    )
}

/// Check until a check posts something (a profile file change is seen within the
/// resolver's recheck interval); panics after `WAIT`.
async fn check_until_posted(alerts: &mut Alerts) -> remoteclaw::alerts::Report {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = alerts.check().await;
        if r.posted > 0 || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_state_change_is_posted_once_on_each_target() {
    let s = setup("").await;
    s.profiles(&token_profiles(T0 + 5 * HOUR, T0 - HOUR));
    let app = s.app().await;
    let mut alerts = Alerts::new(app.clone());

    // At start: the states that already hold.
    let r = alerts.check().await;
    assert_eq!((r.posted, r.failed), (4, 0), "two states × two targets");
    let sent = s.assert_posted(2);
    assert!(
        sent[0].contains("credential anthropic:manual (anthropic token) expires at 2026-01-01 05:00 UTC (in 5h 0m)"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains(
            "`remoteclaw models auth paste-token --provider anthropic --profile-id anthropic:manual`"
        ),
        "{}",
        sent[0]
    );
    assert!(
        sent[1]
            .contains("credential anthropic:old (anthropic token) expired at 2025-12-31 23:00 UTC"),
        "{}",
        sent[1]
    );

    // Nothing changed: nothing more, however often it looks.
    for _ in 0..3 {
        assert_eq!(alerts.check().await.posted, 0);
    }
    s.assert_posted(2);

    // Time passes: expiring becomes expired.
    s.clock.advance_ms(6 * HOUR);
    assert_eq!(alerts.check().await.posted, 2);
    let sent = s.assert_posted(3);
    assert!(
        sent[2].contains("credential anthropic:manual (anthropic token) expired at 2026-01-01 05:00 UTC (1h 0m ago)"),
        "{}",
        sent[2]
    );
    assert_eq!(alerts.check().await.posted, 0);

    // The last usable key is refused: it is disabled, and anthropic has nothing left.
    let book = app.engine.resolver.cooldowns.clone();
    let refused = classify(
        "anthropic",
        Some(401),
        None,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    );
    book.record_failure(
        "anthropic:work",
        Secret::new(WORK_KEY).fingerprint(),
        "anthropic/claude-sonnet-4-5",
        &refused,
        s.clock.now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(alerts.check().await.posted, 4);
    let sent = s.assert_posted(5);
    assert!(
        sent[3].contains("credential anthropic:work (anthropic API key) is disabled until it is fixed or cleared: the provider refused it (authentication error)"),
        "{}",
        sent[3]
    );
    assert!(
        sent[3].contains("`remoteclaw models auth cooldown clear anthropic:work`"),
        "{}",
        sent[3]
    );
    assert!(
        sent[4].contains("anthropic has no usable credential left, and the default model anthropic/claude-sonnet-4-5 needs it"),
        "{}",
        sent[4]
    );
    assert!(
        sent[4].contains(
            "`remoteclaw models auth paste-token --provider anthropic`, or set ANTHROPIC_API_KEY"
        ),
        "{}",
        sent[4]
    );
    assert_eq!(alerts.check().await.posted, 0);
    s.assert_posted(5);

    // The operator clears it: both recoveries, once.
    book.clear(Some("anthropic:work")).await.unwrap();
    assert_eq!(alerts.check().await.posted, 4);
    let sent = s.assert_posted(7);
    assert_eq!(
        sent[5],
        "✅ RemoteClaw: credential anthropic:work (anthropic API key) is usable again (static)."
    );
    assert_eq!(
        sent[6],
        "✅ RemoteClaw: anthropic has a usable credential again (next: anthropic:work)."
    );
    assert_eq!(alerts.check().await.posted, 0);

    // A fresh token under the old id: its recovery, once; then a later problem alerts again.
    s.profiles(&token_profiles(T0 - HOUR, T0 + 30 * 24 * HOUR));
    assert_eq!(check_until_posted(&mut alerts).await.posted, 2);
    let sent = s.assert_posted(8);
    assert_eq!(
        sent[7],
        "✅ RemoteClaw: credential anthropic:old (anthropic token) is usable again (ok)."
    );
    assert_eq!(alerts.check().await.posted, 0);
    s.clock.advance_ms(30 * 24 * HOUR - 8 * HOUR); // 2 h before its expiry
    assert_eq!(alerts.check().await.posted, 2);
    let sent = s.assert_posted(9);
    assert!(
        sent[8].contains("anthropic:old (anthropic token) expires at"),
        "{}",
        sent[8]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_repeat_what_was_posted() {
    let s = setup("").await;
    s.profiles(&token_profiles(T0 + 5 * HOUR, T0 - HOUR));
    {
        let mut alerts = Alerts::new(s.app().await);
        assert_eq!(alerts.check().await.posted, 4);
    }
    s.assert_posted(2);
    // A new process on the same state dir: the store remembers.
    let mut alerts = Alerts::new(s.app().await);
    assert_eq!(alerts.check().await.posted, 0);
    s.assert_posted(2);
    // It still reports what changes.
    s.clock.advance_ms(6 * HOUR);
    assert_eq!(alerts.check().await.posted, 2);
    s.assert_posted(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_is_not_marked_and_goes_at_the_next_check() {
    let s = setup("").await;
    s.profiles(&token_profiles(T0 + 30 * 24 * HOUR, T0 - HOUR));
    // (A 403, as when the bot was blocked: teloxide pauses 10 s after a 5xx.)
    s.tg.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user");
    let mut alerts = Alerts::new(s.app().await);
    let r = alerts.check().await;
    assert_eq!(
        (r.posted, r.failed),
        (1, 1),
        "Discord got it, Telegram failed"
    );
    assert!(s.telegram().is_empty());
    assert_eq!(s.discord().len(), 1);
    let r = alerts.check().await;
    assert_eq!(
        (r.posted, r.failed),
        (1, 0),
        "Telegram again; Discord not twice"
    );
    s.assert_posted(1);
    assert_eq!(alerts.check().await, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_a_bot_token_is_skipped_and_the_other_still_posts() {
    let s = setup("").await;
    // No Telegram token anywhere (not in the config, not in the environment): fine at
    // load, warned about at start, and Discord still gets every alert.
    let config = std::fs::read_to_string(s.home.config_path())
        .unwrap()
        .replace(&format!("botToken = \"{TG_TOKEN}\"\n"), "");
    std::fs::write(s.home.config_path(), config).unwrap();
    s.profiles(&token_profiles(T0 + 30 * 24 * HOUR, T0 - HOUR));
    let mut alerts = Alerts::new(s.app().await);
    let r = alerts.check().await;
    assert_eq!((r.posted, r.failed), (1, 0));
    assert!(s.telegram().is_empty());
    assert_eq!(s.discord().len(), 1, "{:?}", s.discord());
    assert!(s.tg.calls().is_empty(), "no call without a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_goes_away_is_forgotten_quietly_and_alerts_again_when_back() {
    let s = setup("").await;
    let app = s.app().await;
    s.profiles(&token_profiles(T0 + 30 * 24 * HOUR, T0 - HOUR));
    let mut alerts = Alerts::new(app.clone());
    assert_eq!(alerts.check().await.posted, 2);
    s.assert_posted(1);
    // anthropic:old is removed from the file: no message, and the store forgets it.
    s.profiles(&format!(
        r#"{{"version":1,"profiles":{{"anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}}}}}}"#
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert_eq!(alerts.check().await.posted, 0);
        let left = app.stores.alerts.load().await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.assert_posted(1);
    // Back, still expired: reported again.
    s.profiles(&token_profiles(T0 + 30 * 24 * HOUR, T0 - HOUR));
    assert_eq!(check_until_posted(&mut alerts).await.posted, 2);
    let sent = s.assert_posted(2);
    assert_eq!(sent[0], sent[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_in_use_without_credentials_is_reported_and_its_recovery() {
    // openai is the fallback; nothing for it at all.
    let s = setup("").await;
    let config = std::fs::read_to_string(s.home.config_path())
        .unwrap()
        .replace(
            "primary = \"anthropic/claude-sonnet-4-5\"",
            "primary = \"anthropic/claude-sonnet-4-5\"\nfallbacks = [\"openai/gpt-4o-mini\"]",
        );
    std::fs::write(s.home.config_path(), config).unwrap();
    s.profiles(&format!(
        r#"{{"version":1,"profiles":{{"anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}}}}}}"#
    ));
    let mut alerts = Alerts::new(s.app().await);
    assert_eq!(alerts.check().await.posted, 2);
    let sent = s.assert_posted(1);
    assert_eq!(
        sent[0],
        "🚨 RemoteClaw: openai has no usable credential left, and the fallback model openai/gpt-4o-mini needs it: turns on openai fail. It has no credentials at all. Next step: `remoteclaw models auth paste-token --provider openai`, or set OPENAI_API_KEY and restart the gateway (`remoteclaw models status` shows the details)."
    );
    assert_eq!(alerts.check().await.posted, 0);
    s.profiles(&format!(
        r#"{{"version":1,"profiles":{{"anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}},
            "openai:team":{{"type":"api_key","provider":"openai","key":"sk-SECRET-openai-team"}}}}}}"#
    ));
    assert_eq!(check_until_posted(&mut alerts).await.posted, 2);
    let sent = s.assert_posted(2);
    assert_eq!(
        sent[1],
        "✅ RemoteClaw: openai has a usable credential again (next: openai:team)."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_disables_a_credential_is_reported_at_once() {
    let mut s = setup("").await;
    // One environment key for anthropic, and a token for openai that expires soon (so
    // the first check posts something and we know it ran).
    s.home
        .set("ANTHROPIC_API_KEY", "sk-ant-api03-SECRET-env-key");
    s.profiles(&format!(
        r#"{{"version":1,"profiles":{{"openai:manual":{{"type":"token","provider":"openai","token":"sk-SECRET-openai","expires":{}}}}}}}"#,
        T0 + HOUR
    ));
    s.llm
        .script("sk-ant-api03-SECRET-env-key", [Behavior::Auth]);
    let app = s.app().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The timed check is an hour away: only the turn's signal can bring the next one.
    let task = tokio::spawn(Alerts::new(app.clone()).run(Duration::from_secs(3600), stop_rx));
    s.tg.wait_for_messages(1, WAIT).await;
    let _ = s.dc.wait_for_channel_messages(CHANNEL, 1, WAIT).await;
    s.assert_posted(1);

    let turn = app
        .engine
        .run_turn(
            TurnInput {
                model: None,
                pin: None,
                messages: vec![ChatMessage {
                    role: Role::User,
                    content: "hello".into(),
                    images: Vec::new(),
                }],
                agent: None,
                system: None,
            },
            None,
        )
        .await;
    assert!(turn.error.is_some(), "the key was refused");
    s.tg.wait_for_messages(3, WAIT).await;
    let _ = s.dc.wait_for_channel_messages(CHANNEL, 3, WAIT).await;
    let sent = s.assert_posted(3);
    assert!(
        sent[1].starts_with("⚠️ RemoteClaw: anthropic key env:ANTHROPIC_API_KEY (environment variable ANTHROPIC_API_KEY) is disabled until it is fixed or cleared"),
        "{}",
        sent[1]
    );
    assert!(
        sent[1].contains("set ANTHROPIC_API_KEY to a working key"),
        "{}",
        sent[1]
    );
    assert!(
        sent[2].contains("anthropic has no usable credential left"),
        "{}",
        sent[2]
    );
    stop_tx.send(true).unwrap();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_post_each_alert_once() {
    let server = RedisServer::start();
    let s = setup(&format!(
        "\n[session]\nstore = \"redis\"\nredisUrl = \"{}\"\nredisPrefix = \"alerts-test:\"\n",
        server.url()
    ))
    .await;
    s.profiles(&token_profiles(T0 + 5 * HOUR, T0 - HOUR));
    let mut a = Alerts::new(s.app().await);
    let mut b = Alerts::new(s.app().await);
    let (ra, rb) = tokio::join!(a.check(), b.check());
    assert_eq!(ra.posted + rb.posted, 4, "{ra:?} {rb:?}");
    s.assert_posted_in_any_order(2);
    let (ra, rb) = tokio::join!(a.check(), b.check());
    assert_eq!(ra.posted + rb.posted, 0);
    s.clock.advance_ms(6 * HOUR);
    let (ra, rb) = tokio::join!(a.check(), b.check());
    assert_eq!(ra.posted + rb.posted, 2, "{ra:?} {rb:?}");
    s.assert_posted_in_any_order(3);
    // A restarted replica remembers through Redis.
    let mut c = Alerts::new(s.app().await);
    assert_eq!(c.check().await.posted, 0);
    s.assert_posted_in_any_order(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_posts_alerts_for_what_holds_at_start() {
    let s = setup("").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    s.profiles(&format!(
        r#"{{"version":1,"profiles":{{"anthropic:manual":{{"type":"token","provider":"anthropic","token":"sk-ant-oat01-SECRET-manual","expires":{}}}}}}}"#,
        now - HOUR
    ));
    let (mut child, _addr) = support::gateway::spawn_binary(&s.home).await;
    s.tg.wait_for_messages(2, WAIT).await;
    let _ = s.dc.wait_for_channel_messages(CHANNEL, 2, WAIT).await;
    let sent = s.assert_posted(2);
    assert!(
        sent[0].contains("credential anthropic:manual (anthropic token) expired at"),
        "{}",
        sent[0]
    );
    assert!(
        sent[1].contains("anthropic has no usable credential left"),
        "{}",
        sent[1]
    );
    let _ = child.kill().await;
}
