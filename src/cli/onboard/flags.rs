//! The non-interactive `onboard`: the plan from flags, for scripts. Missing or bad
//! input is an error naming the flag. It stores API keys only: a provider that signs in
//! with a subscription (an OAuth preset) is pointed at `remoteclaw models auth login`.

use super::credentials::{self, Target, check_secret_text, read_stdin, stdin_is_tty};
use super::{
    Channel, KeyPlan, KeyStore, OnboardArgs, Plan, check_discord_id, check_env_name, check_model,
    config_names_primary, suggested_model,
};
use crate::secret::Secret;
use anyhow::{Context, anyhow, bail};

impl OnboardArgs {
    pub(super) fn has_flags(&self) -> bool {
        self.provider.is_some()
            || self.api_key_stdin
            || self.store.is_some()
            || self.telegram_token_env.is_some()
            || !self.telegram_owners.is_empty()
            || self.discord_token_env.is_some()
            || !self.discord_owners.is_empty()
            || self.model.is_some()
    }
}

/// The plan from flags; missing or bad input is an error naming the flag.
pub(super) fn plan_from_flags(
    target: &Target,
    args: &OnboardArgs,
    notes: &mut Vec<String>,
) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    if let Some(raw) = &args.provider {
        let provider = target.provider(raw).context("--provider")?;
        let preset = crate::oauth::preset::preset(&provider);
        if let Some(p) = preset.filter(|_| !args.api_key_stdin) {
            bail!(
                "--provider {provider}: {provider} signs in with a subscription ({}), which has no API key to pipe in. Sign in with `remoteclaw models auth login --provider {provider}` (or run `remoteclaw onboard` on a terminal), then set the other flags here",
                p.label
            );
        }
        if let Some(p) = preset {
            notes.push(format!(
                "{provider} is usually reached by signing in with a subscription ({}): `remoteclaw models auth login --provider {provider}`; the key was stored as given",
                p.label
            ));
        }
        if !args.api_key_stdin {
            bail!(
                "--provider {provider} needs its API key: add --api-key-stdin and pipe the key in, e.g. `printf '%s' \"$KEY\" | remoteclaw onboard --non-interactive --provider {provider} --api-key-stdin`"
            );
        }
        let key = if stdin_is_tty() {
            credentials::prompt_hidden(&format!(
                "Paste the {provider} API key (input is hidden), then press Enter: "
            ))?
        } else {
            read_stdin()?
        };
        if key.is_empty() {
            bail!("no API key on stdin (--api-key-stdin): pipe the {provider} key in");
        }
        check_secret_text(&key, "API key")?;
        plan.key = Some(KeyPlan {
            provider,
            key: Secret::new(key),
            store: args.store.unwrap_or(KeyStore::Profile),
        });
    }
    if let Some(m) = &args.model {
        plan.model = Some(check_model(target, m).map_err(|e| anyhow!("--model: {e}"))?);
    } else if let Some(k) = &plan.key {
        let current = crate::catalog::Catalog::from_config(&target.config).default;
        if current.provider != k.provider {
            match suggested_model(&k.provider) {
                Some(m) if !config_names_primary(target) => plan.model = Some(m.to_string()),
                _ => notes.push(format!(
                    "the default model is {current}, which does not use the {} key; choose one with --model {}/<model>",
                    k.provider, k.provider
                )),
            }
        }
    }
    if let Some(var) = &args.telegram_token_env {
        check_env_name(var).map_err(|e| anyhow!("--telegram-token-env: {e}"))?;
    }
    if let Some(var) = &args.discord_token_env {
        check_env_name(var).map_err(|e| anyhow!("--discord-token-env: {e}"))?;
    }
    if args.telegram_token_env.is_some() || !args.telegram_owners.is_empty() {
        plan.telegram = Some(Channel {
            token_env: args.telegram_token_env.clone(),
            owners: args.telegram_owners.clone(),
        });
    }
    if args.discord_token_env.is_some() || !args.discord_owners.is_empty() {
        let owners = args
            .discord_owners
            .iter()
            .map(|o| check_discord_id(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("--discord-owner: {e}"))?;
        plan.discord = Some(Channel {
            token_env: args.discord_token_env.clone(),
            owners,
        });
    }
    if plan.is_empty() {
        bail!(
            "nothing to set up: pass --provider P with --api-key-stdin (and optionally --store env|profile), --telegram-token-env VAR, --discord-token-env VAR, --telegram-owner ID, --discord-owner ID or --model PROVIDER/MODEL. To sign in with a subscription instead of an API key ({}), run `remoteclaw models auth login --provider P`",
            super::sign_in::presets_text()
        );
    }
    Ok(plan)
}
