//! The wizard's questions, answered by a script.

use super::*;
use crate::config::env::EnvMap;
use crate::config::paths::Paths;
use std::collections::VecDeque;

struct Script {
    answers: VecDeque<&'static str>,
    said: Vec<String>,
    secrets_asked: usize,
}

impl Script {
    fn new(answers: &[&'static str]) -> Script {
        Script {
            answers: answers.iter().copied().collect(),
            said: Vec::new(),
            secrets_asked: 0,
        }
    }
}

impl Ui for Script {
    fn say(&mut self, text: &str) {
        self.said.push(text.to_string());
    }
    fn line(&mut self, prompt: &str) -> anyhow::Result<String> {
        self.said.push(prompt.to_string());
        match self.answers.pop_front() {
            Some(a) => Ok(a.to_string()),
            None => bail!("input ended"),
        }
    }
    fn secret(&mut self, prompt: &str) -> anyhow::Result<String> {
        self.secrets_asked += 1;
        self.line(prompt)
    }
}

fn target(dir: &std::path::Path) -> Target {
    let env = EnvMap::from_pairs([("REMOTECLAW_STATE_DIR", dir.display().to_string())]);
    let paths = Paths::from_env(&env).unwrap();
    Target {
        config_path: paths.config_path.clone(),
        paths,
        config: Default::default(),
        env,
        agent_id: "main".into(),
    }
}

#[test]
fn enter_everywhere_but_the_key_stores_an_anthropic_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Script::new(&["", "sk-ant-api03-canary", "", "", "", "", ""]);
    let plan = run(&mut ui, &target(dir.path())).unwrap().unwrap();
    let key = plan.key.as_ref().unwrap();
    assert_eq!(key.provider, "anthropic");
    assert_eq!(key.store, KeyStore::Profile);
    assert_eq!(key.key.expose(), "sk-ant-api03-canary");
    assert_eq!(
        plan.model, None,
        "anthropic/claude-sonnet-4-5 is already the default"
    );
    assert!(plan.telegram.is_none() && plan.discord.is_none());
    assert_eq!(ui.secrets_asked, 1);
    assert!(
        ui.said.iter().all(|s| !s.contains("canary")),
        "{:?}",
        ui.said
    );
    assert!(
        ui.said
            .iter()
            .any(|s| s.contains("profile anthropic:default"))
    );
}

#[test]
fn openai_in_env_with_channels_and_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Script::new(&[
        "2", "sk-oa-1", "maybe", "env", "", "TG_TOKEN", "12, 34", "DC_TOKEN", "555", "y",
    ]);
    let plan = run(&mut ui, &target(dir.path())).unwrap().unwrap();
    let key = plan.key.as_ref().unwrap();
    assert_eq!(
        (key.provider.as_str(), key.store),
        ("openai", KeyStore::Env)
    );
    assert_eq!(plan.model.as_deref(), Some("openai/gpt-4o-mini"));
    assert_eq!(
        plan.telegram,
        Some(Channel {
            token_env: Some("TG_TOKEN".into()),
            owners: vec![12, 34]
        })
    );
    assert_eq!(
        plan.discord,
        Some(Channel {
            token_env: Some("DC_TOKEN".into()),
            owners: vec!["555".to_string()]
        })
    );
    assert!(
        ui.said
            .iter()
            .any(|s| s == "type profile or env. Try again."),
        "{:?}",
        ui.said
    );
    assert!(ui.said.iter().any(|s| s.contains("OPENAI_API_KEY in")));
}

#[test]
fn declining_or_bad_answers_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Script::new(&["", "k", "", "", "", "", "n"]);
    assert!(run(&mut ui, &target(dir.path())).unwrap().is_none());

    let mut ui = Script::new(&["9", "x", "antropic"]);
    let e = run(&mut ui, &target(dir.path())).unwrap_err().to_string();
    assert!(e.contains("Did you mean \"anthropic\""), "{e}");

    let mut ui = Script::new(&["", "", "", "TG", "12 abc"]);
    let e = run(&mut ui, &target(dir.path())).unwrap_err().to_string();
    assert!(e.contains("input ended"), "{e}");
    assert!(
        ui.said
            .iter()
            .any(|s| s.contains("\"abc\" is not a Telegram user id"))
    );
}

#[test]
fn a_subscription_is_offered_and_planned_as_a_sign_in() {
    use crate::cli::onboard::sign_in::{How, SignIn};
    use crate::oauth::preset::OPENAI_CODEX;
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Script::new(&["5", "n", "", "", "", ""]);
    let plan = run(&mut ui, &target(dir.path())).unwrap().unwrap();
    assert_eq!(
        plan.sign_in,
        Some(SignIn {
            provider: "openai-codex".into(),
            label: OPENAI_CODEX.label,
            how: How::Paste,
        })
    );
    assert!(plan.key.is_none());
    assert_eq!(ui.secrets_asked, 0, "a sign-in asks for no API key");
    assert_eq!(plan.model.as_deref(), Some(OPENAI_CODEX.default_model));
    assert!(
        ui.said
            .iter()
            .any(|s| s == "  5 openai-codex: sign in with a subscription (ChatGPT subscription (OpenAI Codex))"),
        "{:?}",
        ui.said
    );
    assert!(
        ui.said.iter().any(|s| s.contains(
            "openai-codex: sign in with a subscription (ChatGPT subscription (OpenAI Codex)) by pasting"
        )),
        "{:?}",
        ui.said
    );
}

#[test]
fn a_device_code_preset_named_by_id_asks_no_browser_question() {
    use crate::cli::onboard::sign_in::How;
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Script::new(&["qwen-portal", "", "", "", ""]);
    let plan = run(&mut ui, &target(dir.path())).unwrap().unwrap();
    let s = plan.sign_in.unwrap();
    assert_eq!((s.provider.as_str(), s.how), ("qwen-portal", How::Device));
    assert!(!ui.said.iter().any(|s| s.contains("web browser")));
}
