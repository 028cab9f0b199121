//! The official OpenAI Python client against the real gateway binary and the fake
//! provider. Needs Python with the `openai` package, so it is ignored by default;
//! `.ci/run` installs the package into a virtualenv and runs it with `--ignored`,
//! pointing `REMOTECLAW_PYTHON` at that interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use support::fake_provider::FakeProvider;
use support::gateway::spawn_binary;
use support::home::TestHome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Python with the openai package; .ci/run provides it"]
async fn official_openai_python_client_works_against_the_gateway() {
    let python = std::env::var("REMOTECLAW_PYTHON").unwrap_or_else(|_| "python3".into());
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", &fake));
    home.set("OPENAI_API_KEY", "sk-py");
    let (mut child, addr) = spawn_binary(&home).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/openai_client_check.py"
    );
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .env("REMOTECLAW_URL", format!("http://{addr}"))
        .output()
        .await
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("openai client check passed"), "{text}");
    let _ = child.kill().await;
}
