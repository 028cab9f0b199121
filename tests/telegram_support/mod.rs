//! What the Telegram test files share: a home with the fake provider and the fake Bot
//! API, the channel run in-process (stoppable like the gateway stops it), the real
//! `remoteclaw gateway` binary with its log lines watched, and conditions to wait for
//! ("this update is answered") with a deadline instead of sleeps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::support::fake_provider::FakeProvider;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::home::TestHome;
use remoteclaw::app::App;
use remoteclaw::channels::telegram;
use remoteclaw::clock::SystemClock;
use remoteclaw::inbox::Inbox;
use remoteclaw::secret::Secret;
use remoteclaw::state::StateDb;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, watch};

pub const TOKEN: &str = "123456:TEST-token";
/// The fake bot's id (the token's numeric part).
pub const BOT_ID: i64 = 123_456;
pub const WAIT: Duration = Duration::from_secs(10);
pub const MODELS: &str =
    "[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\nalias = \"opus\"\n";

pub struct Setup {
    pub tg: FakeTelegram,
    pub llm: FakeProvider,
    pub app: Arc<App>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
    pub home: TestHome,
}

impl Setup {
    /// Stop the channel as the gateway does on SIGTERM and wait until it returns.
    pub async fn stop_channel(self) -> Self {
        let _ = self.stop.send(true);
        let mut s = self;
        (&mut s.task).await.unwrap();
        s
    }

    /// Start the channel again on the same home (a restart).
    pub fn restart(mut self) -> Self {
        let (stop, task) = start(&self.app);
        self.stop = stop;
        self.task = task;
        self
    }
}

/// A config with the three providers on the fake `llm` and `[channels.telegram]` given
/// by its body (`enabled = true` and `apiRoot` are added).
pub fn config(
    llm: &FakeProvider,
    primary: &str,
    models: &str,
    api_root: &str,
    telegram: &str,
) -> String {
    let mut c = TestHome::config_for_fake(primary, llm);
    // Most tests look at whole messages: replies are not streamed unless a test says so.
    let streaming = if telegram.contains("streaming") {
        ""
    } else {
        "streaming = \"off\"\n"
    };
    c.push_str(&format!(
        "{models}[channels.telegram]\nenabled = true\napiRoot = \"{api_root}\"\n{streaming}{telegram}"
    ));
    c
}

/// Users 42 (owner) and 43 may talk; group -1001234 is allowed; `extra` adds lines
/// to `[channels.telegram]`.
pub async fn setup(extra: &str) -> Setup {
    let tg = FakeTelegram::start(TOKEN).await;
    setup_with(tg, extra).await
}

/// Like [`setup`], with updates already queued at the fake before the channel starts.
pub async fn setup_with(tg: FakeTelegram, extra: &str) -> Setup {
    let (home, llm) = prepare(&tg, extra).await;
    let app = Arc::new(home.app().await);
    let (stop, task) = start(&app);
    Setup {
        tg,
        llm,
        app,
        stop,
        task,
        home,
    }
}

/// The home and fake provider of [`setup`], without starting the channel.
pub async fn prepare(tg: &FakeTelegram, extra: &str) -> (TestHome, FakeProvider) {
    let llm = FakeProvider::start().await;
    let models = format!("{MODELS}[agents.defaults.models.\"openai/gpt-4o-mini\"]\n");
    let telegram = format!(
        "botToken = \"{TOKEN}\"\nallowFrom = [42, 43]\nowners = [42]\ngroups = [-1001234]\n{extra}"
    );
    let config = config(
        &llm,
        "openai/gpt-4o-mini",
        &models,
        &tg.api_url(),
        &telegram,
    );
    let mut home = TestHome::new(&config);
    home.set("OPENAI_API_KEY", "sk-oa")
        .set("ANTHROPIC_API_KEY", "sk-ant");
    home.write("agents/main/agent/auth-profiles.json", r#"{"profiles":{"anthropic:work":{"type":"api_key","provider":"anthropic","key":"sk-ant-work"}}}"#);
    (home, llm)
}

pub fn start(app: &Arc<App>) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, rx) = watch::channel(false);
    let cfg = app.config().channels.telegram.clone().unwrap();
    let app = app.clone();
    let task = tokio::spawn(async move {
        telegram::run(
            app,
            remoteclaw::config::live::section(cfg),
            Secret::new(TOKEN),
            rx,
        )
        .await
        .expect("channel runs");
    });
    (stop, task)
}

/// The inbox of the home's state.db, opened as another process would.
pub fn inbox(home: &TestHome) -> Inbox {
    let db = StateDb::open(&home.state_dir().join("state.db")).unwrap();
    Inbox::new(db, Arc::new(SystemClock))
}

pub const CHANNEL: &str = "telegram:123456";
pub const OFFSET_KEY: &str = "telegram:offset:123456";

/// Poll `cond` every 20 ms until it holds; panics with `what` at the deadline.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the channel is done with these updates: acknowledged to Telegram (so
/// recorded) and not pending in the inbox — every reply of their turns was sent.
pub async fn wait_answered(tg: &FakeTelegram, inbox: &Inbox, updates: &[i64]) {
    let last = updates.iter().copied().max().unwrap_or(0);
    eventually("the updates are answered", WAIT, move || async move {
        let acked = tg.poll_offsets().iter().flatten().any(|o| *o > last);
        let pending = inbox.pending(CHANNEL).await.unwrap();
        acked
            && !pending
                .iter()
                .any(|p| updates.iter().any(|u| p.id == u.to_string()))
    })
    .await;
}

/// The real `remoteclaw gateway` binary, its stderr lines kept to be waited on.
pub struct Binary {
    pub child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl Binary {
    pub async fn spawn(home: &TestHome) -> Binary {
        let mut child = home
            .command(&["gateway", "--port", "0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn gateway");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let mut reader = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (l, c) = (lines.clone(), changed.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                l.lock().unwrap().push(line);
                c.notify_waiters();
            }
        });
        let b = Binary {
            child,
            lines,
            changed,
        };
        b.wait_for_line("Telegram channel connected").await;
        b
    }

    pub fn pid(&self) -> rustix::process::Pid {
        let id = self.child.id().expect("running");
        rustix::process::Pid::from_raw(i32::try_from(id).unwrap()).unwrap()
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        rustix::process::kill_process(self.pid(), sig).expect("signal the gateway");
    }

    /// `127.0.0.1:PORT` the gateway listens on (from its start-up log line).
    pub fn addr(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.split("listening on http://").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| a.trim_end_matches('/').to_string())
            .expect("the gateway logged its address")
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Wait until a stderr line contains `needle`.
    pub async fn wait_for_line(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no log line with {needle:?} in:\n{}", self.log());
            }
        }
    }

    /// Wait for the process to end; its exit status.
    pub async fn exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("the gateway did not exit; log:\n{}", self.log()),
        }
    }
}
