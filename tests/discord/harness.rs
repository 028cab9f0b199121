//! The Discord test harness: a home with the fake provider and the fake Discord, the
//! channel run in-process (`Running`, stopped and awaited so counts are final), and
//! the users and channels the tests talk as.

use crate::support::fake_discord::FakeDiscord;
use crate::support::fake_provider::FakeProvider;
use crate::support::home::TestHome;
use remoteclaw::app::App;
use remoteclaw::channels::discord;
use remoteclaw::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "discord-test-token";
pub const WAIT: Duration = Duration::from_secs(15);
pub const DM_CHANNEL: u64 = 5001;
pub const GUILD: u64 = 111;
pub const GUILD_CHANNEL: u64 = 6001;
/// In `allowFrom` and `owners`.
pub const OWNER: u64 = 222;
/// In `allowFrom`, not an owner.
pub const MEMBER: u64 = 333;
/// In neither.
pub const STRANGER: u64 = 444;

/// The default set-up's `[channels.discord]` body.
pub fn default_body() -> String {
    format!(
        "guilds = [\"{GUILD}\"]\nallowFrom = [\"{OWNER}\", \"{MEMBER}\"]\nowners = [\"{OWNER}\"]\n"
    )
}

pub struct Setup {
    pub dc: FakeDiscord,
    pub llm: FakeProvider,
    pub app: Arc<App>,
    pub channel: Running,
    pub home: TestHome,
}

impl Setup {
    /// Stop the channel and wait until `run` returned: every handler has finished, so
    /// what the fake recorded is final (a late duplicate would be in it).
    pub async fn finish(self) -> Setup {
        let Setup {
            dc,
            llm,
            app,
            channel,
            home,
        } = self;
        channel.stop_and_wait().await;
        let channel = Running::stopped();
        Setup {
            dc,
            llm,
            app,
            channel,
            home,
        }
    }

    /// Start the channel again on the same home, as a new process would (new `App`).
    pub async fn restart(mut self) -> Setup {
        self.app = Arc::new(self.home.app().await);
        let readies = self.dc.readies();
        self.channel = Running::start(self.app.clone());
        assert!(
            self.dc.wait_readies(readies + 1, WAIT).await,
            "the restarted client got READY"
        );
        self
    }
}

/// A config with the three providers on the fake `llm` and `[channels.discord]` given by
/// its body (`enabled = true` and `apiBase` are added).
pub fn config(
    llm: &FakeProvider,
    primary: &str,
    models: &str,
    api_base: &str,
    discord: &str,
) -> String {
    let mut c = TestHome::config_for_fake(primary, llm);
    // Most tests look at whole messages: replies are not streamed unless a test says so.
    let streaming = if discord.contains("streaming") {
        ""
    } else {
        "streaming = \"off\"\n"
    };
    c.push_str(&format!(
        "{models}[channels.discord]\nenabled = true\napiBase = \"{api_base}\"\n{streaming}{discord}"
    ));
    c
}

pub const OPUS: &str = "[agents.defaults.models.\"anthropic/claude-opus-4-5\"]\nalias = \"opus\"\n";

/// The channel running in-process.
pub struct Running {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(app: Arc<App>) -> Running {
        let (stop, rx) = watch::channel(false);
        let cfg = app.config().channels.discord.clone().unwrap();
        let task = tokio::spawn(async move {
            if let Err(e) = discord::run(
                app,
                remoteclaw::config::live::section(cfg),
                Secret::new(TOKEN),
                rx,
            )
            .await
            {
                eprintln!("discord channel: {e}");
            }
        });
        Running {
            stop,
            task: Some(task),
        }
    }

    pub fn stopped() -> Running {
        Running {
            stop: watch::channel(true).0,
            task: None,
        }
    }

    /// Signal shutdown; `run` must drain and return within `WAIT`.
    pub async fn stop_and_wait(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("discord::run returned after shutdown")
                .unwrap();
        }
    }

    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Run the channel in-process; waits for READY.
pub async fn run_channel(app: Arc<App>, dc: &FakeDiscord) -> Running {
    let running = Running::start(app);
    assert!(
        dc.wait_ready(WAIT).await,
        "the client identified and got READY"
    );
    running
}

pub async fn setup() -> Setup {
    setup_with(&default_body(), None).await
}

/// A set-up with this `[channels.discord]` body and, when given, an auth-profiles.json
/// for the default agent.
pub async fn setup_with(body: &str, profiles: Option<&str>) -> Setup {
    let dc = FakeDiscord::start(TOKEN).await;
    let llm = FakeProvider::start().await;
    let models = format!("{OPUS}[agents.defaults.models.\"openai/gpt-4o-mini\"]\n");
    let mut home = TestHome::new(&config(
        &llm,
        "openai/gpt-4o-mini",
        &models,
        &dc.api_base(),
        body,
    ));
    home.set("OPENAI_API_KEY", "sk-oa");
    if let Some(p) = profiles {
        home.write("agents/main/agent/auth-profiles.json", p);
    }
    let app = Arc::new(home.app().await);
    let channel = run_channel(app.clone(), &dc).await;
    dc.register_channel(DM_CHANNEL, None, OWNER);
    dc.register_channel(GUILD_CHANNEL, Some(GUILD), 0);
    Setup {
        dc,
        llm,
        app,
        channel,
        home,
    }
}

/// Bot messages in a channel, as text.
pub fn contents(dc: &FakeDiscord, channel: u64) -> Vec<String> {
    dc.channel_messages(channel)
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect()
}
