//! `remoteclaw onboard --non-interactive` with the real binary: the stored key answers a
//! turn against the loopback fake provider (from `.env` or from a profile), the config
//! is merged (comments kept), channel flags write the documented TOML, and missing
//! input names the flag.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use support::fake_provider::FakeProvider;
use support::home::{TestHome, stderr, stdout};
use tokio::io::AsyncWriteExt;

async fn run_stdin(home: &TestHome, args: &[&str], input: &str) -> Output {
    let mut cmd = home.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn remoteclaw");
    let mut stdin = child.stdin.take().expect("stdin");
    // A command that refuses its flags exits without reading stdin: a closed pipe then is
    // the expected outcome, not a test failure.
    if let Err(e) = stdin.write_all(input.as_bytes()).await {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(stdin);
    child.wait_with_output().await.expect("wait")
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const COMMENT: &str = "# managed by hand: keep this comment\n";

fn home_for(fake: &FakeProvider, primary: &str) -> TestHome {
    TestHome::new(&format!(
        "{COMMENT}{}",
        TestHome::config_for_fake(primary, fake)
    ))
}

async fn agent_turn(home: &TestHome) -> Value {
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

fn assert_next_steps(out: &Output) {
    let text = stdout(out);
    for cmd in [
        "remoteclaw models status --check",
        "remoteclaw doctor",
        "remoteclaw gateway",
    ] {
        assert!(text.contains(cmd), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_store_key_answers_a_turn() {
    let fake = FakeProvider::start().await;
    let home = home_for(&fake, "anthropic/claude-sonnet-4-5");
    home.write(
        ".env",
        "# mine\nOTHER_SETTING=1\nANTHROPIC_API_KEY=old-key\n",
    );
    let key = "sk-ant-api03-CANARY-onboard-env";
    let out = run_stdin(
        &home,
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "anthropic",
            "--api-key-stdin",
            "--store",
            "env",
        ],
        &format!("{key}\n"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("CANARY") && !stderr(&out).contains("CANARY"));
    assert!(
        stdout(&out).contains("ANTHROPIC_API_KEY"),
        "{}",
        stdout(&out)
    );
    assert_next_steps(&out);

    let env_path = home.state_dir().join(".env");
    assert_eq!(
        std::fs::read_to_string(&env_path).unwrap(),
        format!("# mine\nOTHER_SETTING=1\nANTHROPIC_API_KEY={key}\n")
    );
    assert_eq!(mode(&env_path), 0o600);
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(config.starts_with(COMMENT), "{config}");
    assert!(
        !config.contains("auth.profiles"),
        "env store declares nothing: {config}"
    );

    let v = agent_turn(&home).await;
    assert_eq!(v["credential"], "env:ANTHROPIC_API_KEY");
    assert_eq!(v["reply"], "fake reply to: hi");
    assert_eq!(fake.requests_for_key(key).len(), 1);
    assert!(fake.requests_for_key("old-key").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_store_key_answers_a_turn() {
    let fake = FakeProvider::start().await;
    let home = home_for(&fake, "openai/gpt-4o-mini");
    let key = "sk-CANARY-onboard-profile";
    let out = run_stdin(
        &home,
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "openai",
            "--api-key-stdin",
        ],
        key,
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("CANARY") && !stderr(&out).contains("CANARY"));
    assert!(stdout(&out).contains("openai:default"), "{}", stdout(&out));
    assert_next_steps(&out);

    let path = home
        .state_dir()
        .join("agents/main/agent/auth-profiles.json");
    assert_eq!(mode(&path), 0o600);
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        doc["profiles"]["openai:default"],
        serde_json::json!({"type": "api_key", "provider": "openai", "key": key})
    );
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(config.starts_with(COMMENT), "{config}");
    let loaded = remoteclaw::config::load(&home.config_path(), true)
        .unwrap()
        .config;
    let decl = &loaded.auth.profiles["openai:default"];
    assert_eq!(decl.provider, "openai");
    assert_eq!(decl.mode, remoteclaw::config::CredentialMode::ApiKey);
    assert_eq!(
        loaded.agents.defaults.model.primary, "openai/gpt-4o-mini",
        "kept"
    );
    assert!(!home.state_dir().join(".env").exists());

    let v = agent_turn(&home).await;
    assert_eq!(v["credential"], "openai:default");
    assert_eq!(fake.requests_for_key(key).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_flags_merge_into_the_existing_config() {
    let original = "# my bot\n[gateway]\nport = 1234 # fixed\n\n[channels.telegram]\nallowFrom = [5] # friends\ndmPolicy = \"allowlist\"\n";
    let home = TestHome::new(original);
    let out = home
        .run(&[
            "onboard",
            "--non-interactive",
            "--telegram-token-env",
            "TG_TOKEN",
            "--telegram-owner",
            "42",
            "--telegram-owner",
            "7",
            "--discord-token-env",
            "DC_TOKEN",
            "--discord-owner",
            "222",
            "--model",
            "openai/gpt-4o-mini",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("TG_TOKEN is not set"),
        "{}",
        stdout(&out)
    );
    assert_next_steps(&out);

    let text = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(
        text.starts_with("# my bot\n[gateway]\nport = 1234 # fixed\n"),
        "{text}"
    );
    assert!(text.contains("# friends"), "{text}");
    let cfg = remoteclaw::config::load(&home.config_path(), true)
        .unwrap()
        .config;
    assert_eq!(cfg.gateway.port, 1234);
    assert_eq!(cfg.agents.defaults.model.primary, "openai/gpt-4o-mini");
    let tg = cfg.channels.telegram.unwrap();
    assert!(tg.enabled);
    let r = tg.bot_token_ref.unwrap();
    assert_eq!(
        (r.source, r.provider.as_str(), r.id.as_str()),
        (remoteclaw::config::SecretSource::Env, "default", "TG_TOKEN")
    );
    assert_eq!(tg.allow_from, vec![5, 42, 7]);
    assert_eq!(
        tg.owners,
        Some(vec![5, 42, 7]),
        "owners defaulted to allowFrom: 5 stays one"
    );
    assert_eq!(tg.dm_policy, remoteclaw::config::DmPolicy::Allowlist);
    let dc = cfg.channels.discord.unwrap();
    assert!(dc.enabled);
    assert_eq!(dc.token_ref.unwrap().id, "DC_TOKEN");
    assert_eq!(dc.owners, Some(vec!["222".to_string()]));
    assert_eq!(dc.allow_from, vec!["222".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_bad_input_names_the_flag_and_changes_nothing() {
    let config = "# keep\n[gateway]\nport = 1234\n";
    let home = TestHome::new(config);
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--non-interactive"], "", "--provider"),
        (
            &["--non-interactive", "--provider", "openai"],
            "",
            "--api-key-stdin",
        ),
        (
            &[
                "--non-interactive",
                "--provider",
                "openai",
                "--api-key-stdin",
            ],
            " \n",
            "no API key on stdin",
        ),
        (
            &[
                "--non-interactive",
                "--provider",
                "opnai",
                "--api-key-stdin",
            ],
            "k",
            "unknown provider \"opnai\"",
        ),
        (
            &["--non-interactive", "--discord-owner", "@me"],
            "",
            "--discord-owner",
        ),
        (&[], "", "--non-interactive"),
    ];
    for (flags, input, expected) in cases {
        let mut args = vec!["onboard"];
        args.extend(flags);
        let out = run_stdin(&home, &args, input).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), config);
    assert!(!home.state_dir().join(".env").exists());
    assert!(!home.state_dir().join("agents").exists());
}
