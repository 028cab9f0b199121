//! Run the gateway in-process on 127.0.0.1:0, or the real binary, for HTTP tests.

use super::fake_provider::FakeProvider;
use super::home::TestHome;
use remoteclaw::gateway::{GatewayState, TurnLimiter, serve};
use remoteclaw::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

pub struct Gateway {
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: std::net::SocketAddr,
    /// The gateway's turn limiter, to see how many turns run and wait.
    pub limiter: Arc<TurnLimiter>,
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
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let (tx, rx) = oneshot::channel::<()>();
        let state = GatewayState::new(app, token.map(Secret::new));
        let limiter = state.limiter.clone();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = rx.await;
        }));
        Gateway {
            url,
            addr,
            limiter,
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

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Send `request` (bytes exactly as given) on a fresh connection and read until the
/// server closes it. `None` when the server closed it without answering (or reset it).
/// Send `Connection: close` in `request` so the server closes after answering.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Option<RawResponse> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before it has read everything we send.
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
        .await
        .expect("the gateway neither answered nor closed the connection within 30 s");
    if read.is_err() && buf.is_empty() {
        return None;
    }
    parse_response(&buf)
}

/// Parse one HTTP/1.1 response (Content-Length or read-to-close body; chunked is decoded).
pub fn parse_response(buf: &[u8]) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = nl + 2;
            out.extend_from_slice(rest.get(start..start + size)?);
            rest = rest.get(start + size + 2..)?;
        }
        body = out;
    }
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

/// A home whose providers all point at `fake` (primary `openai/gpt-4o-mini`, key
/// `gw-key`), with `extra` TOML appended.
pub fn fake_home(fake: &FakeProvider, extra: &str) -> TestHome {
    let mut config = TestHome::config_for_fake("openai/gpt-4o-mini", fake);
    config.push_str(extra);
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "gw-key");
    home
}

/// A raw POST with exactly these extra header lines (each ending in `\r\n`).
pub fn raw_post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A raw GET with exactly these extra header lines (each ending in `\r\n`).
pub fn raw_get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}
