//! `/model` end to end through the real binary: select and pin, durable across
//! processes, cleared by `/model default` and `/model <m>`, kept by `/new`, views that
//! show the endpoint but never a secret; and `remoteclaw sessions`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use support::fake_provider::FakeProvider;
use support::home::{TestHome, stderr, stdout};

const WORK_KEY: &str = "sk-ant-api03-WORKCANARY-0000";
const ENV_KEY: &str = "sk-ant-api03-ENVCANARY-1111";

fn home(fake: &FakeProvider) -> TestHome {
    let mut config = TestHome::config_for_fake("anthropic/claude-sonnet-4-5", fake);
    config.push_str(
        r#"
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "opus"
[agents.defaults.models."anthropic/claude-sonnet-4-5"]
alias = "sonnet"
[agents.defaults.models."openai/gpt-4o-mini"]
alias = "mini"
"#,
    );
    let mut h = TestHome::new(&config);
    h.set("ANTHROPIC_API_KEY", ENV_KEY)
        .set("OPENAI_API_KEY", "sk-oa");
    h.write(
        "agents/main/agent/auth-profiles.json",
        &format!(r#"{{"version":1,"profiles":{{"anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}},"openai:team":{{"type":"api_key","provider":"openai","key":"sk-team"}}}}}}"#),
    );
    h
}

async fn agent(h: &TestHome, session: &str, message: &str) -> (bool, Value) {
    let out = h
        .run(&[
            "agent",
            "--session",
            session,
            "--message",
            message,
            "--json",
        ])
        .await;
    let v = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.success(), v)
}

async fn show(h: &TestHome, session: &str) -> Value {
    let out = h.run(&["sessions", "show", session, "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_stored_used_and_cleared() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);

    let (ok, v) = agent(&h, "s", "/model opus@anthropic:work").await;
    assert!(ok, "{v}");
    assert_eq!(
        v["directive"],
        json!({"kind": "select", "model": "anthropic/claude-opus-4-5", "profile": "anthropic:work"})
    );
    assert_eq!(v["attempts"], json!([]));
    assert_eq!(v["model"], "anthropic/claude-opus-4-5");
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("Pinned to credential profile anthropic:work"),
        "{v}"
    );
    assert_eq!(
        fake.request_count(),
        0,
        "a directive alone never calls the model"
    );

    let s = show(&h, "s").await;
    assert_eq!(s["key"], "s");
    assert_eq!(s["model"], "anthropic/claude-opus-4-5");
    assert_eq!(s["modelSource"], "session");
    assert_eq!(s["pin"]["profile"], "anthropic:work");
    assert_eq!(s["pin"]["source"], "user");
    assert!(s["pin"]["since"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(s["historyLength"], 0);

    // The next process uses the pinned profile (and only it).
    let (ok, v) = agent(&h, "s", "hello").await;
    assert!(ok, "{v}");
    assert_eq!(v["credential"], "anthropic:work");
    assert_eq!(v["model"], "anthropic/claude-opus-4-5");
    assert_eq!(fake.requests()[0].key.as_deref(), Some(WORK_KEY));
    assert_eq!(fake.requests()[0].body["model"], "claude-opus-4-5");
    assert_eq!(show(&h, "s").await["historyLength"], 2);

    // /new keeps model and pin, forgets history.
    let (ok, v) = agent(&h, "s", "/new").await;
    assert!(ok && v["directive"]["kind"] == "new", "{v}");
    let s = show(&h, "s").await;
    assert_eq!(
        (s["pin"]["profile"].clone(), s["historyLength"].clone()),
        (json!("anthropic:work"), json!(0))
    );

    // /model <m> without @ clears the pin.
    agent(&h, "s", "/model mini").await;
    let s = show(&h, "s").await;
    assert_eq!(s["model"], "openai/gpt-4o-mini");
    assert_eq!(s["pin"], Value::Null);

    // /model default goes back to the configured model.
    agent(&h, "s", "/model opus@anthropic:work").await;
    agent(&h, "s", "/model default").await;
    let s = show(&h, "s").await;
    assert_eq!(
        (
            s["model"].clone(),
            s["modelSource"].clone(),
            s["pin"].clone()
        ),
        (
            json!("anthropic/claude-sonnet-4-5"),
            json!("default"),
            Value::Null
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directive_then_text_runs_the_rest_as_a_turn() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let (ok, v) = agent(&h, "t", "/model mini what is rust?").await;
    assert!(ok, "{v}");
    assert_eq!(v["directive"]["kind"], "select");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["reply"], "fake reply to: what is rust?");
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_profile_side_selects_the_model_without_a_pin() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let (ok, v) = agent(&h, "ep", "/model mini@ hello").await;
    assert!(ok, "{v}");
    assert_eq!(v["directive"]["kind"], "select", "{v}");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["reply"], "fake reply to: hello");
    let out = h.run(&["sessions", "show", "ep", "--json"]).await;
    assert!(out.status.success());
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["pin"], Value::Null, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_input_and_the_fix() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let cases = [
        (
            "/model opus@anthropic:wrk",
            "Auth profile \"anthropic:wrk\" not found. Profiles for anthropic: anthropic:work.",
        ),
        (
            "/model opus@openai:team",
            "Auth profile \"openai:team\" is for openai, not anthropic",
        ),
        ("/model opsu", "Did you mean \"opus\"?"),
        ("/model openai/gpt-5", "is not allowed here"),
        ("/model status@work", "a profile override needs a model"),
        ("/model 3", "no numeric model picker"),
    ];
    for (input, want) in cases {
        let (ok, v) = agent(&h, "e", input).await;
        assert!(!ok, "{input} should fail");
        assert!(v["error"].as_str().unwrap().contains(want), "{input}: {v}");
        assert_eq!(v["attempts"], json!([]));
    }
    assert_eq!(fake.request_count(), 0);
    let out = h.run(&["sessions", "show", "e", "--json"]).await;
    if out.status.success() {
        let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            s["pin"],
            Value::Null,
            "nothing was changed by refused directives"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_endpoint_and_fingerprints_never_secrets() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let (ok, v) = agent(&h, "st", "/model status").await;
    assert!(ok, "{v}");
    let text = v["reply"].as_str().unwrap();
    assert!(text.contains(&fake.anthropic_base()), "{text}");
    assert!(text.contains("anthropic-messages"), "{text}");
    assert!(
        text.contains("→ anthropic:work"),
        "next candidate marked: {text}"
    );
    assert!(text.contains("env:ANTHROPIC_API_KEY"), "{text}");
    assert!(
        !text.contains(WORK_KEY) && !text.contains(ENV_KEY),
        "{text}"
    );
    let (_, v) = agent(&h, "st", "/model").await;
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("anthropic/claude-sonnet-4-5 (sonnet) (default)"),
        "{v}"
    );
    let (_, v) = agent(&h, "st", "/model list").await;
    let list = v["reply"].as_str().unwrap();
    for m in [
        "anthropic/claude-opus-4-5 (opus)",
        "openai/gpt-4o-mini (mini)",
        "anthropic/claude-sonnet-4-5 (sonnet) — default, current",
    ] {
        assert!(list.contains(m), "{m} in {list}");
    }
    // The alias shortcut works like /model <alias>.
    let (ok, v) = agent(&h, "st", "/opus").await;
    assert!(
        ok && v["directive"]["model"] == "anthropic/claude-opus-4-5",
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_and_reset() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    agent(&h, "a", "/model opus@anthropic:work").await;
    agent(&h, "a", "hi").await;
    agent(&h, "b", "hi").await;
    let out = h.run(&["sessions", "list", "--json"]).await;
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"a") && keys.contains(&"b"));

    let out = h.run(&["sessions", "reset", "a"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let s = show(&h, "a").await;
    assert_eq!(
        (s["historyLength"].clone(), s["pin"]["profile"].clone()),
        (json!(0), json!("anthropic:work"))
    );
    h.run(&["sessions", "reset", "a", "--all"]).await;
    assert_eq!(show(&h, "a").await["pin"], Value::Null);

    let out = h.run(&["sessions", "show", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no session \"nope\""),
        "{}",
        stderr(&out)
    );
}

/// DESIGN §4's own example: with the profiles of §2 (`anthropic:work` and
/// `anthropic:manual`, auth order work then manual), a mistyped profile is answered with
/// exactly the quoted text — the profiles listed in auth order. Without a stored order,
/// `auth.order` from the config decides; without either, the ids are listed sorted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_profile_lists_the_profiles_in_auth_order() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let profiles = |order: &str| {
        format!(
            r#"{{"version":1,"profiles":{{
                "anthropic:work":{{"type":"api_key","provider":"anthropic","key":"{WORK_KEY}"}},
                "anthropic:manual":{{"type":"token","provider":"anthropic","token":"sk-ant-manual-0000"}}}}
                {order}}}"#
        )
    };
    let cases = [
        (
            profiles(r#","order":{"anthropic":["anthropic:work","anthropic:manual"]}"#),
            "",
            "anthropic:work, anthropic:manual",
        ),
        (
            profiles(""),
            "\n[auth.order]\nanthropic = [\"anthropic:work\"]\n",
            "anthropic:work, anthropic:manual",
        ),
        (profiles(""), "", "anthropic:manual, anthropic:work"),
    ];
    let base = std::fs::read_to_string(h.config_path()).unwrap();
    for (file, config, listed) in cases {
        h.write("agents/main/agent/auth-profiles.json", &file);
        std::fs::write(h.config_path(), format!("{base}{config}")).unwrap();
        let (ok, v) = agent(&h, "typo", "/model opus@anthropic:wrk").await;
        assert!(!ok, "{v}");
        assert_eq!(
            v["error"],
            format!("Auth profile \"anthropic:wrk\" not found. Profiles for anthropic: {listed}."),
            "{v}"
        );
    }
}

/// Punctuation that only ends the directive's sentence (`/model opus.`) is not a
/// message: the directive is applied and answered, and no turn asks the model about
/// a full stop. Words after it still make a turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punctuation_after_a_directive_is_not_a_message() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    for (i, message) in [
        "/model opus.",
        "/model mini?",
        "/model sonnet!!",
        "/model ...",
    ]
    .iter()
    .enumerate()
    {
        let (ok, v) = agent(&h, &format!("p{i}"), message).await;
        assert!(ok, "{message}: {v}");
        assert!(
            v["reply"].as_str().is_some_and(|r| !r.is_empty()),
            "{message}: {v}"
        );
        assert_eq!(v["attempts"], json!([]), "{message}: {v}");
    }
    assert_eq!(fake.request_count(), 0, "no turn was run");
    let (ok, v) = agent(&h, "p9", "/model mini, then say hi").await;
    assert!(ok, "{v}");
    assert_eq!(v["reply"], "fake reply to: , then say hi", "{v}");
}
