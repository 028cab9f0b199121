//! Logs and metrics for operators (DESIGN §11): `REMOTECLAW_LOG_FORMAT=json` gives one
//! JSON object per stderr line, and `/metrics` has every documented family with counts
//! that match the traffic driven through the real gateway binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_provider::{Behavior, FakeProvider};
use support::gateway::fake_home;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The value of the sample `name{labels}` in a Prometheus text body.
fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_line_by_line_and_metrics_follow_the_traffic() {
    let fake = FakeProvider::start().await;
    let mut home = fake_home(&fake, "");
    home.set("REMOTECLAW_LOG_FORMAT", "json")
        .set("RUST_LOG", "info");
    let mut child = home
        .command(&["gateway", "--port", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let message = v["fields"]["message"].as_str().unwrap_or("").to_string();
            seen.push(v);
            if let Some(rest) = message.split("listening on http://").nth(1) {
                return format!("http://{}", rest.split_whitespace().next().unwrap());
            }
        }
        panic!("the gateway exited before listening");
    })
    .await
    .unwrap();
    for v in &seen {
        assert!(v["timestamp"].is_string(), "{v}");
        assert!(v["level"].is_string(), "{v}");
        assert!(v["target"].is_string(), "{v}");
    }

    let http = reqwest::Client::new();
    // Two web chat messages, one HTTP API turn, one rate limit then success.
    for text in ["one", "two"] {
        let r = http
            .post(format!("{url}/api/chat"))
            .json(&json!({"session": "m", "message": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    fake.script(
        "gw-key",
        [Behavior::RateLimit {
            retry_after_secs: Some(1),
        }],
    );
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "remoteclaw", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for family in [
        "remoteclaw_turns_total",
        "remoteclaw_provider_attempts_total",
        "remoteclaw_turn_duration_seconds",
        "remoteclaw_active_cooldowns",
        "remoteclaw_messages_total",
        "remoteclaw_oauth_refreshes_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family}"))
                || metrics.contains(&format!("# TYPE {}", family.trim_end_matches("_total"))),
            "{family} missing:\n{metrics}"
        );
    }
    let web_in = r#"remoteclaw_messages_total{channel="web",direction="in"}"#;
    let web_out = r#"remoteclaw_messages_total{channel="web",direction="out"}"#;
    let http_in = r#"remoteclaw_messages_total{channel="http",direction="in"}"#;
    assert_eq!(sample(&metrics, web_in), Some(2.0), "{metrics}");
    assert_eq!(sample(&metrics, web_out), Some(2.0), "{metrics}");
    assert_eq!(sample(&metrics, http_in), Some(1.0), "{metrics}");
    // The failed turn was answered too (with the error object).
    let http_out = r#"remoteclaw_messages_total{channel="http",direction="out"}"#;
    assert_eq!(sample(&metrics, http_out), Some(1.0), "{metrics}");
    // The only credential was rate limited: the turn failed and the key cools down.
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        sample(
            &metrics,
            r#"remoteclaw_provider_attempts_total{provider="openai",outcome="rate_limit"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"remoteclaw_provider_attempts_total{provider="openai",outcome="ok"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "remoteclaw_active_cooldowns"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "remoteclaw_turn_duration_seconds_count"),
        Some(3.0),
        "{metrics}"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// In JSON mode a command's closing error is a JSON line too, so every stderr line
/// parses; in text mode it stays the `error: …` line people read.
#[tokio::test]
async fn a_commands_error_is_a_json_line_in_json_mode() {
    let mut home = support::home::TestHome::new("[gateway]\nprot = 1\n");
    let text = home.run(&["models", "list"]).await;
    assert_eq!(text.status.code(), Some(1));
    assert!(support::home::stderr(&text).starts_with("error: "));

    home.set("REMOTECLAW_LOG_FORMAT", "json");
    let out = home.run(&["models", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = support::home::stderr(&out);
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR");
    assert!(last["timestamp"].is_string());
    let message = last["fields"]["message"].as_str().unwrap();
    assert!(message.contains("gateway.prot"), "{message}");
}

/// Every message a command writes for the person running it (a missing session, a turn
/// without credentials, a note from `state migrate`) is a JSON line in JSON mode, and the
/// same `error: …` / `note: …` text otherwise.
#[tokio::test]
async fn a_commands_messages_are_json_lines_in_json_mode() {
    let mut home = support::home::TestHome::new("");
    let runs: [&[&str]; 3] = [
        &["sessions", "show", "local:nope"],
        &["agent", "--message", "hi"],
        &["state", "migrate", "--to", "redis", "--dry-run"],
    ];
    let mut text_mode = Vec::new();
    for args in runs {
        text_mode.push(support::home::stderr(&home.run(args).await));
    }
    assert!(
        text_mode[0].starts_with("error: no session"),
        "{}",
        text_mode[0]
    );
    assert!(text_mode[1].starts_with("error: "), "{}", text_mode[1]);
    home.set("REMOTECLAW_LOG_FORMAT", "json");
    for (args, plain) in runs.iter().zip(&text_mode) {
        let out = home.run(args).await;
        let err = support::home::stderr(&out);
        let lines: Vec<Value> = err
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {l}"))
            })
            .collect();
        assert!(!lines.is_empty(), "{args:?} said nothing: {plain}");
        for v in &lines {
            assert!(v["timestamp"].is_string() && v["target"].is_string(), "{v}");
        }
        // The text-mode message is there, without its `error: ` prefix.
        let first = plain.lines().next().unwrap();
        let body = first.split_once(": ").map_or(first, |(_, b)| b);
        assert!(
            lines.iter().any(|v| v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(body))),
            "{args:?}: {err}"
        );
    }
}

/// What a command tells the person running it is not a log `RUST_LOG` filters away (a
/// service with JSON logs and a scoped filter still shows why it stopped), and a usage
/// error is one JSON line as well.
#[tokio::test]
async fn a_commands_error_shows_whatever_rust_log_says_and_usage_errors_are_json() {
    let mut home = support::home::TestHome::new("[gateway]\nprot = 1\n");
    home.set("REMOTECLAW_LOG_FORMAT", "json")
        .set("RUST_LOG", "remoteclaw::gateway=debug");
    let one_line = |out: &std::process::Output| -> Value {
        let err = support::home::stderr(out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"))
    };
    let out = home.run(&["models", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v = one_line(&out);
    assert_eq!(v["level"], "ERROR");
    assert!(
        v["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("gateway.prot"),
        "{v}"
    );

    let out = home.run(&["gateway", "--port", "notanumber"]).await;
    assert_eq!(out.status.code(), Some(2), "clap's usage exit code");
    let v = one_line(&out);
    let message = v["fields"]["message"].as_str().unwrap();
    assert!(message.contains("'notanumber'"), "{message}");
    assert!(message.contains("--port"), "{message}");
}
