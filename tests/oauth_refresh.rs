//! OAuth refresh end to end (DESIGN §5a): the real binary (`remoteclaw agent --json`), a
//! loopback fake OAuth server and a fake provider. An expired access token is refreshed
//! and written back; eight processes at once make one refresh; a 401 forces one refresh
//! and one retry; a refusal disables the credential without further token requests; a
//! 500 moves the turn on and the next turn refreshes. Every output is checked for the
//! canaries the fakes put in tokens, codes and refresh tokens — at trace level too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use support::fake_oauth::{CANARY, FakeOAuth, RefreshBehavior};
use support::fake_provider::{Behavior, FakeProvider};
use support::home::{TestHome, stderr, stdout};

const PROFILE: &str = "corp:alice@example.com";

/// A home whose default model is `corp/m1` (openai-completions on the fake provider) with
/// OAuth endpoints on the fake OAuth server, and one oauth profile from a fresh login
/// whose access token expires at `expires` (ms).
fn home(oauth: &FakeOAuth, provider: &FakeProvider, expires: i64) -> (TestHome, Value) {
    let config = format!(
        r#"[agents.defaults.model]
primary = "corp/m1"

[models.providers.corp]
baseUrl = "{base}"
api = "openai-completions"

[models.providers.corp.oauth]
tokenUrl = "{token}"
clientId = "{client}"

[auth.profiles."{PROFILE}"]
provider = "corp"
mode = "oauth"
"#,
        base = provider.openai_base(),
        token = oauth.token_url(),
        client = oauth.client_id(),
    );
    let mut home = TestHome::new(&config);
    home.set("RUST_LOG", "trace");
    let tokens = oauth.mint_tokens();
    let profile = json!({
        "type": "oauth",
        "provider": "corp",
        "access": tokens.access_token,
        "refresh": tokens.refresh_token,
        "expires": expires,
        "email": "alice@example.com",
    });
    write_profiles(
        &home,
        &json!({"version": 1, "profiles": {PROFILE: profile}}),
    );
    (home, profile)
}

fn profiles_path(home: &TestHome) -> PathBuf {
    home.state_dir()
        .join("agents/main/agent/auth-profiles.json")
}

fn write_profiles(home: &TestHome, doc: &Value) {
    let path = home.write("agents/main/agent/auth-profiles.json", &doc.to_string());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn stored(home: &TestHome) -> Value {
    let text = std::fs::read_to_string(profiles_path(home)).unwrap();
    let doc: Value = serde_json::from_str(&text).expect("auth-profiles.json is valid JSON");
    doc["profiles"][PROFILE].clone()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Output of one `agent --json` run, with stdout parsed; panics if anything leaked.
async fn agent(home: &TestHome, message: &str) -> (Value, String) {
    let out = home.run(&["agent", "--message", message, "--json"]).await;
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_no_canary(&all);
    let v: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    (v, all)
}

fn assert_no_canary(text: &str) {
    assert!(
        !text.contains(CANARY),
        "a token, code or refresh token leaked into the output:\n{text}"
    );
}

fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["credential"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_before_the_turn_and_written_back() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, before) = home(&oauth, &provider, now_ms() - 60_000);

    let (v, _) = agent(&home, "hi").await;
    assert_eq!(v["reply"], "fake reply to: hi", "{v}");
    assert_eq!(v["credential"], PROFILE);
    assert_eq!(oauth.refresh_requests(), 1);

    let after = stored(&home);
    let new_access = after["access"].as_str().unwrap();
    assert_ne!(new_access, before["access"].as_str().unwrap());
    assert!(oauth.is_current_access(new_access));
    assert!(oauth.is_current_refresh(after["refresh"].as_str().unwrap()));
    assert!(after["expires"].as_i64().unwrap() > now_ms() + 30 * 60_000);
    assert_eq!(after["email"], "alice@example.com", "other fields stay");
    // The provider saw the new token, never the expired one.
    let keys: Vec<String> = provider
        .requests()
        .iter()
        .filter_map(|r| r.key.clone())
        .collect();
    assert_eq!(keys, vec![new_access.to_string()]);
    let mode = std::fs::metadata(profiles_path(&home))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A fresh token costs nothing: the next turn makes no token request.
    let (v, _) = agent(&home, "again").await;
    assert_eq!(v["reply"], "fake reply to: again");
    assert_eq!(oauth.refresh_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_at_once_make_exactly_one_refresh_request() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, _) = home(&oauth, &provider, now_ms() - 1);
    let runs: Vec<_> = (0..8)
        .map(|i| {
            home.command(&["agent", "--message", &format!("m{i}"), "--json"])
                .output()
        })
        .collect();
    let outs = futures_util::future::join_all(runs).await;
    for (i, out) in outs.iter().enumerate() {
        let out = out.as_ref().unwrap();
        let all = format!("{}{}", stdout(out), stderr(out));
        assert_no_canary(&all);
        let v: Value = serde_json::from_str(stdout(out).trim()).expect(&all);
        assert_eq!(v["reply"], format!("fake reply to: m{i}"), "{all}");
    }
    assert_eq!(
        oauth.refresh_requests(),
        1,
        "one refresh for all eight processes (a second would present a rotated token)"
    );
    let access = stored(&home)["access"].as_str().unwrap().to_string();
    assert!(oauth.is_current_access(&access));
    assert!(
        provider
            .requests()
            .iter()
            .all(|r| r.key.as_deref() == Some(&access)),
        "every process used the one refreshed token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_forces_one_refresh_and_one_retry() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    // The recorded expiry says "fresh", but the provider no longer takes the token.
    let (home, before) = home(&oauth, &provider, now_ms() + 3_600_000);
    let old = before["access"].as_str().unwrap();
    provider.script(old, [Behavior::Auth]);

    let (v, _) = agent(&home, "hi").await;
    assert_eq!(v["reply"], "fake reply to: hi", "{v}");
    assert_eq!(
        outcomes(&v),
        [
            (PROFILE.to_string(), "auth".to_string()),
            (PROFILE.to_string(), "ok".to_string())
        ]
    );
    assert_eq!(oauth.refresh_requests(), 1);
    assert_eq!(provider.request_count(), 2, "one call, one retry");
    // Not disabled: the next turn answers with the refreshed token, no refresh.
    let (v, _) = agent(&home, "again").await;
    assert_eq!(outcomes(&v), [(PROFILE.to_string(), "ok".to_string())]);
    assert_eq!(oauth.refresh_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_disables_with_refresh_failed_and_stops_token_requests() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, before) = home(&oauth, &provider, now_ms() - 1);
    oauth.script_refresh([RefreshBehavior::InvalidGrant]);

    let (v, all) = agent(&home, "hi").await;
    assert_eq!(outcomes(&v), [(PROFILE.to_string(), "auth".to_string())]);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("remoteclaw models auth login --provider corp"),
        "{error}\n{all}"
    );
    assert_eq!(oauth.refresh_requests(), 1);
    assert_eq!(provider.request_count(), 0);

    // The next turn does not ask again.
    let (v, _) = agent(&home, "again").await;
    assert!(v["error"].is_string(), "{v}");
    assert_eq!(oauth.refresh_requests(), 1, "no second token request");

    let out = home.run(&["models", "status", "--json"]).await;
    assert_no_canary(&format!("{}{}", stdout(&out), stderr(&out)));
    let status: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let c = &status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "corp")
        .unwrap()["candidates"][0];
    assert_eq!(c["health"], "disabled", "{status}");
    assert_eq!(c["reason"], "refresh_failed");

    // A new sign-in (a changed profile) makes it usable again.
    let tokens = oauth.mint_tokens();
    let mut renewed = before.clone();
    renewed["access"] = json!(tokens.access_token);
    renewed["refresh"] = json!(tokens.refresh_token);
    renewed["expires"] = json!(now_ms() + 3_600_000);
    write_profiles(
        &home,
        &json!({"version": 1, "profiles": {PROFILE: renewed}}),
    );
    let (v, _) = agent(&home, "back").await;
    assert_eq!(v["reply"], "fake reply to: back", "{v}");
}

/// DESIGN §5/§5a: a refused refresh is no reason to rotate — the turn answers "sign in
/// again" (only a network error or 5xx of the token endpoint moves on); the sign-in is
/// disabled, so the next turn starts with the other credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_is_the_answer_and_the_next_turn_starts_elsewhere() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (mut home, _) = home(&oauth, &provider, now_ms() - 1);
    home.set("CORP_API_KEY", "sk-corp-env");
    oauth.script_refresh([RefreshBehavior::InvalidGrant]);

    let (v, _) = agent(&home, "one").await;
    assert_eq!(outcomes(&v), [(PROFILE.to_string(), "auth".to_string())]);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("sign in again"), "{error}");
    assert_eq!(provider.request_count(), 0, "no other credential was tried");

    let (v, _) = agent(&home, "two").await;
    assert_eq!(v["reply"], "fake reply to: two", "{v}");
    assert_eq!(
        outcomes(&v),
        [("env:CORP_API_KEY".to_string(), "ok".to_string())]
    );
    assert_eq!(oauth.refresh_requests(), 1);
}

/// DESIGN §5a: a refused refresh disables the sign-in "until its profile changes" — a
/// pasted refresh token alone (same access token, same expiry) is such a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_refresh_token_alone_lifts_a_refresh_failed_disable() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, before) = home(&oauth, &provider, now_ms() - 1);
    oauth.script_refresh([RefreshBehavior::InvalidGrant]);
    let (v, _) = agent(&home, "one").await;
    assert!(
        v["error"].as_str().unwrap().contains("sign in again"),
        "{v}"
    );
    let (v, _) = agent(&home, "two").await;
    assert!(v["error"].is_string(), "still disabled: {v}");
    assert_eq!(
        oauth.refresh_requests(),
        1,
        "no token request while disabled"
    );

    let mut pasted = before.clone();
    pasted["refresh"] = json!(oauth.mint_tokens().refresh_token);
    write_profiles(&home, &json!({"version": 1, "profiles": {PROFILE: pasted}}));
    let (v, _) = agent(&home, "three").await;
    assert_eq!(v["reply"], "fake reply to: three", "{v}");
    assert_eq!(
        oauth.refresh_requests(),
        2,
        "the new refresh token was used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_500_moves_the_turn_on_and_the_next_turn_refreshes() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (mut home, _) = home(&oauth, &provider, now_ms() - 1);
    home.set("CORP_API_KEY", "sk-corp-env");
    oauth.script_refresh([RefreshBehavior::ServerError(500)]);

    let (v, _) = agent(&home, "one").await;
    assert_eq!(v["reply"], "fake reply to: one", "{v}");
    assert_eq!(
        outcomes(&v),
        [
            (PROFILE.to_string(), "overloaded".to_string()),
            ("env:CORP_API_KEY".to_string(), "ok".to_string())
        ]
    );
    let (v, _) = agent(&home, "two").await;
    assert_eq!(outcomes(&v), [(PROFILE.to_string(), "ok".to_string())]);
    assert_eq!(oauth.refresh_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_codex_turns_use_the_responses_api_with_the_account_header() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let config = format!(
        r#"[agents.defaults.model]
primary = "openai-codex/gpt-5.1-codex"

[models.providers.openai-codex]
baseUrl = "{base}"

[models.providers.openai-codex.oauth]
tokenUrl = "{token}"
clientId = "{client}"
"#,
        base = provider.responses_base(),
        token = oauth.token_url(),
        client = oauth.client_id(),
    );
    let mut home = TestHome::new(&config);
    home.set("RUST_LOG", "trace");
    let tokens = oauth.mint_tokens();
    write_profiles(
        &home,
        &json!({"version": 1, "profiles": {"openai-codex:alice@example.com": {
            "type": "oauth", "provider": "openai-codex",
            "access": tokens.access_token, "refresh": tokens.refresh_token,
            "expires": now_ms() - 1,
        }}}),
    );
    let (v, _) = agent(&home, "hi").await;
    assert_eq!(v["reply"], "fake reply to: hi", "{v}");
    let req = provider.requests().pop().unwrap();
    assert!(req.path.ends_with("/responses"), "{}", req.path);
    assert_eq!(
        req.header("chatgpt-account-id"),
        Some(oauth.account().account_id.as_str())
    );
    // The account id learnt from the refreshed token is kept with the profile.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(profiles_path(&home)).unwrap()).unwrap();
    assert_eq!(
        doc["profiles"]["openai-codex:alice@example.com"]["accountId"],
        oauth.account().account_id.as_str()
    );
}

/// Regression: a turn cut off by its deadline while the token endpoint was answering lost
/// the rotated refresh token (the next refresh would then be refused). The refresh now
/// finishes and saves on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_deadline_during_a_refresh_does_not_lose_the_rotated_tokens() {
    use remoteclaw::engine::TurnInput;
    use remoteclaw::providers::ChatMessage;
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, before) = home(&oauth, &provider, now_ms() - 1);
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(
        home.config_path(),
        config.replace(
            "[agents.defaults.model]",
            "[agents.defaults]\nturnTimeoutSecs = 1\n\n[agents.defaults.model]",
        ),
    )
    .unwrap();
    oauth.script_refresh([RefreshBehavior::Delay(std::time::Duration::from_millis(
        2500,
    ))]);
    let app = home.app().await;
    let result = app
        .engine
        .run_turn(
            TurnInput {
                model: None,
                pin: None,
                messages: vec![ChatMessage::user("hi")],
                agent: None,
                system: None,
            },
            None,
        )
        .await;
    let error = result
        .error
        .expect("the deadline ends the turn")
        .to_string();
    assert!(error.contains("turnTimeoutSecs"), "{error}");
    // The refresh carries on and saves the rotated tokens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let p = stored(&home);
        if p["access"] != before["access"] {
            assert!(oauth.is_current_refresh(p["refresh"].as_str().unwrap()));
            assert!(oauth.is_current_access(p["access"].as_str().unwrap()));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refreshed tokens were never saved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(oauth.refresh_requests(), 1);
}

/// Regression (audit s9 F2): two state dirs whose auth-profiles.json are symbolic links to
/// one shared file. The lock sat beside each link and the write replaced the link with a
/// regular file, so both homes refreshed with the same refresh token and the shared file
/// never got the new tokens. Now the lock and the write are at the target: one refresh
/// for all processes of both homes, both links stay links, the shared file holds the
/// rotated tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_homes_linking_one_shared_file_make_one_refresh_and_keep_the_links() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home_a, _) = home(&oauth, &provider, now_ms() - 1);
    let (home_b, _) = home(&oauth, &provider, now_ms() - 1);
    // The shared file is home A's own; both homes reach it through a link.
    let shared_dir = tempfile::tempdir().unwrap();
    let shared = shared_dir.path().join("auth-profiles.json");
    std::fs::rename(profiles_path(&home_a), &shared).unwrap();
    let links = [profiles_path(&home_a), profiles_path(&home_b)];
    std::fs::remove_file(&links[1]).unwrap();
    for link in &links {
        std::os::unix::fs::symlink(&shared, link).unwrap();
    }

    let runs: Vec<_> = (0..6)
        .map(|i| {
            let home = if i % 2 == 0 { &home_a } else { &home_b };
            home.command(&["agent", "--message", &format!("m{i}"), "--json"])
                .output()
        })
        .collect();
    for out in futures_util::future::join_all(runs).await {
        let out = out.unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_no_canary(&all);
        assert!(out.status.success(), "{all}");
    }
    assert_eq!(
        oauth.refresh_requests(),
        1,
        "one refresh across both homes (a second would present a rotated token)"
    );
    for link in &links {
        let meta = std::fs::symlink_metadata(link).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{} was replaced by a regular file",
            link.display()
        );
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&shared).unwrap()).unwrap();
    let access = doc["profiles"][PROFILE]["access"].as_str().unwrap();
    assert!(
        oauth.is_current_access(access),
        "the shared file got the new tokens"
    );
    assert!(oauth.is_current_refresh(doc["profiles"][PROFILE]["refresh"].as_str().unwrap()));
    assert!(
        provider
            .requests()
            .iter()
            .all(|r| r.key.as_deref() == Some(access)),
        "every process of both homes used the one refreshed token"
    );
}

/// Regression (audit s9 F4): after a refused refresh the later replies and `/model status`
/// said "until cleared (`remoteclaw models auth cooldown clear`)" — clearing brings back
/// a sign-in the provider refuses. Every line about a `refresh_failed` disable says
/// DESIGN §5a's "sign in again" with the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_refused_refresh_every_reply_says_sign_in_again_with_the_command() {
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, _) = home(&oauth, &provider, now_ms() - 1);
    oauth.script_refresh([RefreshBehavior::InvalidGrant]);
    let login = "sign in again: `remoteclaw models auth login --provider corp`";

    let (v, all) = agent(&home, "one").await;
    assert!(v["error"].as_str().unwrap().contains(login), "{all}");

    // The next turn: nothing usable is left.
    let (v, all) = agent(&home, "two").await;
    let error = v["error"].as_str().unwrap();
    assert!(error.contains(login), "{error}\n{all}");
    assert!(!error.contains("cooldown clear"), "{error}");

    // /model status.
    let (v, all) = agent(&home, "/model status").await;
    let reply = v["reply"].as_str().unwrap();
    let line = reply
        .lines()
        .find(|l| l.contains(PROFILE))
        .unwrap_or_else(|| panic!("{PROFILE} not in /model status:\n{reply}\n{all}"));
    assert!(line.contains("refresh_failed"), "{line}");
    assert!(line.contains(login), "{line}");
    assert!(!reply.contains("cooldown clear"), "{reply}");

    // Pinned (strict): the refusal names the sign-in, not a wait.
    let (v, all) = agent(&home, &format!("/model corp/m1@{PROFILE}")).await;
    assert!(v["error"].is_null(), "{all}");
    let (v, all) = agent(&home, "three").await;
    let error = v["error"].as_str().unwrap();
    assert!(error.contains(login), "{error}\n{all}");
    assert!(!error.contains("cooldown clear"), "{error}");
    assert!(!error.contains("Wait"), "{error}");

    // The CLI says the same, in its candidate line and the cooldown list.
    let out = home.run(&["models", "status"]).await;
    let text = stdout(&out);
    assert_no_canary(&format!("{text}{}", stderr(&out)));
    assert!(!text.contains("cooldown clear"), "{text}");
    assert!(text.contains(login), "{text}");
    let out = home.run(&["models", "auth", "cooldown", "list"]).await;
    let text = stdout(&out);
    assert!(text.contains(login), "{text}{}", stderr(&out));
    assert_eq!(oauth.refresh_requests(), 1);
}

/// Regression (audit s9 F6): a 200 token answer with `"expires_in": "3600"` (a string)
/// was taken for a transient failure and its tokens thrown away, although the server had
/// already rotated the refresh token: the next refresh was then refused. The string is
/// read as seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_answer_with_expires_in_as_a_string_is_kept() {
    let oauth = FakeOAuth::start().await;
    oauth.set_expires_in_as_string(true);
    let provider = FakeProvider::start().await;
    let (home, _) = home(&oauth, &provider, now_ms() - 1);

    let (v, all) = agent(&home, "hi").await;
    assert_eq!(v["reply"], "fake reply to: hi", "{all}");
    assert_eq!(oauth.refresh_requests(), 1);
    let after = stored(&home);
    assert!(oauth.is_current_access(after["access"].as_str().unwrap()));
    assert!(oauth.is_current_refresh(after["refresh"].as_str().unwrap()));
    let expires = after["expires"].as_i64().unwrap();
    assert!(
        expires > now_ms() + 30 * 60_000 && expires <= now_ms() + 3_600_000,
        "expires in about an hour: {expires}"
    );
    // Fresh now: no second request.
    let (v, _) = agent(&home, "again").await;
    assert_eq!(v["reply"], "fake reply to: again");
    assert_eq!(oauth.refresh_requests(), 1);
}

/// Regression (review, DESIGN §5a): the file turned corrupt during the token request,
/// so the write of the rotated tokens was refused and they were lost: not even this
/// turn used them. Now this turn and the next use them from memory (no second token
/// request), the corrupt file is left as it is, and a warning says a sign-in may be
/// needed, with no secret in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refreshed_while_the_file_turns_corrupt_are_used_from_memory() {
    use remoteclaw::engine::TurnInput;
    use remoteclaw::providers::ChatMessage;
    let oauth = FakeOAuth::start().await;
    let provider = FakeProvider::start().await;
    let (home, _) = home(&oauth, &provider, now_ms() - 1);
    oauth.script_refresh([RefreshBehavior::Delay(std::time::Duration::from_millis(
        800,
    ))]);
    let app = home.app().await;
    let input = || TurnInput {
        model: None,
        pin: None,
        messages: vec![ChatMessage::user("hi")],
        agent: None,
        system: None,
    };
    let corrupt = "{\"version\":1,\n\"profiles\":{";
    let (first, ()) = tokio::join!(app.engine.run_turn(input(), None), async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while oauth.refresh_requests() == 0 {
            assert!(std::time::Instant::now() < deadline, "no token request");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        std::fs::write(profiles_path(&home), corrupt).unwrap();
    });
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.reply, "fake reply to: hi");
    let keys = || -> Vec<String> {
        provider
            .requests()
            .iter()
            .filter_map(|r| r.key.clone())
            .collect()
    };
    assert_eq!(keys().len(), 1);
    assert!(oauth.is_current_access(&keys()[0]), "the new token is used");

    let second = app.engine.run_turn(input(), None).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(oauth.refresh_requests(), 1, "no second token request");
    assert_eq!(keys().len(), 2);
    assert!(oauth.is_current_access(&keys()[1]));
    assert_eq!(
        std::fs::read_to_string(profiles_path(&home)).unwrap(),
        corrupt,
        "the corrupt file is never written over"
    );
}
