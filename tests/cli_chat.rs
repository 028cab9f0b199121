//! `remoteclaw chat` with piped input: replies stream to stdout, history carries over
//! between lines, end of input (Ctrl-D) exits 0, and `/exit` leaves early.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Stdio;
use support::fake_provider::FakeProvider;
use support::home::{TestHome, stderr, stdout};
use tokio::io::AsyncWriteExt;

async fn chat(home: &TestHome, input: &str) -> std::process::Output {
    let mut child = home
        .command(&["chat", "--session", "local:t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin); // end of input, like Ctrl-D
    child.wait_with_output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_answers_each_line_and_exits_on_end_of_input() {
    let fake = FakeProvider::start().await;
    let mut home = TestHome::new(&TestHome::config_for_fake("openai/gpt-4o-mini", &fake));
    home.set("OPENAI_API_KEY", "k");
    let out = chat(&home, "one\n\ntwo\n").await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "fake reply to: one\nfake reply to: two\n");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "the blank line is not a turn");
    assert_eq!(
        reqs[1].body["messages"].as_array().unwrap().len(),
        3,
        "second turn carries the first exchange"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_exit_leaves_and_errors_go_to_stderr() {
    let home = TestHome::new("");
    let out = chat(&home, "hello\n/exit\nnever sent\n").await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(
        err.matches("no credentials for anthropic").count(),
        1,
        "{err}"
    );
}
