//! A throwaway RemoteClaw home for a test: a state dir with `remoteclaw.toml`, an
//! environment to go with it, and helpers to run the real binary against it.

use super::fake_provider::FakeProvider;
use remoteclaw::app::App;
use remoteclaw::config::env::EnvMap;
use std::path::{Path, PathBuf};
use std::process::Output;

pub struct TestHome {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl TestHome {
    /// A home whose config is `config` (TOML text; empty = no file).
    pub fn new(config: &str) -> TestHome {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        if !config.is_empty() {
            std::fs::write(state.join("remoteclaw.toml"), config).expect("write config");
        }
        let env = vec![
            ("HOME".to_string(), dir.path().display().to_string()),
            (
                "REMOTECLAW_STATE_DIR".to_string(),
                state.display().to_string(),
            ),
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
        ];
        TestHome { dir, env }
    }

    /// Config pointing the three built-in providers at a fake.
    pub fn config_for_fake(primary: &str, fake: &FakeProvider) -> String {
        let (anthropic, openai, google) = (
            fake.anthropic_base(),
            fake.openai_base(),
            fake.google_base(),
        );
        format!(
            r#"[agents.defaults.model]
primary = "{primary}"

[models.providers.anthropic]
baseUrl = "{anthropic}"

[models.providers.openai]
baseUrl = "{openai}"

[models.providers.google]
baseUrl = "{google}"
"#
        )
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.state_dir().join("remoteclaw.toml")
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.state_dir().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, content).expect("write");
        path
    }

    pub fn env_map(&self) -> EnvMap {
        EnvMap::from_pairs(self.env.iter().cloned())
    }

    pub async fn app(&self) -> App {
        App::load(self.env_map(), None).await.expect("app loads")
    }

    /// A `tokio::process::Command` for the real binary with only this home's environment.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_remoteclaw"));
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("run remoteclaw")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
