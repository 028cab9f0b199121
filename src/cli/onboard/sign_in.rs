//! Onboarding's "sign in with a subscription" (DESIGN §5a): for the providers that have
//! a built-in OAuth preset (`crate::oauth::preset::PRESETS`) the wizard offers a sign-in
//! instead of an API key, asks how the browser will come back, and after the operator
//! confirms runs exactly `remoteclaw models auth login` (same flow, same profile ids,
//! same declaration in the config). The non-interactive onboard stores API keys only;
//! its messages point at `models auth login` for these providers.

use super::credentials::Target;
use super::wizard::{Ui, ask};
use crate::oauth::preset::{PRESETS, Preset};
use anyhow::{Context, anyhow, bail};
use std::process::ExitCode;

/// How the sign-in reaches the provider and comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// A browser on this machine returns to the loopback callback.
    Browser,
    /// The operator opens the address anywhere and pastes where it ends (`--no-browser`).
    Paste,
    /// The device grant: a code entered on any device.
    Device,
}

/// A subscription sign-in the plan runs before anything else is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SignIn {
    pub provider: String,
    pub label: &'static str,
    pub how: How,
}

/// "sign in with a subscription (ChatGPT subscription (OpenAI Codex))".
pub(super) fn offer(p: &Preset) -> String {
    format!("sign in with a subscription ({})", p.label)
}

/// The presets, for messages: "openai-codex (ChatGPT subscription (OpenAI Codex)), …".
pub(super) fn presets_text() -> String {
    PRESETS
        .iter()
        .map(|p| format!("{} ({})", p.provider, p.label))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether this machine has a desktop a browser can open on.
fn has_desktop(target: &Target) -> bool {
    cfg!(target_os = "macos")
        || target.env.get_nonblank("DISPLAY").is_some()
        || target.env.get_nonblank("WAYLAND_DISPLAY").is_some()
}

/// The wizard's questions for a sign-in with `preset` (none for the device grant).
pub(super) fn ask_how(ui: &mut dyn Ui, target: &Target, preset: &Preset) -> anyhow::Result<How> {
    let provider = preset.provider;
    let code_flow = crate::oauth::preset::Endpoints::of(&target.config, provider)
        .is_some_and(|e| e.authorize_url.is_some());
    if !code_flow {
        ui.say(&format!(
            "{provider} signs in with a code you enter on any device; it is shown after you confirm."
        ));
        return Ok(How::Device);
    }
    let desktop = has_desktop(target);
    ask(
        ui,
        &format!(
            "Is there a web browser on this machine? Type y (it opens and comes back here by itself) or n (open the address on any device, then paste the address it ends on) [{}]: ",
            if desktop { "y" } else { "n" }
        ),
        false,
        |a| match a.to_ascii_lowercase().as_str() {
            "" if desktop => Ok(How::Browser),
            "" => Ok(How::Paste),
            "y" | "yes" => Ok(How::Browser),
            "n" | "no" => Ok(How::Paste),
            _ => Err("type y or n".into()),
        },
    )
}

impl SignIn {
    pub(super) fn new(preset: &Preset, how: How) -> SignIn {
        SignIn {
            provider: preset.provider.to_string(),
            label: preset.label,
            how,
        }
    }

    /// The summary line before the operator confirms.
    pub(super) fn summary(&self, target: &Target) -> String {
        let how = match self.how {
            How::Browser => "in a browser on this machine",
            How::Paste => "by pasting the address the browser ends on",
            How::Device => "with a code entered on any device",
        };
        format!(
            "{}: sign in with a subscription ({}) {how} → an oauth profile {}:<your account> in {}",
            self.provider,
            self.label,
            self.provider,
            target.profiles_path().display()
        )
    }

    /// The arguments of the equivalent `remoteclaw models auth login`.
    fn argv<'a>(&'a self, agent: Option<&'a str>) -> Vec<&'a str> {
        let mut argv = vec![
            "remoteclaw",
            "models",
            "auth",
            "login",
            "--provider",
            self.provider.as_str(),
        ];
        match self.how {
            How::Browser => {}
            How::Paste => argv.push("--no-browser"),
            How::Device => argv.push("--device"),
        }
        if let Some(a) = agent {
            argv.extend(["--agent", a]);
        }
        argv
    }

    /// Run `remoteclaw models auth login` for this sign-in (it prints its own report).
    pub(super) async fn run(&self, agent: Option<&str>) -> anyhow::Result<()> {
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(self.argv(agent))
            .map_err(|e| anyhow!("cannot start the {} sign-in: {e}", self.provider))?;
        let crate::cli::Command::Models(args) = cli.command else {
            bail!("cannot start the {} sign-in", self.provider);
        };
        let code = crate::cli::models::run(args).await.with_context(|| {
            format!(
                "the {} sign-in did not finish; nothing else was changed. Try again with `remoteclaw models auth login --provider {}`",
                self.provider, self.provider
            )
        })?;
        if code != ExitCode::SUCCESS {
            bail!(
                "the {} sign-in did not finish; nothing else was changed",
                self.provider
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::preset::{OPENAI_CODEX, QWEN_PORTAL};

    #[test]
    fn sign_ins_become_the_login_command() {
        let s = SignIn::new(&OPENAI_CODEX, How::Paste);
        assert_eq!(
            s.argv(Some("work")).join(" "),
            "remoteclaw models auth login --provider openai-codex --no-browser --agent work"
        );
        let s = SignIn::new(&QWEN_PORTAL, How::Device);
        assert_eq!(
            s.argv(None).join(" "),
            "remoteclaw models auth login --provider qwen-portal --device"
        );
        // Each of them parses as the real command line.
        assert!(<crate::cli::Cli as clap::Parser>::try_parse_from(s.argv(None)).is_ok());
    }

    #[test]
    fn every_preset_is_named_in_the_texts() {
        for p in PRESETS {
            assert!(presets_text().contains(p.provider));
            assert!(offer(p).contains(p.label));
        }
    }
}
