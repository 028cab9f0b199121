//! Which configured secret provider a ref goes through (`lookup`, with the implicit
//! `env:default`), and resolving `env` refs against the environment (allowlist, unset
//! and empty variables).

use super::source_name;
use crate::config::env::EnvMap;
use crate::config::{
    Config, EnvSecretProvider, ExecSecretProvider, FileSecretProvider, SecretProviderConfig,
    SecretRef, SecretSource,
};
use crate::secret::Secret;

fn with_article(s: SecretSource) -> &'static str {
    match s {
        SecretSource::Env => "an env",
        SecretSource::File => "a file",
        SecretSource::Exec => "an exec",
    }
}

/// The provider a ref goes through.
#[derive(Clone, Copy)]
pub(super) enum Provider<'a> {
    /// `None`: the implicit `env:default` provider (no allowlist).
    Env(Option<&'a EnvSecretProvider>),
    File(&'a FileSecretProvider),
    Exec(&'a ExecSecretProvider),
}

pub(super) fn lookup<'a>(config: &'a Config, r: &SecretRef) -> Result<Provider<'a>, String> {
    let name = &r.provider;
    let Some(configured) = config.secrets.providers.get(name) else {
        if r.source == SecretSource::Env && name == "default" {
            return Ok(Provider::Env(None));
        }
        return Err(format!(
            "no secret provider \"{name}\" is configured; add [secrets.providers.{name}] with source = \"{}\" to the config",
            source_name(r.source)
        ));
    };
    let (source, provider) = match configured {
        SecretProviderConfig::Env(p) => (SecretSource::Env, Provider::Env(Some(p))),
        SecretProviderConfig::File(p) => (SecretSource::File, Provider::File(p)),
        SecretProviderConfig::Exec(p) => (SecretSource::Exec, Provider::Exec(p)),
    };
    if source != r.source {
        return Err(format!(
            "provider {name} is {} provider, but the ref says {}; fix the ref's source or provider",
            with_article(source),
            source_name(r.source)
        ));
    }
    Ok(provider)
}

pub(super) fn resolve_env(
    alias: &str,
    p: Option<&EnvSecretProvider>,
    env: &EnvMap,
    var: &str,
) -> Result<Secret, String> {
    let allowed = p
        .and_then(|p| p.allowlist.as_ref())
        .is_none_or(|allowlist| allowlist.iter().any(|a| a == var));
    if !allowed {
        return Err(format!(
            "variable {var} is not in the allowlist of env provider \"{alias}\"; add it to [secrets.providers.{alias}].allowlist"
        ));
    }
    match env.get(var).map(str::trim) {
        None => Err(format!(
            "environment variable {var} is not set; set it (or add it to <state>/.env)"
        )),
        Some("") => Err(format!(
            "environment variable {var} is empty; give it the secret"
        )),
        Some(value) => Ok(Secret::new(value)),
    }
}
