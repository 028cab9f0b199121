//! A small driver for headless Chromium over the Chrome DevTools Protocol (tokio-tungstenite):
//! start the browser on a loopback debugging port with a throwaway profile, open one
//! page, evaluate JavaScript in it, wait for conditions (polled inside the page, with a
//! deadline), set a file input's files. Uncaught page exceptions are collected.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one protocol call, or one wait for a condition, may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The page-side deadline of [`Browser::wait_for`] (shorter, so it reports first).
const WAIT_MS: u64 = 20_000;

/// `REMOTECLAW_CHROMIUM`, else the first of the usual names on `PATH`.
fn find_chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("REMOTECLAW_CHROMIUM") {
        return PathBuf::from(p);
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium found (tried {names:?} on PATH): install it (`apt-get install -y chromium`) or set REMOTECLAW_CHROMIUM to its path"
    );
}

pub struct Browser {
    ws: Ws,
    next_id: u64,
    /// The page's flattened session.
    session: Option<String>,
    /// `Runtime.exceptionThrown` descriptions seen so far.
    pub exceptions: Vec<String>,
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(find_chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start Chromium");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(CALL_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                    return rest.trim().to_string();
                }
            }
            panic!("Chromium exited before it listened for DevTools");
        })
        .await
        .expect("Chromium prints its DevTools URL");
        assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = connect_async(url.as_str()).await.expect("DevTools socket");
        Browser {
            ws,
            next_id: 0,
            session: None,
            exceptions: Vec::new(),
            _child: child,
            _profile: profile,
        }
    }

    /// One protocol call (on the page once one is open); its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session
            && !method.starts_with("Target.")
            && !method.starts_with("Browser.")
        {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let reply = tokio::time::timeout(CALL_TIMEOUT, async {
            loop {
                let frame = self.ws.next().await.expect("socket open").expect("frame");
                let Message::Text(t) = frame else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    return v;
                }
                if v["method"] == "Runtime.exceptionThrown" {
                    let d = &v["params"]["exceptionDetails"];
                    self.exceptions
                        .push(format!("{} {}", d["text"], d["exception"]["description"]));
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} answered in time"));
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Open `url` in a new page: `prelude` runs before the page's own scripts.
    pub async fn open(&mut self, url: &str, prelude: &str) {
        let target = self
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        self.call("Runtime.enable", json!({})).await;
        self.call("Page.enable", json!({})).await;
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": prelude}),
        )
        .await;
        self.call("Page.navigate", json!({"url": url})).await;
    }

    pub async fn reload(&mut self) {
        self.call("Page.reload", json!({"ignoreCache": true})).await;
    }

    /// Evaluate `expr` (promises awaited); its value as JSON. Panics on an exception.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}\nthrew: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Wait until `condition` (a JS expression) is truthy; panics with `what` after
    /// the deadline. Polled inside the page: nothing here sleeps.
    pub async fn wait_for(&mut self, condition: &str, what: &str) {
        let expr = format!(
            "new Promise((resolve) => {{
               const deadline = Date.now() + {WAIT_MS};
               const check = () => {{
                 let ok = false;
                 try {{ ok = !!({condition}); }} catch (_) {{ ok = false; }}
                 if (ok) resolve(true);
                 else if (Date.now() > deadline) resolve(false);
                 else setTimeout(check, 25);
               }};
               check();
             }})"
        );
        if self.eval(&expr).await != json!(true) {
            let page = self
                .eval("document.body ? document.body.innerText : ''")
                .await;
            panic!(
                "timed out waiting for {what} ({condition}); page exceptions: {:?}; page: {page}",
                self.exceptions
            );
        }
    }

    /// Give the file input matched by `selector` these files (fires its change event).
    pub async fn set_files(&mut self, selector: &str, files: &[&Path]) {
        let doc = self.call("DOM.getDocument", json!({"depth": 0})).await;
        let node = self
            .call(
                "DOM.querySelector",
                json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
            )
            .await;
        let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({"files": files, "nodeId": node["nodeId"]}),
        )
        .await;
    }
}
