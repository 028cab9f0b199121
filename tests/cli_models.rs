//! `remoteclaw models list|status` output (insta snapshots, paths filtered) and
//! `models status --probe` against the loopback fake provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use support::fake_provider::{Behavior, FakeProvider};
use support::home::{TestHome, stderr, stdout};

const CONFIG: &str = r#"
[agents.defaults.model]
primary = "anthropic/claude-sonnet-4-5"
fallbacks = ["openai/gpt-4o-mini"]
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "opus"
[agents.defaults.models."anthropic/claude-sonnet-4-5"]
alias = "sonnet"
[models.providers.anthropic]
baseUrl = "http://127.0.0.1:9"
[models.providers.openai]
baseUrl = "http://127.0.0.1:9/v1"
"#;

fn filtered(h: &TestHome, text: &str) -> String {
    text.replace(&h.dir.path().display().to_string(), "[HOME]")
}

#[tokio::test]
async fn models_list_text_and_json() {
    let h = TestHome::new(CONFIG);
    let out = h.run(&["models", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!("models_list_text", stdout(&out));
    let out = h.run(&["models", "list", "--json"]).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    insta::assert_json_snapshot!("models_list_json", v);
}

#[tokio::test]
async fn models_status_text() {
    let mut h = TestHome::new(CONFIG);
    h.set("ANTHROPIC_API_KEYS", "sk-ant-api03-one,sk-ant-api03-two")
        .set("OPENAI_API_KEY", "sk-openai-fixed");
    h.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"version":1,"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-api03-work"},
            "anthropic:ghost":{"type":"api_key","provider":"anthropic","keyRef":{"source":"env","provider":"default","id":"UNSET_VAR"}}}}"#,
    );
    let out = h.run(&["models", "status"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!("models_status_text", filtered(&h, &stdout(&out)));
    let out = h.run(&["models", "status", "--plain"]).await;
    insta::assert_snapshot!("models_status_plain", stdout(&out));
}

/// Regression (audit s10): with `[env.shellEnv]` on and a login shell that cannot run,
/// `models status` said "imported from the login shell".
#[tokio::test]
async fn the_shell_env_line_says_whether_the_import_happened() {
    let config = "[env.shellEnv]\nenabled = true\n";
    let mut h = TestHome::new(config);
    h.set("SHELL", "/nonexistent/sh");
    let out = h.run(&["models", "status"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Shell env:     not imported: cannot run login shell /nonexistent/sh"),
        "{text}"
    );
    h.set("SHELL", "/bin/sh");
    let out = h.run(&["models", "status"]).await;
    let text = stdout(&out);
    assert!(
        text.contains("Shell env:     imported from the login shell ("),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_checks_each_credential_and_updates_cooldowns() {
    let fake = FakeProvider::start().await;
    let mut h = TestHome::new(&TestHome::config_for_fake(
        "anthropic/claude-sonnet-4-5",
        &fake,
    ));
    h.set("ANTHROPIC_API_KEYS", "pk-good,pk-revoked,pk-slow");
    fake.script("pk-revoked", [Behavior::Auth]);
    fake.script("pk-slow", [Behavior::Stall]);
    let out = h
        .run(&[
            "models",
            "status",
            "--probe",
            "--probe-timeout",
            // Long enough for a fresh process's first round trips on a stalling host;
            // the stalled key still times out.
            "3000",
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let outcome = |id: &str| {
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(outcome("env:ANTHROPIC_API_KEYS[0]").as_deref(), Some("ok"));
    assert_eq!(
        outcome("env:ANTHROPIC_API_KEYS[1]").as_deref(),
        Some("auth")
    );
    assert_eq!(
        outcome("env:ANTHROPIC_API_KEYS[2]").as_deref(),
        Some("timeout")
    );
    let sent = fake.requests_for_key("pk-good");
    assert_eq!(sent[0].body["max_tokens"], 1, "a probe asks for one token");
    // The probe's auth failure set the key aside, as a turn would.
    let cands = v["providers"][0]["candidates"].as_array().unwrap();
    let revoked = cands
        .iter()
        .find(|c| c["id"] == "env:ANTHROPIC_API_KEYS[1]")
        .unwrap();
    assert_eq!(
        (revoked["health"].as_str(), revoked["reason"].as_str()),
        (Some("disabled"), Some("auth"))
    );
    // Disabled until cleared: no end time (DESIGN §6 `"until": null | <ms>`).
    assert_eq!(revoked["until"], Value::Null, "{revoked}");
    assert!(!stdout(&out).contains("pk-"), "no secret in the output");
    let list = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    let listed: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let entry = listed
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == "env:ANTHROPIC_API_KEYS[1]"))
        .unwrap();
    assert_eq!(entry["until"], Value::Null, "{listed}");

    // Filters: one profile only.
    let out = h
        .run(&[
            "models",
            "status",
            "--probe",
            "--probe-profile",
            "env:ANTHROPIC_API_KEYS[0]",
            "--json",
        ])
        .await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["probes"].as_array().unwrap().len(), 1);

    // A probe target that does not exist is named, with the way to find the right one.
    for (flag, value) in [("--probe-provider", "nope"), ("--probe-profile", "nope:x")] {
        let out = h.run(&["models", "status", "--probe", flag, value]).await;
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        let err = stderr(&out);
        assert!(err.contains(&format!("{flag} {value}")), "{err}");
        assert!(err.contains("remoteclaw models status"), "{err}");
    }
}

/// Replace every "until HH:MM UTC (in …)" with "until [time]": the rest of the text is
/// deterministic, the clock is not.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("until ") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        match after.find(')') {
            Some(j) if after[..j].contains(" UTC (in ") => {
                out.push_str("until [time]");
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("until ");
                rest = &after[6..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_status_text_with_cooldowns() {
    let fake = FakeProvider::start().await;
    let mut h = TestHome::new(&TestHome::config_for_fake(
        "anthropic/claude-sonnet-4-5",
        &fake,
    ));
    h.set("ANTHROPIC_API_KEYS", "ck-one,ck-two,ck-three");
    fake.script(
        "ck-one",
        [Behavior::RateLimit {
            retry_after_secs: Some(600),
        }],
    );
    fake.script("ck-two", [Behavior::Billing]);
    let out = h.run(&["agent", "--message", "hi", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "billing ends the turn: {}",
        stdout(&out)
    );
    let out = h.run(&["models", "status"]).await;
    let text =
        without_times(&filtered(&h, &stdout(&out)).replace(&fake.anthropic_base(), "[FAKE]"));
    insta::assert_snapshot!("models_status_text_cooldowns", text);
}

/// `remoteclaw models status | head -1`: a reader that goes away is no error and no
/// panic — the command ends quietly with status 0.
#[tokio::test]
async fn a_closed_stdout_ends_quietly_without_a_panic() {
    let h = TestHome::new(CONFIG);
    // (doctor exits 1 here: this home has no credentials.)
    for (args, code) in [
        (&["models", "status"][..], 0),
        (&["models", "list", "--json"][..], 0),
        (&["doctor", "--json"][..], 1),
    ] {
        // A pipe whose reading end is already closed: every write gets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = h
            .command(args)
            .stdout(std::process::Stdio::from(writer))
            .output()
            .await
            .unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    }
}
