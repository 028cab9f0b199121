//! `remoteclaw models auth paste-token | setup-token | order` with the real binary: what
//! lands in auth-profiles.json and the config, what is printed (never the token), and
//! what bad input gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::secret::Secret;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use support::home::{TestHome, stderr, stdout};
use tokio::io::AsyncWriteExt;

const CANARY: &str = "sk-ant-oat01-CANARY-b7f2e9d1c3a5";

/// Run with `input` piped to stdin (so stdin is not a terminal).
async fn run_stdin(home: &TestHome, args: &[&str], input: &str) -> Output {
    let mut cmd = home.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn remoteclaw");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    child.wait_with_output().await.expect("wait")
}

fn profiles_path(home: &TestHome) -> std::path::PathBuf {
    home.state_dir()
        .join("agents/main/agent/auth-profiles.json")
}

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn no_canary(o: &Output) {
    assert!(!stdout(o).contains("CANARY"), "stdout: {}", stdout(o));
    assert!(!stderr(o).contains("CANARY"), "stderr: {}", stderr(o));
}

fn candidate<'a>(status: &'a Value, provider: &str, id: &str) -> &'a Value {
    status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == provider)
        .and_then(|p| {
            p["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
        })
        .unwrap_or_else(|| panic!("{id} not in status: {status:#}"))
}

const CONFIG: &str = "# operator notes: keep me\n[gateway]\nport = 1234 # fixed port\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_token_from_stdin_stores_declares_and_never_prints_the_token() {
    let home = TestHome::new(CONFIG);
    let before = now_ms();
    let out = run_stdin(
        &home,
        &[
            "models",
            "auth",
            "paste-token",
            "--provider",
            "Anthropic",
            "--expires-in",
            "12h",
        ],
        &format!("  {CANARY}\n"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    no_canary(&out);
    let fp = Secret::new(CANARY).fingerprint().to_string();
    let text = stdout(&out);
    assert!(text.contains("anthropic:manual"), "{text}");
    assert!(text.contains(&format!("fingerprint {fp}")), "{text}");
    assert!(
        text.contains("(in 12h)") || text.contains("(in 11h"),
        "{text}"
    );
    assert!(text.contains("remoteclaw models status --check"), "{text}");

    let path = profiles_path(&home);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let doc = read_json(&path);
    let p = &doc["profiles"]["anthropic:manual"];
    assert_eq!(p["type"], "token");
    assert_eq!(p["provider"], "anthropic");
    assert_eq!(p["token"], CANARY);
    let expires = p["expires"].as_i64().unwrap();
    let twelve_h = 12 * 3_600_000;
    assert!(
        expires >= before + twelve_h && expires <= now_ms() + twelve_h,
        "{expires}"
    );

    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(config.starts_with(CONFIG), "{config}");
    assert!(
        config.contains(
            "[auth.profiles.\"anthropic:manual\"]\nprovider = \"anthropic\"\nmode = \"token\""
        ),
        "{config}"
    );
    let loaded = remoteclaw::config::load(&home.config_path(), true).unwrap();
    assert_eq!(loaded.config.gateway.port, 1234);

    // A second token without expiry, under its own id: static. Status shows both.
    let out = run_stdin(
        &home,
        &[
            "models",
            "auth",
            "paste-token",
            "--provider",
            "anthropic",
            "--profile-id",
            "anthropic:ci",
        ],
        "sk-ant-oat01-CANARY-second",
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no expiry"), "{}", stdout(&out));
    no_canary(&out);

    let out = home.run(&["models", "status", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    no_canary(&out);
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = candidate(&status, "anthropic", "anthropic:manual");
    assert_eq!(c["health"], "expiring");
    assert_eq!(c["kind"], "token");
    assert_eq!(c["source"], "profile");
    assert_eq!(c["fingerprint"], fp.as_str());
    assert_eq!(
        candidate(&status, "anthropic", "anthropic:ci")["health"],
        "static"
    );
    // --check: a token in use expires within 24 h.
    let out = home.run(&["models", "status", "--check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_token_with_a_long_expiry_is_ok_and_replacing_says_so() {
    let home = TestHome::new("");
    for _ in 0..2 {
        let out = run_stdin(
            &home,
            &[
                "models",
                "auth",
                "paste-token",
                "--provider",
                "openai",
                "--expires-in",
                "365",
            ],
            "tok-CANARY-openai",
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        no_canary(&out);
    }
    let out = home.run(&["models", "status", "--json"]).await;
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        candidate(&status, "openai", "openai:manual")["health"],
        "ok"
    );
    let out = run_stdin(
        &home,
        &["models", "auth", "paste-token", "--provider", "openai"],
        "tok-CANARY-openai-2",
    )
    .await;
    assert!(
        stdout(&out).contains("Replaced profile openai:manual (was openai token)"),
        "{}",
        stdout(&out)
    );
    assert!(home.config_path().exists(), "the config was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_token_bad_input_names_it_and_writes_nothing() {
    let home = TestHome::new(CONFIG);
    let cases: [(&[&str], &str, &[&str]); 6] = [
        (
            &["--provider", "anthropic", "--expires-in", "0"],
            CANARY,
            &["\"0\"", "12h", "30m"],
        ),
        (
            &["--provider", "anthropic", "--expires-in", "12x"],
            CANARY,
            &["\"12x\"", "365d"],
        ),
        (
            &["--provider", "antropic"],
            CANARY,
            &[
                "unknown provider \"antropic\"",
                "Did you mean \"anthropic\"",
                "Known providers: anthropic, google, ollama, openai, openai-codex, openrouter, qwen-portal",
            ],
        ),
        (
            &["--provider", "anthropic", "--profile-id", "a b"],
            CANARY,
            &["profile id \"a b\""],
        ),
        (&["--provider", "anthropic"], "  \n", &["no token on stdin"]),
        (
            &["--provider", "anthropic"],
            "sk-ant-oat01-CANARY-1\nsk-ant-oat01-CANARY-2\n",
            &["more than one line"],
        ),
    ];
    for (flags, input, expected) in cases {
        let mut args = vec!["models", "auth", "paste-token"];
        args.extend(flags);
        let out = run_stdin(&home, &args, input).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        for e in expected {
            assert!(err.contains(e), "{args:?}: {err}");
        }
        no_canary(&out);
    }
    assert!(!profiles_path(&home).exists());
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), CONFIG);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_is_left_byte_for_byte() {
    let home = TestHome::new(CONFIG);
    let corrupt =
        "{\n \"version\": 1,\n \"profiles\": {\"anthropic:work\": {\"key\": \"sk-old\"},\n}";
    let path = home.write("agents/main/agent/auth-profiles.json", corrupt);
    let out = run_stdin(
        &home,
        &["models", "auth", "paste-token", "--provider", "anthropic"],
        CANARY,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:", path.display())), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    no_canary(&out);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), corrupt);
    assert_eq!(
        std::fs::read_to_string(home.config_path()).unwrap(),
        CONFIG,
        "nothing declared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_token_needs_a_tty() {
    let home = TestHome::new("");
    let out = run_stdin(
        &home,
        &["models", "auth", "setup-token", "--provider", "anthropic"],
        CANARY,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: setup-token requires an interactive TTY\n"),
        "{err}"
    );
    assert!(err.contains("paste-token"), "{err}");
    assert!(!profiles_path(&home).exists());

    // Another provider is refused as such, terminal or not.
    let out = run_stdin(
        &home,
        &["models", "auth", "setup-token", "--provider", "openai"],
        CANARY,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("setup-token is only for --provider anthropic"),
        "{err}"
    );
    assert!(err.contains("paste-token --provider openai"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_set_get_clear() {
    let home = TestHome::new("");
    home.write(
        "agents/main/agent/auth-profiles.json",
        &json!({
            "version": 1,
            "profiles": {
                "anthropic:work": { "type": "api_key", "provider": "anthropic", "key": "sk-ant-api03-CANARY-w" },
                "anthropic:manual": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-CANARY-m" },
                "openai:x": { "type": "api_key", "provider": "openai", "key": "sk-CANARY-o" }
            }
        })
        .to_string(),
    );
    let order = |args: &[&str]| {
        let mut v = vec!["models", "auth", "order"];
        v.extend(args);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let home = &home;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            home.run(&args).await
        }
    };

    let out = run(order(&["get", "--provider", "anthropic"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("No order stored for anthropic"), "{text}");
    assert!(text.contains("automatic order"), "{text}");
    // Automatic: token before api_key.
    let m = text.find("anthropic:manual").unwrap();
    let w = text.find("anthropic:work").unwrap();
    assert!(m < w, "{text}");
    no_canary(&out);

    let out = run(order(&[
        "set",
        "--provider",
        "anthropic",
        "anthropic:work",
        "anthropic:manual",
    ]))
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(order(&["get", "--provider", "anthropic", "--json"])).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        json!({"provider": "anthropic", "agentId": "main", "order": ["anthropic:work", "anthropic:manual"]})
    );

    let out = run(order(&["set", "--provider", "anthropic", "anthropic:wrk"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "Auth profile \"anthropic:wrk\" not found. Profiles for anthropic: anthropic:work, anthropic:manual."
        ),
        "{}",
        stderr(&out)
    );
    let out = run(order(&["set", "--provider", "anthropic", "openai:x"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is for openai, not anthropic"),
        "{}",
        stderr(&out)
    );
    let out = run(order(&["set", "--provider", "anthropic"])).await;
    assert_eq!(out.status.code(), Some(2), "clap: PROFILE_ID is required");

    let out = run(order(&["clear", "--provider", "anthropic"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(order(&["get", "--provider", "anthropic", "--json"])).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        json!({"provider": "anthropic", "agentId": "main", "order": null})
    );
    let doc = read_json(&profiles_path(&home));
    assert_eq!(doc["order"], json!({}));
    assert_eq!(doc["profiles"].as_object().unwrap().len(), 3);
}

/// Regression (audit s9 F2, config): a remoteclaw.toml that is a symbolic link (a shared,
/// deployed config) was replaced by a regular file by paste-token. The edit now lands in
/// the file the link points to, with its lock and backup beside it, and the link stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_token_through_a_symlinked_config_keeps_the_link() {
    let home = TestHome::new("");
    let shared_dir = tempfile::tempdir().unwrap();
    let shared = shared_dir.path().join("shared.toml");
    std::fs::write(&shared, CONFIG).unwrap();
    std::os::unix::fs::symlink(&shared, home.config_path()).unwrap();
    // auth-profiles.json is a link too, relative this time.
    let profiles = profiles_path(&home);
    std::fs::create_dir_all(profiles.parent().unwrap()).unwrap();
    let shared_profiles = shared_dir.path().join("auth-profiles.json");
    std::fs::write(&shared_profiles, r#"{"version":1,"profiles":{}}"#).unwrap();
    std::fs::set_permissions(&shared_profiles, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&shared_profiles, &profiles).unwrap();

    let out = run_stdin(
        &home,
        &["models", "auth", "paste-token", "--provider", "anthropic"],
        CANARY,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    no_canary(&out);
    for link in [home.config_path(), profiles.clone()] {
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{} was replaced by a regular file",
            link.display()
        );
    }
    let config = std::fs::read_to_string(&shared).unwrap();
    assert!(config.starts_with(CONFIG), "{config}");
    assert!(
        config.contains("[auth.profiles.\"anthropic:manual\"]"),
        "{config}"
    );
    assert!(shared_dir.path().join("shared.toml.bak").is_file());
    assert!(!home.state_dir().join("remoteclaw.toml.lock").exists());
    assert_eq!(
        read_json(&shared_profiles)["profiles"]["anthropic:manual"]["token"],
        CANARY
    );

    // A dangling config link is refused with a message naming it; nothing is created.
    std::fs::remove_file(&shared).unwrap();
    let out = run_stdin(
        &home,
        &[
            "models",
            "auth",
            "paste-token",
            "--provider",
            "anthropic",
            "--profile-id",
            "anthropic:two",
        ],
        CANARY,
    )
    .await;
    assert!(!out.status.success());
    no_canary(&out);
    let err = stderr(&out);
    assert!(err.contains("is a symbolic link to"), "{err}");
    assert!(err.contains("shared.toml"), "{err}");
    assert!(!shared.exists());
    assert!(
        std::fs::symlink_metadata(home.config_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
