//! `remoteclaw models auth login|logout` end to end (DESIGN §5a) against the loopback
//! fake OAuth server: authorization code + PKCE through the loopback callback (a wrong
//! state is refused and its code never exchanged), the pasted redirect and the bare
//! code, the device grant (in the binary, and in-process on paused time for
//! `slow_down`), two accounts under two ids, and logout with revocation. No output ever
//! carries a token, code or verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use support::fake_oauth::{CANARY, DEVICE_GRANT, DeviceStep, FakeOAuth};
use support::home::TestHome;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The OAuth endpoints of a provider `corp` whose device sign-in goes to `oauth`.
fn device_endpoints(oauth: &FakeOAuth) -> remoteclaw::oauth::preset::Endpoints {
    let config = remoteclaw::config::parse(
        std::path::Path::new("t.toml"),
        &format!(
            r#"[models.providers.corp]
baseUrl = "http://127.0.0.1:9/v1"
api = "openai-completions"
[models.providers.corp.oauth]
tokenUrl = "{}"
deviceAuthorizationUrl = "{}"
clientId = "{}"
"#,
            oauth.token_url(),
            oauth.device_authorization_url(),
            oauth.client_id()
        ),
    )
    .unwrap();
    remoteclaw::oauth::preset::Endpoints::of(&config, "corp").unwrap()
}

fn home(oauth: &FakeOAuth) -> TestHome {
    let config = format!(
        r#"[models.providers.corp]
baseUrl = "http://127.0.0.1:9/v1"
api = "openai-completions"

[models.providers.corp.oauth]
authorizeUrl = "{authorize}"
tokenUrl = "{token}"
deviceAuthorizationUrl = "{device}"
revokeUrl = "{revoke}"
clientId = "{client}"
scopes = ["openid", "email", "offline_access"]
redirectPort = 0
"#,
        authorize = oauth.authorize_url(),
        token = oauth.token_url(),
        device = oauth.device_authorization_url(),
        revoke = oauth.revoke_url(),
        client = oauth.client_id(),
    );
    let mut home = TestHome::new(&config);
    home.set("RUST_LOG", "trace");
    home
}

fn profiles(home: &TestHome) -> Value {
    let path = home
        .state_dir()
        .join("agents/main/agent/auth-profiles.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A running `login` whose stdout is read line by line (and kept for the leak check).
struct Login {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: String,
}

impl Login {
    fn start(home: &TestHome, extra: &[&str]) -> Login {
        let mut args = vec!["models", "auth", "login", "--provider", "corp"];
        args.extend_from_slice(extra);
        let mut child = home
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Login {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// The authorize URL the command printed.
    async fn url(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
                .await
                .expect("the login prints its URL")
                .unwrap()
                .expect("stdout open");
            self.seen.push_str(&line);
            self.seen.push('\n');
            if let Some(u) = line.trim().strip_prefix("http")
                && line.contains("/authorize?")
            {
                return format!("http{u}");
            }
        }
    }

    /// Wait for the exit; everything it printed, checked for leaks.
    async fn finish(mut self) -> (bool, String) {
        while let Ok(Some(line)) = self.lines.next_line().await {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let out = self.child.wait_with_output().await.unwrap();
        let all = format!("{}{}", self.seen, String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(CANARY), "a secret leaked:\n{all}");
        (out.status.success(), all)
    }
}

/// Follow the authorize URL to the fake's redirect: the callback URL with code and state.
async fn authorize(url: &str) -> String {
    let resp = no_redirects().get(url).send().await.unwrap();
    assert_eq!(
        resp.status(),
        302,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    resp.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_login_through_the_loopback_callback_refuses_a_wrong_state() {
    let oauth = FakeOAuth::start().await;
    let home = home(&oauth);
    let mut login = Login::start(&home, &[]);
    let url = login.url().await;
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let callback = authorize(&url).await;
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");

    // A forged callback (another state) is refused and its code never exchanged.
    let base = callback.split('?').next().unwrap();
    let forged = no_redirects()
        .get(format!("{base}?code=stolen&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().await.unwrap().contains("not accepted"));

    let ok = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("Signed in"));
    let (success, all) = login.finish().await;
    assert!(success, "{all}");
    assert!(all.contains("corp:alice@example.com"), "{all}");
    assert_eq!(
        oauth.grant_count("authorization_code"),
        1,
        "only the real code"
    );

    let p = &profiles(&home)["profiles"]["corp:alice@example.com"];
    assert_eq!(p["type"], "oauth");
    assert_eq!(p["email"], "alice@example.com");
    assert!(oauth.is_current_access(p["access"].as_str().unwrap()));
    assert!(oauth.is_current_refresh(p["refresh"].as_str().unwrap()));
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(
        config.contains("[auth.profiles.\"corp:alice@example.com\"]")
            && config.contains("mode = \"oauth\""),
        "{config}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_redirect_and_bare_code_sign_in_two_accounts_under_two_ids() {
    let oauth = FakeOAuth::start().await;
    let home = home(&oauth);

    // Alice pastes the whole address the browser ended on.
    let mut login = Login::start(&home, &["--no-browser"]);
    let callback = authorize(&login.url().await).await;
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{callback}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let (success, all) = login.finish().await;
    assert!(success, "{all}");

    // Bob pastes just the code.
    oauth.set_account("bob@example.com", "acct-bob");
    let mut login = Login::start(&home, &["--no-browser"]);
    let callback = authorize(&login.url().await).await;
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{code}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let (success, all) = login.finish().await;
    assert!(success, "{all}");

    let doc = profiles(&home);
    let alice = &doc["profiles"]["corp:alice@example.com"];
    let bob = &doc["profiles"]["corp:bob@example.com"];
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(bob["email"], "bob@example.com");
    assert_ne!(
        alice["access"], bob["access"],
        "the second account did not overwrite the first"
    );

    // A pasted address from another sign-in (wrong state) is refused.
    let mut login = Login::start(&home, &["--no-browser"]);
    let callback = authorize(&login.url().await).await;
    let forged = callback.replace("state=", "state=x");
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{forged}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let (success, all) = login.finish().await;
    assert!(!success, "{all}");
    assert!(all.contains("state does not match"), "{all}");
    assert_eq!(oauth.grant_count("authorization_code"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_through_the_binary_then_logout_revokes() {
    let oauth = FakeOAuth::start().await;
    oauth.set_device_interval(1);
    oauth.script_device([DeviceStep::Pending, DeviceStep::Approve]);
    let home = home(&oauth);
    let out = home
        .run(&["models", "auth", "login", "--provider", "corp", "--device"])
        .await;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(CANARY), "{all}");
    assert!(all.contains(&oauth.verification_uri()), "{all}");
    assert_eq!(
        oauth.grant_count(DEVICE_GRANT),
        2,
        "one pending poll, one approval"
    );
    let refresh = profiles(&home)["profiles"]["corp:alice@example.com"]["refresh"]
        .as_str()
        .unwrap()
        .to_string();

    let out = home
        .run(&["models", "auth", "logout", "--provider", "corp"])
        .await;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(CANARY), "{all}");
    let revoked = oauth.revocations();
    assert_eq!(revoked.len(), 1, "{all}");
    assert_eq!(revoked[0].token, refresh);
    assert!(!oauth.is_current_refresh(&refresh));
    assert!(
        profiles(&home)["profiles"]
            .get("corp:alice@example.com")
            .is_none()
    );
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(!config.contains("corp:alice@example.com"), "{config}");
}

/// The CLI's poll loop on paused time: the server's interval, five more seconds after
/// `slow_down` (RFC 8628 §3.5), and tokens once approved.
#[tokio::test(start_paused = true)]
async fn device_polling_honours_the_interval_and_slow_down() {
    let oauth = FakeOAuth::start().await;
    oauth.set_device_interval(2);
    oauth.script_device([
        DeviceStep::Pending,
        DeviceStep::SlowDown,
        DeviceStep::Approve,
    ]);
    let ep = device_endpoints(&oauth);
    let mut out = Vec::new();
    let started = tokio::time::Instant::now();
    let granted =
        remoteclaw::oauth::login::device_login(&reqwest::Client::new(), &ep, &mut out, || 0)
            .await
            .unwrap();
    assert!(oauth.is_current_access(granted.access.expose()));
    assert_eq!(granted.email.as_deref(), Some("alice@example.com"));
    let polls = oauth.device_polls();
    assert_eq!(polls.len(), 3);
    assert!(
        polls[0] - started >= Duration::from_secs(2),
        "the first poll waits the interval too: {:?}",
        polls[0] - started
    );
    assert_eq!(polls[1] - polls[0], Duration::from_secs(2));
    assert_eq!(
        polls[2] - polls[1],
        Duration::from_secs(7),
        "slow_down adds 5 s"
    );
    let shown = String::from_utf8(out).unwrap();
    assert!(shown.contains("enter the code"), "{shown}");
    assert!(!shown.contains(CANARY), "{shown}");
}

/// The code expires before anyone approves: the CLI gives up at `expires_in`.
#[tokio::test(start_paused = true)]
async fn device_polling_gives_up_when_the_code_expires() {
    let oauth = FakeOAuth::start().await;
    oauth.set_device_interval(5);
    oauth.set_device_expires_in(30);
    oauth.script_device(std::iter::repeat_n(DeviceStep::Pending, 100));
    let ep = device_endpoints(&oauth);
    let mut out = Vec::new();
    let err = remoteclaw::oauth::login::device_login(&reqwest::Client::new(), &ep, &mut out, || 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");
    assert!(
        oauth.device_poll_count() <= 7,
        "{}",
        oauth.device_poll_count()
    );
}

/// Regression (audit s9 F3): `logout --provider corp --profile-id anthropic:work` deleted
/// an API key of another provider. Logout signs out of an OAuth sign-in of the provider
/// named; anything else is refused with the profile's provider and type and what to do,
/// and nothing is removed or revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_refuses_a_profile_of_another_provider_or_not_an_oauth_sign_in() {
    let oauth = FakeOAuth::start().await;
    let home = home(&oauth);
    let tokens = oauth.mint_tokens();
    let doc = serde_json::json!({"version": 1, "profiles": {
        "anthropic:work": {"type": "api_key", "provider": "anthropic", "key": "sk-ant-x"},
        "corp:manual": {"type": "token", "provider": "corp", "token": "tok-corp"},
        "other:me": {"type": "oauth", "provider": "other",
                     "access": tokens.access_token, "refresh": tokens.refresh_token},
    }});
    let path = home.write(
        "agents/main/agent/auth-profiles.json",
        &serde_json::to_string_pretty(&doc).unwrap(),
    );
    let before = std::fs::read(&path).unwrap();
    let config_before = std::fs::read(home.config_path()).unwrap();
    for (id, expect) in [
        (
            "anthropic:work",
            &[
                "anthropic:work",
                "API key",
                "anthropic",
                "not corp",
                "not an OAuth sign-in",
            ][..],
        ),
        (
            "corp:manual",
            &["corp:manual", "pasted token", "not an OAuth sign-in"][..],
        ),
        (
            "other:me",
            &[
                "OAuth sign-in for other, not corp",
                "remoteclaw models auth logout --provider other --profile-id other:me",
            ][..],
        ),
    ] {
        let out = home
            .run(&[
                "models",
                "auth",
                "logout",
                "--provider",
                "corp",
                "--profile-id",
                id,
            ])
            .await;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{id}: {all}");
        for e in expect {
            assert!(all.contains(e), "{id}: expected {e:?} in:\n{all}");
        }
        assert!(all.contains("nothing was changed"), "{all}");
        assert!(!all.contains(CANARY) && !all.contains("sk-ant-x"), "{all}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{id}: file untouched"
        );
        assert_eq!(std::fs::read(home.config_path()).unwrap(), config_before);
    }
    assert!(oauth.revocations().is_empty(), "nothing was revoked");
}

/// Regression (audit s9 F5): `--no-browser` with piped stdin read to the end of input, so
/// a script that pastes the address and keeps stdin open hung. One line is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_browser_reads_one_line_without_waiting_for_the_end_of_stdin() {
    let oauth = FakeOAuth::start().await;
    let home = home(&oauth);
    let mut login = Login::start(&home, &["--no-browser"]);
    let callback = authorize(&login.url().await).await;
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{callback}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    // stdin stays open while the login finishes.
    let (success, all) = tokio::time::timeout(Duration::from_secs(30), login.finish())
        .await
        .expect("the login finishes after one line, with stdin still open");
    assert!(success, "{all}");
    assert!(
        profiles(&home)["profiles"]
            .get("corp:alice@example.com")
            .is_some()
    );
    drop(stdin);
}

/// Regression (audit s9 F7): `--no-browser` for a provider without `redirectPort` printed
/// the redirect URI `http://127.0.0.1:0/auth/callback`. A real loopback port is chosen
/// and listened on, so a browser on this machine completes the sign-in by itself (state
/// checked) while the command also waits for a paste.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_browser_without_a_redirect_port_listens_on_a_real_port() {
    let oauth = FakeOAuth::start().await;
    let home = home(&oauth);
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(home.config_path(), config.replace("redirectPort = 0\n", "")).unwrap();
    let mut login = Login::start(&home, &["--no-browser"]);
    // Kept open (and unused) until the login has finished.
    let stdin = login.child.stdin.take().unwrap();
    let url = login.url().await;
    let redirect = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .to_string();
    let port = reqwest::Url::parse(&redirect).unwrap().port().unwrap();
    assert_ne!(port, 0, "{redirect}");
    assert_eq!(redirect, format!("http://127.0.0.1:{port}/auth/callback"));

    let callback = authorize(&url).await;
    assert!(callback.starts_with(&redirect), "{callback}");
    // A callback of another sign-in is refused; the real one signs in. Nothing is pasted
    // and stdin stays open.
    let forged = no_redirects()
        .get(format!("{redirect}?code=stolen&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let ok = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let (success, all) = tokio::time::timeout(Duration::from_secs(30), login.finish())
        .await
        .expect("the callback completes the login");
    assert!(success, "{all}");
    assert!(
        all.contains(&redirect),
        "the printed address has the real port: {all}"
    );
    assert!(!all.contains("127.0.0.1:0/"), "{all}");
    drop(stdin);
    assert_eq!(
        oauth.grant_count("authorization_code"),
        1,
        "only the real code"
    );
    assert!(
        profiles(&home)["profiles"]
            .get("corp:alice@example.com")
            .is_some()
    );
}

/// Regression (audit s9 F8): a device authorization with `interval: 0` made the CLI poll
/// in a tight loop. Polls are at least MIN_DEVICE_POLL (1 s) apart, `slow_down` still
/// adds 5 s, and an absent interval means RFC 8628's 5 s. Paused time: the fake's poll
/// timestamps are tokio instants.
#[tokio::test(start_paused = true)]
async fn device_polling_with_interval_zero_or_absent_is_not_a_tight_loop() {
    for absent in [false, true] {
        let oauth = FakeOAuth::start().await;
        if absent {
            oauth.omit_device_interval();
        } else {
            oauth.set_device_interval(0);
        }
        oauth.script_device([
            DeviceStep::Pending,
            DeviceStep::Pending,
            DeviceStep::SlowDown,
            DeviceStep::Approve,
        ]);
        let ep = device_endpoints(&oauth);
        let mut out = Vec::new();
        let started = tokio::time::Instant::now();
        let granted =
            remoteclaw::oauth::login::device_login(&reqwest::Client::new(), &ep, &mut out, || 0)
                .await
                .unwrap();
        assert!(oauth.is_current_access(granted.access.expose()));
        let polls = oauth.device_polls();
        assert_eq!(polls.len(), 4, "absent={absent}");
        let (base, after_slow_down) = if absent {
            (Duration::from_secs(5), Duration::from_secs(10))
        } else {
            // slow_down adds 5 s to the server's 0.
            (Duration::from_secs(1), Duration::from_secs(5))
        };
        assert!(
            polls[0] - started >= base,
            "absent={absent}: {:?}",
            polls[0] - started
        );
        assert_eq!(polls[1] - polls[0], base, "absent={absent}");
        assert_eq!(polls[2] - polls[1], base, "absent={absent}");
        assert_eq!(polls[3] - polls[2], after_slow_down, "absent={absent}");
    }
}
