//! `remoteclaw agent` end to end: the real binary, a loopback fake provider, and the
//! stable `--json` object (DESIGN §6) — for each wire API, with rotation, failures,
//! `.env` loading and a canary that must never leak.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use support::fake_provider::{Behavior, FakeProvider};
use support::home::{TestHome, stderr, stdout};

fn home_for(fake: &FakeProvider, primary: &str) -> TestHome {
    TestHome::new(&TestHome::config_for_fake(primary, fake))
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_json_answers_through_each_api_with_its_auth_header() {
    let fake = FakeProvider::start().await;
    let cases = [
        (
            "anthropic/claude-sonnet-4-5",
            "ANTHROPIC_API_KEY",
            "sk-ant-api03-t1",
            "x-api-key",
            "sk-ant-api03-t1",
        ),
        (
            "openai/gpt-4o-mini",
            "OPENAI_API_KEY",
            "sk-oa-t2",
            "authorization",
            "Bearer sk-oa-t2",
        ),
        (
            "google/gemini-2.5-flash",
            "GEMINI_API_KEY",
            "AIza-t3",
            "x-goog-api-key",
            "AIza-t3",
        ),
    ];
    for (model, var, key, header, header_value) in cases {
        let mut home = home_for(&fake, model);
        home.set(var, key);
        let out = home.run(&["agent", "--message", "hi", "--json"]).await;
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["reply"], "fake reply to: hi", "{model}");
        assert_eq!(v["session"], "local:default");
        assert_eq!(v["model"], model);
        assert_eq!(v["credential"], format!("env:{var}"));
        assert_eq!(
            v["attempts"],
            serde_json::json!([{"credential": format!("env:{var}"), "outcome": "ok", "retryAfterMs": null}])
        );
        assert_eq!(v["directive"], Value::Null);
        assert!(v.get("error").is_none());
        let req = fake.requests_for_key(key);
        assert_eq!(req.len(), 1, "{model}");
        assert_eq!(req[0].header(header), Some(header_value), "{model}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_plain_output_is_the_reply() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "openai/gpt-4o-mini");
    home.set("OPENAI_API_KEY", "k");
    fake.script("k", [Behavior::Reply("streamed words arrive".into())]);
    let out = home
        .run(&["agent", "-m", "hi", "--session", "local:work"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "streamed words arrive\n");
    assert_eq!(
        fake.requests()[0].body["stream"],
        true,
        "plain output streams"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_rotates_to_the_next_key_and_is_traced() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "anthropic/claude-sonnet-4-5");
    home.set("ANTHROPIC_API_KEYS", "rk-1, rk-2");
    fake.script(
        "rk-1",
        [Behavior::RateLimit {
            retry_after_secs: Some(5),
        }],
    );
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["credential"], "env:ANTHROPIC_API_KEYS[1]");
    assert_eq!(
        v["attempts"],
        serde_json::json!([
            {"credential": "env:ANTHROPIC_API_KEYS[0]", "outcome": "rate_limit", "retryAfterMs": 5000},
            {"credential": "env:ANTHROPIC_API_KEYS[1]", "outcome": "ok", "retryAfterMs": null}
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_rate_limit_error_returns_at_once_with_exit_1() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "anthropic/claude-sonnet-4-5");
    home.set("ANTHROPIC_API_KEYS", "ak-1,ak-2");
    fake.script(
        "ak-1",
        [Behavior::InvalidRequest(
            "messages: roles must alternate".into(),
        )],
    );
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["attempts"][0]["outcome"], "format");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("roles must alternate")),
        "{v}"
    );
    assert_eq!(v["reply"], "");
    assert_eq!(
        fake.requests_for_key("ak-2").len(),
        0,
        "second key never tried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_rate_limited_returns_the_last_error() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "openai/gpt-4o-mini");
    home.set("OPENAI_API_KEY", "q-1")
        .set("OPENAI_API_KEY_B", "q-2");
    fake.script(
        "q-1",
        [Behavior::RateLimit {
            retry_after_secs: None,
        }],
    );
    fake.script("q-2", [Behavior::Quota]);
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let outcomes: Vec<&str> = v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rate_limit", "rate_limit"]);
    assert!(
        v["error"].as_str().unwrap().contains("quota"),
        "last error is the quota one: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_model_answers_when_the_primary_is_overloaded() {
    let fake = FakeProvider::start().await;
    let config = TestHome::config_for_fake("anthropic/claude-sonnet-4-5", &fake).replace(
        "primary = \"anthropic/claude-sonnet-4-5\"",
        "primary = \"anthropic/claude-sonnet-4-5\"\nfallbacks = [\"openai/gpt-4o-mini\"]",
    );
    let mut home = TestHome::new(&config);
    home.set("ANTHROPIC_API_KEY", "fa-1")
        .set("OPENAI_API_KEY", "fo-1");
    fake.script("fa-1", [Behavior::Overloaded]);
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    assert_eq!(v["credential"], "env:OPENAI_API_KEY");
    assert_eq!(v["attempts"][0]["outcome"], "overloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_from_auth_profiles_json_come_first() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "anthropic/claude-sonnet-4-5");
    home.set("ANTHROPIC_API_KEY", "env-key");
    home.write(
        "agents/main/agent/auth-profiles.json",
        r#"{"version":1,"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"profile-key"}}}"#,
    );
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["credential"], "anthropic:work");
    assert_eq!(fake.requests()[0].key.as_deref(), Some("profile-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_fills_missing_variables_but_never_overrides() {
    let fake = FakeProvider::start().await;
    let home = home_for(&fake, "openai/gpt-4o-mini");
    home.write(".env", "OPENAI_API_KEY=from-dotenv\n");
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.requests()[0].key.as_deref(), Some("from-dotenv"));

    let mut home2 = home_for(&fake, "openai/gpt-4o-mini");
    home2.write(".env", "OPENAI_API_KEY=from-dotenv\n");
    home2.set("OPENAI_API_KEY", "from-process");
    let out = home2.run(&["agent", "--message", "hi", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.requests()[1].key.as_deref(), Some("from-process"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_names_the_variable_and_onboard() {
    let home = TestHome::new("");
    let out = home.run(&["agent", "--message", "hi", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(
        v["error"],
        "no credentials for anthropic — set ANTHROPIC_API_KEY or run `remoteclaw onboard`"
    );
    assert_eq!(v["attempts"], serde_json::json!([]));
    let out = home.run(&["agent", "--message", "hi"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("set ANTHROPIC_API_KEY or run `remoteclaw onboard`"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_ids_with_at_signs_can_be_selected() {
    // DESIGN §4: an 8-digit date after `@` and `@cf/…` belong to the model id.
    let home = TestHome::new("");
    for (message, model) in [
        (
            "/model claude-haiku@20251001",
            "anthropic/claude-haiku@20251001",
        ),
        (
            "/model openai/@cf/openai/gpt-oss-20b",
            "openai/@cf/openai/gpt-oss-20b",
        ),
    ] {
        let out = home.run(&["agent", "--message", message, "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let v = json(&out);
        assert_eq!(v["model"], model, "{v}");
        assert_eq!(v["directive"]["model"], model, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_directive_still_names_the_model_and_what_was_asked() {
    let home = TestHome::new("");
    // A directive that does not parse never reaches the session: `model` is still the
    // session's model, not "".
    for message in ["/model 3", "/model status@x"] {
        let out = home.run(&["agent", "--message", message, "--json"]).await;
        assert_eq!(out.status.code(), Some(1));
        let v = json(&out);
        assert_eq!(v["model"], "anthropic/claude-sonnet-4-5", "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        // Errors are replies (DESIGN §4): the refusal is the directive's reply.
        assert_eq!(v["reply"], v["error"], "{v}");
    }
    // A select that is refused echoes the model and profile it asked for.
    let out = home
        .run(&[
            "agent",
            "--message",
            "/model anthropic/claude-sonnet-4-5@anthropic:wrk",
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(
        v["directive"],
        serde_json::json!({"kind": "select", "model": "anthropic/claude-sonnet-4-5", "profile": "anthropic:wrk"})
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"anthropic:wrk\" not found")),
        "{v}"
    );
    assert_eq!(v["reply"], v["error"], "{v}");
}

/// The canary secrets must not appear in stdout (JSON) or stderr (logs at trace level),
/// on success, rotation and failure paths alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_json_or_trace_logs() {
    let fake = FakeProvider::start().await;
    let canaries = [
        "sk-ant-api03-CANARY-one-1111",
        "sk-ant-api03-CANARY-two-2222",
        "sk-ant-api03-CANARY-three-3333",
    ];
    for (script, expect_ok) in [
        (
            vec![Behavior::RateLimit {
                retry_after_secs: Some(1),
            }],
            true,
        ),
        (
            vec![Behavior::Raw {
                status: 401,
                content_type: "application/json".into(),
                body: format!(
                    r#"{{"type":"error","error":{{"type":"authentication_error","message":"bad key {}"}}}}"#,
                    canaries[0]
                ),
                headers: vec![],
            }],
            false,
        ),
    ] {
        let mut home = home_for(&fake, "anthropic/claude-sonnet-4-5");
        home.set(
            "ANTHROPIC_API_KEYS",
            &format!("{},{}", canaries[0], canaries[1]),
        );
        home.set("RUST_LOG", "trace");
        home.write("agents/main/agent/auth-profiles.json", &format!(r#"{{"profiles":{{"anthropic:x":{{"type":"token","provider":"anthropic","token":"{}","expires":1}}}}}}"#, canaries[2]));
        fake.script(canaries[0], script);
        let out = home.run(&["agent", "--message", "hi", "--json"]).await;
        assert_eq!(out.status.success(), expect_ok, "{}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            stderr(&out).contains("TRACE") || stderr(&out).contains("DEBUG"),
            "trace logging was on"
        );
        for c in canaries {
            assert!(!all.contains(c), "secret {c} leaked:\n{all}");
            assert!(!all.contains(&c[14..]), "secret tail of {c} leaked");
        }
    }
}

mod config_errors {
    use super::*;

    async fn agent_with_config(config: &str) -> (Option<i32>, String) {
        let home = TestHome::new(config);
        let out = home.run(&["agent", "--message", "hi"]).await;
        (
            out.status.code(),
            stderr(&out).replace(&home.config_path().display().to_string(), "<config>"),
        )
    }

    #[tokio::test]
    async fn typo_names_file_line_key_and_suggestion() {
        let (code, err) = agent_with_config("[gateway]\nbind = \"127.0.0.1\"\nprot = 8080\n").await;
        assert_eq!(code, Some(1));
        assert!(err.contains("<config>:3:"), "{err}");
        assert!(err.contains("unknown field `prot`"), "{err}");
        assert!(err.contains("(key `gateway.prot`)"), "{err}");
        assert!(err.contains("did you mean `port`?"), "{err}");
    }

    #[tokio::test]
    async fn wrong_type_names_the_key() {
        let (code, err) = agent_with_config("[session]\nhistoryTurns = \"many\"\n").await;
        assert_eq!(code, Some(1));
        assert!(err.contains("<config>:2:"), "{err}");
        assert!(err.contains("(key `session.historyTurns`)"), "{err}");
    }

    #[tokio::test]
    async fn bad_toml_names_the_line() {
        let (code, err) = agent_with_config("[agents]\ndefaultId = \"main\n").await;
        assert_eq!(code, Some(1));
        assert!(err.contains("<config>:2:"), "{err}");
        assert!(err.contains("fix the TOML syntax"), "{err}");
    }

    #[tokio::test]
    async fn contradictions_are_load_errors() {
        let (code, err) = agent_with_config("[agents.defaults.models.\"anthropic/a\"]\nalias = \"x\"\n[agents.defaults.models.\"openai/b\"]\nalias = \"X\"\n").await;
        assert_eq!(code, Some(1));
        assert!(
            err.contains("<config>:4:") && err.contains("used twice"),
            "{err}"
        );
        let (code, err) =
            agent_with_config("[agents.defaults.model]\nprimary = \"nosuch/model\"\n").await;
        assert_eq!(code, Some(1));
        assert!(
            err.contains("unknown provider \"nosuch\"")
                && err.contains("agents.defaults.model.primary"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn secretref_tables_report_the_unknown_key() {
        let (code, err) = agent_with_config(
            "[secrets.providers.v]\nsource = \"exec\"\ncommand = \"/bin/x\"\ntimeout = 5\n",
        )
        .await;
        assert_eq!(code, Some(1));
        assert!(
            err.contains("<config>:4:") && err.contains("secrets.providers.v.timeout"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn secretref_tables_report_a_wrong_value_at_its_own_line_and_key() {
        for (table, line, key) in [
            (
                "[secrets.providers.v]\nsource = \"file\"\npath = \"/x\"\nmode = \"yaml\"\n",
                4,
                "secrets.providers.v.mode",
            ),
            (
                "[secrets.providers.v]\nsource = \"exec\"\ncommand = \"/bin/x\"\ntimeoutMs = \"x\"\n",
                4,
                "secrets.providers.v.timeoutMs",
            ),
        ] {
            let (code, err) = agent_with_config(table).await;
            assert_eq!(code, Some(1));
            assert!(
                err.contains(&format!("<config>:{line}:")) && err.contains(&format!("`{key}`")),
                "{err}"
            );
        }
        // Keys of another source are refused, naming the source.
        let (code, err) =
            agent_with_config("[secrets.providers.v]\nsource = \"exec\"\npath = \"/x\"\n").await;
        assert_eq!(code, Some(1));
        assert!(
            err.contains("`path` does not belong to source = \"exec\""),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_explicit_config_is_an_error() {
        let mut home = TestHome::new("");
        home.set("REMOTECLAW_CONFIG_PATH", "/nonexistent/rc.toml");
        let out = home.run(&["agent", "--message", "hi"]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("/nonexistent/rc.toml")
                && stderr(&out).contains("REMOTECLAW_CONFIG_PATH"),
            "{}",
            stderr(&out)
        );
    }

    /// A Redis store nobody answers on: a clear message, never a silent fallback to
    /// state.db, and the URL's password stays out of it.
    #[tokio::test]
    async fn an_unreachable_redis_store_stops_with_a_clear_message() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (code, err) = agent_with_config(&format!(
            "[session]\nstore = \"redis\"\nredisUrl = \"redis://:canary-agent-pw@127.0.0.1:{port}\"\n"
        ))
        .await;
        assert_eq!(code, Some(1));
        assert!(err.contains("state store unavailable"), "{err}");
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(!err.contains("canary-agent-pw"), "{err}");

        // `--json` still prints its object, the error in `error` (DESIGN §6).
        let home = TestHome::new(&format!(
            "[session]\nstore = \"redis\"\nredisUrl = \"redis://:canary-agent-pw@127.0.0.1:{port}\"\n"
        ));
        let out = home.run(&["agent", "--message", "hi", "--json"]).await;
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["reply"], "");
        assert_eq!(v["session"], "local:default");
        assert_eq!(v["attempts"], serde_json::json!([]));
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("state store unavailable"), "{error}");
        assert!(!stdout(&out).contains("canary-agent-pw"));
    }

    /// A Redis URL that cannot be one is a config error naming the key, not a store
    /// that "cannot be reached".
    #[tokio::test]
    async fn a_redis_url_that_does_not_parse_names_the_key() {
        let (code, err) = agent_with_config(
            "[session]\nstore = \"redis\"\nredisUrl = \"http://:canary-url-pw@127.0.0.1:6379\"\n",
        )
        .await;
        assert_eq!(code, Some(1));
        assert!(err.contains("<config>:3:"), "{err}");
        assert!(err.contains("session.redisUrl"), "{err}");
        assert!(err.contains("does not parse"), "{err}");
        assert!(!err.contains("unavailable"), "{err}");
        assert!(!err.contains("canary-url-pw"), "{err}");
    }

    #[test]
    fn every_file_in_config_dir_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("config dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                remoteclaw::config::load(&path, true).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 1, "config/remoteclaw.example.toml exists");
    }
}

/// Regression: `agent --message "/opus@work"` printed nothing and exited 0 — the
/// terminal has no bot name, so the suffix was taken as "for another bot".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_opus_at_work_is_explained_and_exits_1() {
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&format!(
        "{}\n[agents.defaults.models.\"openai/gpt-4o\"]\nalias = \"opus\"\n[agents.defaults.models.\"openai/gpt-4o-mini\"]\n",
        TestHome::config_for_fake("openai/gpt-4o-mini", &fake)
    ));
    home.set("OPENAI_API_KEY", "k");
    let out = home.run(&["agent", "-m", "/opus@work"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("did you mean /model opus@work?"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fake.request_count(), 0);
}

/// Regression: the text after a directive reached the model with its whitespace
/// collapsed, so pasted code lost its newlines and indentation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_text_after_a_directive_keeps_its_newlines_and_indentation() {
    let fake = FakeProvider::start().await;
    let mut home = home_for(&fake, "openai/gpt-4o-mini");
    home.set("OPENAI_API_KEY", "k");
    let code = "fn main() {\n    println!(\"hi\");\n}";
    let out = home
        .run(&["agent", "-m", &format!("/new\n{code}"), "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.requests()[0].user_text(), code);
}
