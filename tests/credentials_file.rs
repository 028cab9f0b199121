//! auth-profiles.json changing under a running gateway (README "auth-profiles.json is
//! re-read on change the same way", DESIGN §2, §8), with the real binary: a corrupt
//! version keeps the last valid profiles in force and shows on `/health` as
//! `credentialsError`; a file corrupt from the start gives way to environment keys; the
//! `usageStats` of a file written while the gateway runs are imported, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_provider::FakeProvider;
use support::gateway::sse_events;
use support::home::{TestHome, stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader};

const AP: &str = "agents/main/agent/auth-profiles.json";
/// How long a change may take to be noticed before a test gives up.
const BOUND: Duration = Duration::from_secs(15);

fn home(fake: &FakeProvider) -> TestHome {
    let mut h = TestHome::new(&TestHome::config_for_fake(
        "anthropic/claude-sonnet-4-5",
        fake,
    ));
    h.set("RUST_LOG", "info");
    h
}

fn api_key(key: &str) -> Value {
    json!({"type": "api_key", "provider": "anthropic", "key": key})
}

/// Replace the file whole (as editors and the CLI save), so it is never read halfway.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("json.edit");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The real gateway, its address and its log (stderr) as it comes.
struct Gw {
    _child: tokio::process::Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Gw {
    async fn start(h: &TestHome) -> Gw {
        let mut child = h
            .command(&["gateway", "--port", "0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
        let l = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                l.lock().unwrap().push(line);
            }
        });
        let addr = poll(|| async { l_addr(&lines.lock().unwrap()) }).await;
        Gw {
            _child: child,
            addr,
            lines,
        }
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    async fn health(&self) -> Value {
        reqwest::get(format!("http://{}/health", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// One turn over `/api/chat`: `Ok(reply)` or `Err(error text)`.
    async fn chat(&self, message: &str) -> Result<String, String> {
        let body = reqwest::Client::new()
            .post(format!("http://{}/api/chat", self.addr))
            .json(&json!({"session": "s1", "message": message}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let events = sse_events(&body);
        match events.iter().find(|(e, _)| e == "error") {
            Some((_, d)) => Err(d.clone()),
            None if events.iter().any(|(e, _)| e == "done") => Ok(body),
            None => Err(format!("no done event: {body}")),
        }
    }
}

fn l_addr(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.split("listening on http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|a| a.trim_end_matches('/').to_string())
}

/// Ask `f` every 50 ms until it gives something, for at most [`BOUND`].
async fn poll<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Regression (audit): a running gateway whose auth-profiles.json turned corrupt
/// answered every turn with the JSON error (environment keys included), dropped its
/// last good copy, and `/health` stayed `{"ok":true}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_file_that_turns_corrupt_keeps_the_last_valid_profiles() {
    let fake = FakeProvider::start().await;
    let mut h = home(&fake);
    h.set("ANTHROPIC_API_KEY", "sk-env-CANARY");
    let good = json!({"version": 1, "profiles": {"anthropic:a": api_key("sk-file-CANARY")}});
    let path = h.write(AP, &good.to_string());
    let gw = Gw::start(&h).await;
    gw.chat("one").await.unwrap();
    assert_eq!(fake.requests_for_key("sk-file-CANARY").len(), 1);

    let corrupt = "{\"version\":1,\"profiles\":{";
    replace(&path, corrupt);
    let error = poll(|| async {
        let v = gw.health().await;
        v.get("credentialsError")
            .and_then(Value::as_str)
            .map(|e| (v.clone(), e.to_string()))
    })
    .await;
    let (health, error) = error;
    assert_eq!(health["ok"], true, "{health}");
    assert!(
        error.starts_with(&format!("{}:1: not valid JSON", path.display())),
        "{error}"
    );
    assert!(
        error.contains("the last valid version of its profiles stays in force"),
        "{error}"
    );
    for turn in ["two", "three"] {
        gw.chat(turn).await.unwrap();
    }
    assert_eq!(
        fake.requests_for_key("sk-file-CANARY").len(),
        3,
        "the last valid profile still answers"
    );
    assert!(fake.requests_for_key("sk-env-CANARY").is_empty());
    assert_eq!(
        gw.log().matches("credentials file is not valid").count(),
        1,
        "logged once: {}",
        gw.log()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        corrupt,
        "untouched"
    );

    // Fixed: in force again, logged, gone from /health.
    let fixed = json!({"version": 1, "profiles": {"anthropic:a": api_key("sk-file2-CANARY")}});
    replace(&path, &fixed.to_string());
    poll(|| async {
        gw.health()
            .await
            .get("credentialsError")
            .is_none()
            .then_some(())
    })
    .await;
    gw.chat("four").await.unwrap();
    assert_eq!(fake.requests_for_key("sk-file2-CANARY").len(), 1);
    assert!(
        gw.log().contains("credentials file is valid again"),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains("CANARY"), "{}", gw.log());
}

/// Regression (audit): a file corrupt at the start (or for the one-shot `agent`) stopped
/// every turn although ANTHROPIC_API_KEY was set. Turns go on with the keys that do not
/// come from the file, and the problem is reported (file, line, "not used").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_file_corrupt_from_the_start_gives_way_to_environment_keys() {
    let fake = FakeProvider::start().await;
    let corrupt = "{\"version\":1,\n\"profiles\":{\"anthropic:a\":{\"key\":\"sk-file-CANARY\"";
    let mut h = home(&fake);
    h.set("ANTHROPIC_API_KEY", "sk-env-CANARY");
    let path = h.write(AP, corrupt);
    let where_ = format!("{}:2: not valid JSON", path.display());
    let unused = "Its profiles are not used until it is fixed";

    let out = h.run(&["agent", "--json", "--message", "hi"]).await;
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{printed}");
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["credential"], "env:ANTHROPIC_API_KEY", "{v}");
    assert!(stderr(&out).contains(&where_), "{printed}");
    assert!(stderr(&out).contains(unused), "{printed}");
    assert!(!printed.contains("CANARY"), "{printed}");

    // `models status`: what a turn uses, the problem on stderr, exit 1.
    let out = h.run(&["models", "status", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        status.to_string().contains("env:ANTHROPIC_API_KEY"),
        "{status}"
    );
    assert!(stderr(&out).contains(&where_), "{}", stderr(&out));

    // The gateway: turns answer with the environment key, /health says why.
    let gw = Gw::start(&h).await;
    gw.chat("one").await.unwrap();
    assert_eq!(fake.requests_for_key("sk-env-CANARY").len(), 2);
    let health = gw.health().await;
    assert_eq!(health["ok"], true);
    let error = health["credentialsError"].as_str().unwrap_or_default();
    assert!(error.starts_with(&where_), "{health}");
    assert!(error.contains(unused), "{health}");

    // No other key: the error says why the file's profiles are not there.
    let bare = home(&fake);
    bare.write(AP, corrupt);
    let out = bare.run(&["agent", "--message", "hi"]).await;
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("no credentials for anthropic"), "{err}");
    assert!(err.contains(unused), "{err}");

    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        corrupt,
        "untouched"
    );
    assert!(!gw.log().contains("CANARY"), "{}", gw.log());
    assert!(!health.to_string().contains("CANARY"));
}

/// Regression (audit): a running gateway took up a new file's profiles and order but
/// not its `usageStats` until a restart (DESIGN §2: read once into the state store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_stats_of_a_file_written_while_the_gateway_runs_are_imported_once() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let gw = Gw::start(&h).await;
    assert!(gw.chat("no credentials yet").await.is_err());

    let file = |extra: Value| {
        let mut doc = json!({"version": 1,
            "profiles": {"anthropic:a": api_key("ka"), "anthropic:b": api_key("kb")},
            "order": {"anthropic": ["anthropic:a", "anthropic:b"]},
            "usageStats": {"anthropic:a": {"cooldownUntil": now_ms() + 3_600_000, "errorCount": 1}}});
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.get_mut("profiles")
                .unwrap()
                .as_object_mut()
                .unwrap()
                .extend(e.clone());
        }
        doc.to_string()
    };
    let path = h.state_dir().join(AP);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    replace(&path, &file(json!({})));
    poll(|| async { gw.chat("first").await.ok() }).await;
    gw.chat("second").await.unwrap();
    gw.chat("third").await.unwrap();
    assert!(
        fake.requests_for_key("ka").is_empty(),
        "a cools down as the file says"
    );
    assert_eq!(fake.requests_for_key("kb").len(), 3);

    // Once: cleared by the operator, the cooldown does not come back when the gateway
    // reads the file again (it logs the ignored entry, so it did read it).
    let out = h
        .run(&["models", "auth", "cooldown", "clear", "anthropic:a"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    replace(
        &path,
        &file(json!({"x:bad": {"type": "password", "provider": "x"}})),
    );
    poll(|| async {
        gw.log()
            .contains("\"x:bad\" has unknown type")
            .then_some(())
    })
    .await;
    poll(|| async {
        gw.chat("again").await.unwrap();
        (!fake.requests_for_key("ka").is_empty()).then_some(())
    })
    .await;
    assert!(gw.log().contains("imported usageStats"), "{}", gw.log());
}

/// Regression (review): with a corrupt file, `cooldown list` printed `[]` and `cooldown
/// clear ID` said "had no cooldown": the agent's own entries were picked out against no
/// profiles, which dropped every profile's entry. Now every entry is listed (and
/// cleared), with a warning that names the file's problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldowns_stay_listed_and_clearable_while_the_credentials_file_is_corrupt() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let until = now_ms() + 5 * 3_600_000;
    let path = h.write(
        AP,
        &json!({"version": 1, "profiles": {"anthropic:x": api_key("sk-x-CANARY")},
            "usageStats": {"anthropic:x": {"disabledUntil": until, "disabledReason": "billing", "errorCount": 1}}})
        .to_string(),
    );
    let out = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("anthropic:x"), "{}", stdout(&out));

    replace(
        &path,
        "{\"version\":1,\n\"profiles\":{\"anthropic:x\":{\"key\":\"sk-x-CANARY\"",
    );
    let where_ = format!("{}:2: not valid JSON", path.display());
    let out = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(rows[0]["id"], "anthropic:x", "{rows}");
    assert_eq!(rows[0]["reason"], "billing", "{rows}");
    assert!(stderr(&out).contains("every agent"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&where_), "{}", stderr(&out));

    let out = h
        .run(&["models", "auth", "cooldown", "clear", "anthropic:x"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Cleared 1 cooldown entry of anthropic:x"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains(&where_), "{}", stderr(&out));
    let out = h
        .run(&["models", "auth", "cooldown", "list", "--json"])
        .await;
    assert_eq!(stdout(&out).trim(), "[]");
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!printed.contains("CANARY"), "{printed}");
}

/// Regression (review): a session pinned to a profile of a file corrupt at the start got
/// only `Auth profile "anthropic:x" not found. Profiles for anthropic: none.`, with no
/// word of the file. The error now names the file, its line, and that it must be fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_profile_of_a_corrupt_credentials_file_says_the_file_must_be_fixed() {
    let fake = FakeProvider::start().await;
    let h = home(&fake);
    let path = h.write(
        AP,
        &json!({"version": 1, "profiles": {"anthropic:x": api_key("sk-x-CANARY")}}).to_string(),
    );
    let out = h
        .run(&[
            "agent",
            "--json",
            "--message",
            "/model anthropic/claude-sonnet-4-5@anthropic:x",
        ])
        .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    replace(
        &path,
        "{\"version\":1,\n\"profiles\":{\"anthropic:x\":{\"key\":\"sk-x-CANARY\"",
    );
    let out = h.run(&["agent", "--json", "--message", "hi"]).await;
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{printed}");
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Auth profile \"anthropic:x\" not found"),
        "{v}"
    );
    assert!(
        error.contains(&format!("{}:2: not valid JSON", path.display())),
        "{v}"
    );
    assert!(error.contains("until it is fixed"), "{v}");
    assert!(!printed.contains("CANARY"), "{printed}");
    assert!(fake.requests_for_key("sk-x-CANARY").is_empty());
}
