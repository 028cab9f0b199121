//! Run the gateway in-process on 127.0.0.1:0, or the real binary, for HTTP tests.

use super::home::TestHome;
use remoteclaw::gateway::{GatewayState, serve};
use remoteclaw::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

pub struct Gateway {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _home: TestHome,
}

impl Gateway {
    pub async fn start(home: TestHome, token: Option<&str>) -> Gateway {
        let app = Arc::new(home.app().await);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let state = GatewayState::new(app, token.map(Secret::new));
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        Gateway {
            url,
            stop: Some(tx),
            task,
            _home: home,
        }
    }

    /// Signal shutdown and wait until the server has finished every in-flight request.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.expect("join").expect("serve");
    }
}

/// Start the real binary's gateway on a free port; returns the child and its address.
pub async fn spawn_binary(home: &TestHome) -> (tokio::process::Child, String) {
    let mut child = home
        .command(&["gateway", "--port", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gateway");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        panic!("gateway exited before listening");
    })
    .await
    .expect("gateway starts");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// Split an SSE body into (event, data) pairs.
pub fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut event = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}
