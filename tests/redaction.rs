//! Secrets never reach the logs (DESIGN §8, STYLE habit 4): the real `remoteclaw gateway`
//! binary runs at `RUST_LOG=trace` with canary secrets in every place a secret lives —
//! the Telegram and Discord bot tokens, the gateway token, provider keys from an auth
//! profile, the environment and the config — and serves real traffic through the loopback
//! fakes (a Telegram DM, a Discord DM, the HTTP API with right and wrong tokens, a
//! provider error that quotes the key). Nothing it wrote may contain a canary.
//!
//! Also: `Debug` of the whole runtime (`App`) shows no secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::fake_discord::FakeDiscord;
use support::fake_provider::{Behavior, FakeProvider};
use support::fake_telegram::FakeTelegram;
use support::home::TestHome;

const WAIT: Duration = Duration::from_secs(20);
const TG_TOKEN: &str = "777000:CANARYtelegramTOKENxyz";
const DC_TOKEN: &str = "CANARY.discord.TOKEN.xyz";
const GW_TOKEN: &str = "CANARY-gateway-token-xyz";
const PROFILE_KEY: &str = "sk-ant-CANARY-profile-key";
const ENV_KEY: &str = "sk-ant-CANARY-env-key";
const CONFIG_KEY: &str = "sk-CANARY-config-key";
const DM_CHANNEL: u64 = 5001;

fn canaries() -> [&'static str; 6] {
    [
        TG_TOKEN,
        DC_TOKEN,
        GW_TOKEN,
        PROFILE_KEY,
        ENV_KEY,
        CONFIG_KEY,
    ]
}

fn assert_clean(what: &str, text: &str) {
    for c in canaries() {
        assert!(
            !text.contains(c),
            "{what} shows the secret {c}:\n{}",
            text.lines()
                .filter(|l| l.contains(c))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The distinctive middle of each canary (a partial quote is a leak too).
    for part in [
        "CANARYtelegram",
        "CANARY.discord",
        "CANARY-gateway",
        "CANARY-profile",
        "CANARY-env",
        "CANARY-config",
    ] {
        assert!(
            !text.contains(part),
            "{what} shows part of a secret ({part})"
        );
    }
}

fn home(llm: &FakeProvider, tg: &FakeTelegram, dc: &FakeDiscord) -> TestHome {
    let config = format!(
        r#"[agents.defaults.model]
primary = "anthropic/claude-sonnet-4-5"

[models.providers.anthropic]
baseUrl = "{anthropic}"

[models.providers.openai]
baseUrl = "{openai}"
apiKey = "{CONFIG_KEY}"

[channels.telegram]
enabled = true
apiRoot = "{tg}"
allowFrom = [42]

[channels.discord]
enabled = true
apiBase = "{dc}"
allowFrom = ["222"]

[gateway.auth]
token = "{GW_TOKEN}"
"#,
        anthropic = llm.anthropic_base(),
        openai = llm.openai_base(),
        tg = tg.api_url(),
        dc = dc.api_base(),
    );
    let mut home = TestHome::new(&config);
    home.set("TELEGRAM_BOT_TOKEN", TG_TOKEN)
        .set("DISCORD_BOT_TOKEN", DC_TOKEN)
        .set("ANTHROPIC_API_KEY", ENV_KEY)
        .set("RUST_LOG", "trace")
        .set("NO_COLOR", "1");
    home.write(
        "agents/main/agent/auth-profiles.json",
        &json!({"version": 1, "profiles": {"anthropic:work": {"type": "api_key", "provider": "anthropic", "key": PROFILE_KEY}}})
            .to_string(),
    );
    home
}

/// Wait until `path` holds a line saying where the gateway listens.
async fn listening_addr(path: &std::path::Path) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(rest) = log.split("listening on http://").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the gateway starts listening")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_the_gateway_under_real_traffic_show_no_secret() {
    let llm = FakeProvider::start().await;
    let tg = FakeTelegram::start(TG_TOKEN).await;
    let dc = FakeDiscord::start(DC_TOKEN).await;
    let home = home(&llm, &tg, &dc);
    let log_path = home.dir.path().join("gateway.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = home
        .command(&["gateway", "--port", "0"])
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let addr = listening_addr(&log_path).await;
    let http = reqwest::Client::new();

    // Telegram: a DM answered by the profile's key (streamed: sent, then edited).
    tg.send_dm(42, "alice", "hello from telegram");
    let want = "fake reply to: hello from telegram";
    let sent = tg
        .wait_for_sent(WAIT, |s| s.last().is_some_and(|m| m.text == want))
        .await;
    assert_eq!(sent.last().unwrap().text, want);

    // Discord: a DM answered.
    assert!(dc.wait_ready(WAIT).await, "Discord connects");
    dc.register_channel(DM_CHANNEL, None, 222);
    dc.send_message(DM_CHANNEL, None, 222, "bob", "hello from discord", false);
    let want = "fake reply to: hello from discord";
    let deadline = tokio::time::Instant::now() + WAIT;
    while dc
        .channel_messages(DM_CHANNEL)
        .first()
        .map(|m| m["content"].clone())
        != Some(json!(want))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Discord reply ends whole"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // HTTP: right token, wrong token, and a provider error that quotes the key.
    let url = format!("http://{addr}/v1/chat/completions");
    let body = json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "hi"}]});
    let ok = http
        .post(&url)
        .bearer_auth(GW_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = http
        .post(&url)
        .bearer_auth("wrong-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    llm.script(
        PROFILE_KEY,
        [Behavior::InvalidRequest(format!(
            "invalid request for key {PROFILE_KEY}"
        ))],
    );
    let failed = http
        .post(&url)
        .bearer_auth(GW_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(!failed.status().is_success());
    assert_clean("the HTTP error reply", &failed.text().await.unwrap());
    // The OpenAI provider, whose key comes from the config.
    let openai =
        json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let r = http
        .post(&url)
        .bearer_auth(GW_TOKEN)
        .json(&openai)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Stop the gateway the way an operator does, so shutdown logs are in too.
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    let _ = child.start_kill();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("TRACE") && log.contains("turn answered"),
        "the log is the trace of real traffic:\n{}",
        &log[..log.len().min(2000)]
    );
    assert_clean("the gateway's trace log", &log);
    // The keys really were used on the wire.
    assert!(
        llm.requests()
            .iter()
            .any(|r| r.key.as_deref() == Some(PROFILE_KEY))
    );
    assert!(
        llm.requests()
            .iter()
            .any(|r| r.key.as_deref() == Some(CONFIG_KEY))
    );
}

#[tokio::test]
async fn debug_of_the_runtime_shows_no_secret() {
    let llm = FakeProvider::start().await;
    let tg = FakeTelegram::start(TG_TOKEN).await;
    let dc = FakeDiscord::start(DC_TOKEN).await;
    let home = home(&llm, &tg, &dc);
    let app = home.app().await;
    // Resolve once so every cache (profiles, env keys) is filled.
    let res = app
        .engine
        .resolver
        .resolve("anthropic", "anthropic/claude-sonnet-4-5", None)
        .await
        .unwrap();
    let shown = format!("{app:?}\n{app:#?}\n{res:?}");
    assert_clean("Debug of the App", &shown);
}
