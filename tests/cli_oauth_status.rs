//! `models status`, `models status --probe`, `doctor` and `onboard` with OAuth sign-ins
//! (DESIGN §5a, §6), through the real binary: the provider's token endpoint is the
//! loopback fake OAuth server and its API the loopback fake provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use support::fake_oauth::{CANARY, FakeOAuth, RefreshBehavior};
use support::fake_provider::{Behavior, FakeProvider};
use support::home::{TestHome, stderr, stdout};

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Provider `corp` (OpenAI-compatible at `base`) as the default model's provider, with
/// OAuth endpoints at the fake when given.
fn config(base: &str, oauth: Option<&FakeOAuth>) -> String {
    let mut c = format!(
        r#"[agents.defaults.model]
primary = "corp/m1"

[models.providers.corp]
baseUrl = "{base}"
api = "openai-completions"
"#
    );
    if let Some(o) = oauth {
        c.push_str(&format!(
            "\n[models.providers.corp.oauth]\ntokenUrl = \"{}\"\nclientId = \"{}\"\n",
            o.token_url(),
            o.client_id()
        ));
    }
    c
}

fn profiles_path(h: &TestHome) -> PathBuf {
    h.state_dir().join("agents/main/agent/auth-profiles.json")
}

fn write_profiles(h: &TestHome, profiles: Value) {
    let doc = json!({"version": 1, "profiles": profiles});
    h.write("agents/main/agent/auth-profiles.json", &doc.to_string());
}

fn oauth_profile(access: &str, refresh: Option<&str>, expires: i64) -> Value {
    let mut p = json!({"type": "oauth", "provider": "corp", "access": access, "expires": expires});
    if let Some(r) = refresh {
        p["refresh"] = json!(r);
    }
    p
}

fn candidate<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["candidates"].as_array().unwrap())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no candidate {id} in {status}"))
}

fn probe<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no probe of {id} in {status}"))
}

async fn status_json(h: &TestHome, extra: &[&str]) -> (Value, std::process::Output) {
    let mut args = vec!["models", "status", "--json"];
    args.extend_from_slice(extra);
    let out = h.run(&args).await;
    let v = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    (v, out)
}

fn no_canary(out: &std::process::Output) {
    assert!(
        !stdout(out).contains(CANARY) && !stderr(out).contains(CANARY),
        "a token leaked: {} {}",
        stdout(out),
        stderr(out)
    );
}

/// The issue's bug: an expired access token with a refresh token counted as expired.
#[tokio::test]
async fn check_exits_0_for_an_expired_but_refreshable_oauth_sign_in() {
    let oauth = FakeOAuth::start().await;
    let h = TestHome::new(&config("http://127.0.0.1:9/v1", Some(&oauth)));
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile("acc-1", Some("ref-1"), now_ms() - HOUR)}),
    );
    let out = h.run(&["models", "status", "--check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("access token expired, refreshes on next use"),
        "{}",
        stdout(&out)
    );
    let (v, _) = status_json(&h, &[]).await;
    let c = candidate(&v, "corp:me");
    assert_eq!(
        (c["health"].as_str(), c["reason"].as_str()),
        (Some("ok"), None)
    );
    // The schema of a candidate is the contract's, nothing added.
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "fingerprint",
            "health",
            "id",
            "kind",
            "reason",
            "source",
            "until"
        ]
    );
}

#[tokio::test]
async fn check_exits_1_for_an_expired_oauth_sign_in_without_refresh_token() {
    let h = TestHome::new(&config("http://127.0.0.1:9/v1", None));
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile("acc-1", None, now_ms() - HOUR)}),
    );
    let out = h.run(&["models", "status", "--check"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "no refresh token: sign in again now: `remoteclaw models auth login --provider corp`"
        ),
        "{}",
        stdout(&out)
    );
    let (v, _) = status_json(&h, &[]).await;
    assert_eq!(candidate(&v, "corp:me")["health"], "expired");
}

#[tokio::test]
async fn status_says_when_a_fresh_access_token_refreshes_itself() {
    let oauth = FakeOAuth::start().await;
    let h = TestHome::new(&config("http://127.0.0.1:9/v1", Some(&oauth)));
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile("acc-1", Some("ref-1"), now_ms() + 2 * HOUR + 30_000)}),
    );
    let out = h.run(&["models", "status"]).await;
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("access token expires in 2h"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with(", refreshes itself"), "{line}");
    assert_eq!(oauth.refresh_requests(), 0, "status alone never refreshes");
}

/// Before: a probe sent the expired access token as it was and never refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_of_a_due_oauth_token_refreshes_first_and_saves_it_0600() {
    let oauth = FakeOAuth::start().await;
    let fake = FakeProvider::start().await;
    let h = TestHome::new(&config(&fake.openai_base(), Some(&oauth)));
    let minted = oauth.mint_tokens();
    // Due: it expires within the 5 minutes a refresh runs ahead.
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile(&minted.access_token, Some(&minted.refresh_token), now_ms() + 60_000)}),
    );
    let (v, out) = status_json(&h, &["--probe"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(probe(&v, "corp:me")["outcome"], "ok", "{v}");
    assert_eq!(oauth.refresh_requests(), 1, "exactly one refresh");

    let fresh = oauth.access_tokens_issued().last().cloned().unwrap();
    assert_ne!(fresh, minted.access_token);
    assert_eq!(
        fake.requests_for_key(&fresh).len(),
        1,
        "probed with the new token"
    );
    assert!(fake.requests_for_key(&minted.access_token).is_empty());
    let path = profiles_path(&h);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let p = &saved["profiles"]["corp:me"];
    assert_eq!(p["access"], fresh.as_str());
    assert_eq!(
        p["refresh"],
        oauth.refresh_tokens_issued().last().unwrap().as_str()
    );
    assert!(p["expires"].as_i64().unwrap() > now_ms() + 50 * 60_000);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "auth-profiles.json mode {mode:o}");
    no_canary(&out);

    // Now fresh: the next probe makes no token request.
    let (v, out) = status_json(&h, &["--probe"]).await;
    assert_eq!(probe(&v, "corp:me")["outcome"], "ok", "{v}");
    assert_eq!(oauth.refresh_requests(), 1);
    no_canary(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refreshes_once_after_a_401_and_retries_with_the_new_token() {
    let oauth = FakeOAuth::start().await;
    let fake = FakeProvider::start().await;
    let h = TestHome::new(&config(&fake.openai_base(), Some(&oauth)));
    let minted = oauth.mint_tokens();
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile(&minted.access_token, Some(&minted.refresh_token), now_ms() + 10 * HOUR)}),
    );
    // The local expiry looks fine, but the provider turns the token away.
    fake.script(&minted.access_token, [Behavior::Auth]);
    let (v, out) = status_json(&h, &["--probe"]).await;
    assert_eq!(probe(&v, "corp:me")["outcome"], "ok", "{v}");
    assert_eq!(oauth.refresh_requests(), 1);
    let fresh = oauth.access_tokens_issued().last().cloned().unwrap();
    assert_eq!(fake.requests_for_key(&minted.access_token).len(), 1);
    assert_eq!(fake.requests_for_key(&fresh).len(), 1);
    assert_eq!(candidate(&v, "corp:me")["health"], "ok");
    no_canary(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refused_refresh_disables_the_sign_in_with_the_login_hint() {
    let oauth = FakeOAuth::start().await;
    let fake = FakeProvider::start().await;
    let h = TestHome::new(&config(&fake.openai_base(), Some(&oauth)));
    let minted = oauth.mint_tokens();
    write_profiles(
        &h,
        json!({"corp:me": oauth_profile(&minted.access_token, Some(&minted.refresh_token), now_ms() - HOUR)}),
    );
    oauth.script_refresh([RefreshBehavior::InvalidGrant]);
    let (v, out) = status_json(&h, &["--probe"]).await;
    let p = probe(&v, "corp:me");
    assert_eq!(p["outcome"], "refresh_failed", "{v}");
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("sign in again: `remoteclaw models auth login --provider corp`"),
        "{p}"
    );
    assert_eq!(oauth.refresh_requests(), 1);
    assert_eq!(fake.request_count(), 0, "no call with the expired token");
    // Recorded like a turn records it: disabled, reason refresh_failed.
    let c = candidate(&v, "corp:me");
    assert_eq!(
        (c["health"].as_str(), c["reason"].as_str()),
        (Some("disabled"), Some("refresh_failed"))
    );
    no_canary(&out);

    let out = h.run(&["models", "status"]).await;
    assert!(
        stdout(&out).contains("sign in again: `remoteclaw models auth login --provider corp`"),
        "{}",
        stdout(&out)
    );
    let out = h.run(&["models", "status", "--check"]).await;
    assert_eq!(out.status.code(), Some(1), "corp has nothing usable left");

    // A second probe does not present the refused refresh token again.
    let (v, _) = status_json(&h, &["--probe"]).await;
    assert_eq!(probe(&v, "corp:me")["outcome"], "refresh_failed");
    assert_eq!(oauth.refresh_requests(), 1, "no further token request");

    let out = h.run(&["doctor", "--json"]).await;
    let d: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let f = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "credential_disabled")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("corp:me is disabled: corp refused to refresh its sign-in"),
        "{f}"
    );
    assert!(
        !f["message"].as_str().unwrap().contains("cooldown clear"),
        "{f}"
    );
    assert_eq!(
        f["fix"],
        "sign in again: `remoteclaw models auth login --provider corp`"
    );
    no_canary(&out);
}

#[tokio::test]
async fn doctor_flags_oauth_sign_ins_that_cannot_renew() {
    let oauth = FakeOAuth::start().await;
    let mut cfg = config("http://127.0.0.1:9/v1", Some(&oauth));
    cfg.push_str("\n[models.providers.legacy]\nbaseUrl = \"http://127.0.0.1:9/v1\"\napi = \"openai-completions\"\n");
    let h = TestHome::new(&cfg);
    let now = now_ms();
    let mut legacy = oauth_profile("acc-3", Some("ref-3"), now + 2 * HOUR);
    legacy["provider"] = json!("legacy");
    write_profiles(
        &h,
        json!({
            "corp:soon": oauth_profile("acc-1", None, now + 2 * HOUR),
            "corp:gone": oauth_profile("acc-2", None, now - HOUR),
            "corp:renews": oauth_profile("acc-4", Some("ref-4"), now - HOUR),
            "legacy:me": legacy,
        }),
    );
    let out = h.run(&["doctor", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let d: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = d["findings"].as_array().unwrap();
    let about = |id: &str, profile: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id && f["message"].as_str().unwrap().contains(profile))
            .unwrap_or_else(|| panic!("no {id} for {profile}: {d}"))
            .clone()
    };
    let login = "`remoteclaw models auth login --provider corp`";

    let f = about("profile_expiring", "\"corp:soon\"");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("has no refresh token"),
        "{f}"
    );
    assert_eq!(f["fix"], format!("sign in again before then: {login}"));

    let f = about("profile_expired", "\"corp:gone\"");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["fix"], format!("sign in again: {login}"));

    let f = about("oauth_cannot_refresh", "\"legacy:me\"");
    assert_eq!(f["severity"], "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("cannot refresh: legacy has no OAuth endpoints"),
        "{f}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("[models.providers.legacy.oauth]")
    );

    // A sign-in that renews itself is not a problem, expired access token or not.
    assert!(
        !findings.iter().any(
            |f| f["message"].as_str().unwrap().contains("\"corp:renews\"")
                && f["severity"] != "ok"
                && f["severity"] != "info"
        ),
        "{d}"
    );
}

#[tokio::test]
async fn non_interactive_onboard_points_a_subscription_provider_at_login() {
    let h = TestHome::new("");
    let out = h
        .run(&["onboard", "--non-interactive", "--provider", "openai-codex"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`remoteclaw models auth login --provider openai-codex`"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["onboard", "--help"]).await;
    for p in ["openai-codex", "qwen-portal", "models auth login"] {
        assert!(stdout(&out).contains(p), "{p} in {}", stdout(&out));
    }
}
