//! Credential resolution and rotation end to end (DESIGN §5): the real binary, the fake
//! provider, cooldowns remembered across processes, pins, `models status`, and canary
//! secrets planted in every source that must never be printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use support::fake_provider::{Behavior, FakeProvider};
use support::home::{TestHome, stderr, stdout};

fn home(fake: &FakeProvider, extra: &str) -> TestHome {
    let mut config = TestHome::config_for_fake("anthropic/claude-sonnet-4-5", fake);
    config.push_str(extra);
    TestHome::new(&config)
}

/// One provider's entry of `models status --json`.
fn provider<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == name)
        .unwrap()
}

async fn agent_json(h: &TestHome, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut all = vec!["agent", "--json"];
    all.extend_from_slice(args);
    let out = h.run(&all).await;
    let v = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (
        out.status.code(),
        v,
        format!("{}{}", stdout(&out), stderr(&out)),
    )
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

fn pair(c: &str, o: &str) -> (String, String) {
    (c.to_string(), o.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_acceptance_three_keys_two_rate_limited() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake, "");
    h.set("ANTHROPIC_API_KEYS", "k1-CANARY-aaaa,k2-CANARY-bbbb")
        .set("ANTHROPIC_API_KEY_B", "k3-CANARY-cccc");
    fake.script(
        "k1-CANARY-aaaa",
        vec![
            Behavior::RateLimit {
                retry_after_secs: None
            };
            5
        ],
    );
    fake.script(
        "k2-CANARY-bbbb",
        vec![
            Behavior::RateLimit {
                retry_after_secs: Some(120)
            };
            5
        ],
    );

    let (code, v, printed) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["credential"], "env:ANTHROPIC_API_KEY_B");
    assert_eq!(
        outcomes(&v),
        [
            pair("env:ANTHROPIC_API_KEYS[0]", "rate_limit"),
            pair("env:ANTHROPIC_API_KEYS[1]", "rate_limit"),
            pair("env:ANTHROPIC_API_KEY_B", "ok")
        ]
    );
    assert_eq!(v["attempts"][1]["retryAfterMs"], 120_000);
    assert!(!printed.contains("CANARY"), "{printed}");

    // The next process starts with k3: k1 and k2 are cooling down.
    let (code, v, _) = agent_json(&h, &["--message", "again"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(outcomes(&v), [pair("env:ANTHROPIC_API_KEY_B", "ok")]);

    let out = h.run(&["models", "status", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!printed.contains("CANARY"), "{printed}");
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let anthropic = provider(&status, "anthropic");
    assert_eq!(anthropic["baseUrl"], fake.anthropic_base());
    assert_eq!(anthropic["api"], "anthropic-messages");
    let cands = anthropic["candidates"].as_array().unwrap();
    assert_eq!(cands[0]["id"], "env:ANTHROPIC_API_KEY_B");
    assert_eq!(cands[0]["health"], "static");
    for (i, id) in [
        (1, "env:ANTHROPIC_API_KEYS[0]"),
        (2, "env:ANTHROPIC_API_KEYS[1]"),
    ] {
        assert_eq!(cands[i]["id"], id);
        assert_eq!(cands[i]["health"], "cooldown");
        assert_eq!(cands[i]["reason"], "rate_limit");
        assert!(cands[i]["until"].as_i64().unwrap() > 0);
        assert_eq!(cands[i]["fingerprint"].as_str().unwrap().len(), 8);
    }
    assert_eq!(status["agentId"], "main");
    assert_eq!(status["defaultModel"], "anthropic/claude-sonnet-4-5");
    assert_eq!(status["missingProvidersInUse"], json!([]));

    // An empty id is a mistake, not "every cooldown"; an id with control characters
    // is echoed with them escaped.
    let out = h.run(&["models", "auth", "cooldown", "clear", " "]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the credential id is empty"));
    let out = h
        .run(&["models", "auth", "cooldown", "clear", "\u{1b}[31mX"])
        .await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "\\u{1b}[31mX had no cooldown.\n");
    // The operator clears the cooldowns: k1 is first again.
    let out = h.run(&["models", "auth", "cooldown", "clear"]).await;
    assert!(out.status.success());
    fake.clear_scripts();
    let (_, v, _) = agent_json(&h, &["--message", "third"]).await;
    assert_eq!(outcomes(&v), [pair("env:ANTHROPIC_API_KEYS[0]", "ok")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_error_returns_at_once_and_the_next_turn_starts_elsewhere() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake, "");
    h.set("ANTHROPIC_API_KEYS", "bad-key,good-key");
    fake.script("bad-key", [Behavior::Auth]);
    let (code, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(outcomes(&v), [pair("env:ANTHROPIC_API_KEYS[0]", "auth")]);
    assert!(
        v["error"].as_str().unwrap().contains("credential rejected"),
        "{v}"
    );
    let (code, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        outcomes(&v),
        [pair("env:ANTHROPIC_API_KEYS[1]", "ok")],
        "the rejected key is set aside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_disables_the_key_for_later_turns() {
    let fake = FakeProvider::start().await;
    let mut h = home(
        &fake,
        "[models.providers.openrouter]\nbaseUrl = \"BASE\"\n"
            .replace("BASE", &fake.openai_base())
            .as_str(),
    );
    h.set("OPENROUTER_API_KEYS", "or-1,or-2");
    fake.script("or-1", [Behavior::Billing]);
    let (code, v, _) = agent_json(&h, &["--message", "/model openrouter/meta/llama-3 hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        outcomes(&v),
        [pair("env:OPENROUTER_API_KEYS[0]", "billing")],
        "billing is not a rate limit: no rotation"
    );
    let (code, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(outcomes(&v), [pair("env:OPENROUTER_API_KEYS[1]", "ok")]);
    let out = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["id"], "env:OPENROUTER_API_KEYS[0]");
    assert_eq!(list[0]["reason"], "billing");
}

/// Two agents, each with a profile `anthropic:x` but different keys, share one state.db:
/// one agent's disabled key is listed for that agent only, and the other agent's
/// success does not make it usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_the_same_profile_id_keep_their_own_credential_state() {
    let fake = FakeProvider::start().await;
    let h = home(&fake, "");
    let profile = |key: &str| {
        format!(
            r#"{{"profiles":{{"anthropic:x":{{"type":"api_key","provider":"anthropic","key":"{key}"}}}}}}"#
        )
    };
    h.write("agents/main/agent/auth-profiles.json", &profile("main-key"));
    h.write("agents/work/agent/auth-profiles.json", &profile("work-key"));
    fake.script("work-key", [Behavior::Billing]);
    let (code, v, _) = agent_json(&h, &["--agent", "work", "--message", "hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(outcomes(&v), [pair("anthropic:x", "billing")]);

    let list = |agent: &'static str| {
        let h = &h;
        async move {
            let out = h
                .run(&[
                    "models", "auth", "cooldown", "list", "--json", "--agent", agent,
                ])
                .await;
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_str::<Value>(&stdout(&out)).unwrap()
        }
    };
    assert_eq!(list("work").await[0]["reason"], "billing");
    assert_eq!(list("main").await, json!([]), "not main's key");

    // Main's key answers; work's stays disabled.
    let (code, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(outcomes(&v), [pair("anthropic:x", "ok")]);
    assert_eq!(list("work").await[0]["reason"], "billing");
    let (code, v, _) = agent_json(&h, &["--agent", "work", "--message", "hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(v["attempts"], json!([]), "still disabled: {v}");
    assert_eq!(fake.requests_for_key("work-key").len(), 1);

    // Main's key runs out too: both agents' anthropic:x are disabled, a row each.
    fake.script("main-key", [Behavior::Billing]);
    let (code, _, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(list("main").await[0]["reason"], "billing");
    assert_eq!(list("work").await[0]["reason"], "billing");
    // Clearing work's anthropic:x leaves main's alone, and the other way round.
    let clear = |args: &'static [&'static str]| {
        let h = &h;
        async move {
            let mut all = vec!["models", "auth", "cooldown", "clear"];
            all.extend_from_slice(args);
            let out = h.run(&all).await;
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out)
        }
    };
    assert_eq!(
        clear(&["anthropic:x", "--agent", "work"]).await,
        "Cleared 1 cooldown entry of anthropic:x.\n"
    );
    assert_eq!(list("work").await, json!([]));
    assert_eq!(list("main").await[0]["reason"], "billing");
    assert_eq!(clear(&[]).await, "Cleared 1 cooldown entry.\n");
    assert_eq!(list("main").await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_profile_cooling_down_is_reported_not_replaced() {
    let fake = FakeProvider::start().await;
    let mut h = home(
        &fake,
        "[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\nalias = \"opus\"\n",
    );
    h.set("ANTHROPIC_API_KEY", "env-key");
    h.write("agents/main/agent/auth-profiles.json", r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"work-key"}}}"#);
    agent_json(
        &h,
        &["--session", "p", "--message", "/model opus@anthropic:work"],
    )
    .await;
    fake.script(
        "work-key",
        [Behavior::RateLimit {
            retry_after_secs: Some(600),
        }],
    );
    let (code, v, _) = agent_json(&h, &["--session", "p", "--message", "hi"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        outcomes(&v),
        [pair("anthropic:work", "rate_limit")],
        "strict pin: no other key tried"
    );
    // The turn that put it in a cooldown already says why, until when and how to unpin
    // (DESIGN §5.1), with what the provider said.
    let err = v["error"].as_str().unwrap();
    assert!(
        err.starts_with(
            "Pinned auth profile \"anthropic:work\" is cooling down after a rate limit until "
        ) && err.contains("(in 10m)")
            && err.contains("unpin with /model default")
            && err.contains("(The provider said: "),
        "{err}"
    );
    let (code, v, _) = agent_json(&h, &["--session", "p", "--message", "hi again"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(v["attempts"], json!([]));
    let err = v["error"].as_str().unwrap();
    assert!(
        err.starts_with(
            "Pinned auth profile \"anthropic:work\" is cooling down after a rate limit until "
        ),
        "{err}"
    );
    assert!(
        err.contains("(in 10m)") && err.contains("unpin with /model default"),
        "{err}"
    );
    assert_eq!(fake.requests_for_key("env-key").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_refs_from_env_file_and_exec_answer_and_never_leak() {
    let fake = FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets_file = dir.path().join("secrets.json");
    std::fs::write(&secrets_file, r#"{"anthropic":{"key":"file-CANARY-1111"}}"#).unwrap();
    std::fs::set_permissions(&secrets_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = dir.path().join("resolve.sh");
    std::fs::write(&script, "#!/bin/sh\ncat > /dev/null\nprintf '%s' '{\"protocolVersion\":1,\"values\":{\"exec-id\":\"exec-CANARY-2222\"}}'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let extra = format!(
        "[secrets.providers.files]\nsource = \"file\"\npath = \"{}\"\n[secrets.providers.vault]\nsource = \"exec\"\ncommand = \"{}\"\n[auth.order]\nanthropic = [\"anthropic:exec\", \"anthropic:file\", \"anthropic:env\"]\n",
        secrets_file.display(),
        script.display()
    );
    let mut h = home(&fake, &extra);
    h.set("REF_VAR", "env-CANARY-3333").set("RUST_LOG", "trace");
    h.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"profiles":{
            "anthropic:exec":{"type":"api_key","provider":"anthropic","keyRef":{"source":"exec","provider":"vault","id":"exec-id"}},
            "anthropic:file":{"type":"api_key","provider":"anthropic","keyRef":{"source":"file","provider":"files","id":"/anthropic/key"}},
            "anthropic:env":{"type":"api_key","provider":"anthropic","keyRef":{"source":"env","provider":"default","id":"REF_VAR"}}}}"#,
    );
    fake.script(
        "exec-CANARY-2222",
        [Behavior::RateLimit {
            retry_after_secs: Some(1),
        }],
    );
    fake.script(
        "file-CANARY-1111",
        [Behavior::RateLimit {
            retry_after_secs: Some(1),
        }],
    );
    let (code, v, printed) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(
        outcomes(&v),
        [
            pair("anthropic:exec", "rate_limit"),
            pair("anthropic:file", "rate_limit"),
            pair("anthropic:env", "ok")
        ]
    );
    assert_eq!(
        fake.requests().last().unwrap().key.as_deref(),
        Some("env-CANARY-3333")
    );
    let status = h.run(&["models", "status"]).await;
    let status_json = h.run(&["models", "status", "--json"]).await;
    let chat_status = agent_json(&h, &["--message", "/model status"]).await.2;
    for text in [
        printed,
        format!("{}{}", stdout(&status), stderr(&status)),
        format!("{}{}", stdout(&status_json), stderr(&status_json)),
        chat_status,
    ] {
        assert!(!text.contains("CANARY"), "a secret leaked:\n{text}");
    }
    assert!(
        stdout(&status).contains("exec:vault:exec-id"),
        "status names the ref: {}",
        stdout(&status)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_ref_makes_only_its_profile_unusable() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake, "");
    h.set("ANTHROPIC_API_KEY", "env-key");
    h.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"profiles":{"anthropic:broken":{"type":"api_key","provider":"anthropic","keyRef":{"source":"env","provider":"default","id":"NOT_SET_ANYWHERE"}}}}"#,
    );
    let (code, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["credential"], "env:ANTHROPIC_API_KEY");
    let out = h.run(&["models", "status", "--json"]).await;
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = &s["providers"][0]["candidates"];
    let broken = c
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "anthropic:broken")
        .unwrap();
    assert_eq!(
        (broken["health"].clone(), broken["reason"].clone()),
        (json!("missing"), json!("unresolved_ref"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_status_check_exit_codes() {
    let fake = FakeProvider::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let case = |expires: i64| {
        format!(
            r#"{{"profiles":{{"anthropic:manual":{{"type":"token","provider":"anthropic","token":"sk-ant-oat01-x","expires":{expires}}}}}}}"#
        )
    };
    let oauth = format!(
        r#"{{"profiles":{{"anthropic:o":{{"type":"oauth","provider":"anthropic","access":"acc","refresh":"ref","expires":{}}}}}}}"#,
        now + 3_600_000
    );
    let missing =
        r#"{"profiles":{"anthropic:manual":{"type":"token","provider":"anthropic"}}}"#.to_string();
    let cases = [
        (case(now + 30 * 86_400_000), 0, "ok"),
        (case(now + 3_600_000), 2, "expiring within 24 h"),
        (case(now - 1000), 1, "expired"),
        (missing, 1, "token without a value"),
        (oauth.clone(), 0, "oauth with a refresh token renews itself"),
        (
            oauth,
            2,
            "oauth whose provider has no token endpoint: its expiry decides",
        ),
    ];
    for (i, (profiles, want, what)) in cases.into_iter().enumerate() {
        // The provider has a token endpoint in all cases but the last.
        let endpoint = if i < 5 {
            "[models.providers.anthropic.oauth]\ntokenUrl = \"http://127.0.0.1:9/token\"\nclientId = \"c\"\n"
        } else {
            ""
        };
        let h = home(&fake, endpoint);
        h.write("agents/main/agent/auth-profiles.json", &profiles);
        let out = h.run(&["models", "status", "--check"]).await;
        assert_eq!(
            out.status.code(),
            Some(want),
            "{what}: {profiles}\n{}",
            stdout(&out)
        );
    }
    let h = home(&fake, "");
    let out = h.run(&["models", "status", "--check", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "no credential for the provider in use"
    );
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["missingProvidersInUse"], json!(["anthropic"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_usage_stats_are_read_once() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake, "");
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    h.write(
        "agents/main/agent/auth-profiles.json",
        &format!(r#"{{"version":1,"profiles":{{"anthropic:a":{{"type":"api_key","provider":"anthropic","key":"ka"}},"anthropic:b":{{"type":"api_key","provider":"anthropic","key":"kb"}}}},"usageStats":{{"anthropic:a":{{"lastUsed":5,"cooldownUntil":{later},"errorCount":2}}}}}}"#),
    );
    h.set("RUST_LOG", "info");
    let (_, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(
        v["credential"], "anthropic:b",
        "the imported cooldown applies: {v}"
    );
    h.run(&["models", "auth", "cooldown", "clear", "anthropic:a"])
        .await;
    let (_, v, _) = agent_json(&h, &["--message", "hi"]).await;
    assert_eq!(
        outcomes(&v)[0].0,
        "anthropic:a",
        "not imported a second time"
    );
}

/// `cooldown clear` forgets the failures counted by a cooldown whose time already ran
/// out too: the next rate limit starts again at the first step (1 min), not the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_cooldowns_also_forgets_the_failures_of_expired_ones() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake, "");
    h.set("ANTHROPIC_API_KEY", "sk-ant-only-key");
    let rate_limited = |secs| Behavior::RateLimit {
        retry_after_secs: secs,
    };
    // A 429 asking for no wait at all: a cooldown that is over at once, one failure counted.
    fake.script("sk-ant-only-key", vec![rate_limited(Some(0))]);
    let (code, v, _) = agent_json(&h, &["--message", "one"]).await;
    assert_eq!(code, Some(1), "{v}");
    let out = h.run(&["models", "auth", "cooldown", "clear"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Cleared 0 cooldown entries.\n",
        "none was in force"
    );

    fake.script("sk-ant-only-key", vec![rate_limited(None)]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (code, v, _) = agent_json(&h, &["--message", "two"]).await;
    assert_eq!(code, Some(1), "{v}");
    let out = h.run(&["models", "status", "--json"]).await;
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let until = provider(&status, "anthropic")["candidates"][0]["until"]
        .as_i64()
        .unwrap();
    let wait = until - before;
    assert!(
        (55_000..=65_000).contains(&wait),
        "the first step (60 s), not the second (300 s): {wait} ms"
    );
}

/// A profile outside its provider's auth order is used when a session pins it; a
/// cooldown it gets then is listed and cleared like any other (the pinned session's
/// refusal sends the operator there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_profile_outside_the_order_has_its_cooldown_listed_and_cleared() {
    let fake = FakeProvider::start().await;
    let h = home(&fake, "[auth.order]\nanthropic = [\"anthropic:work\"]\n");
    h.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"work-key"},"anthropic:side":{"type":"api_key","provider":"anthropic","key":"side-key"}}}"#,
    );
    fake.script(
        "side-key",
        [Behavior::RateLimit {
            retry_after_secs: Some(600),
        }],
    );
    let (code, v, _) = agent_json(
        &h,
        &[
            "--message",
            "/model anthropic/claude-sonnet-4-5@anthropic:side hi",
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(outcomes(&v), [pair("anthropic:side", "rate_limit")]);

    let out = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["id"], "anthropic:side", "{list}");
    assert_eq!(list[0]["reason"], "rate_limit");

    let out = h
        .run(&["models", "auth", "cooldown", "clear", "anthropic:side"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, v, _) = agent_json(&h, &["--message", "again"]).await;
    assert_eq!(
        code,
        Some(0),
        "the pin holds and the profile answers again: {v}"
    );
    assert_eq!(outcomes(&v), [pair("anthropic:side", "ok")]);
}
