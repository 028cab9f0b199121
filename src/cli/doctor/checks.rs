//! The doctor's checks, in the order `App::load` builds things, so that one broken piece
//! (a bad `.env`, an invalid config, a corrupt credentials file) is reported and the other
//! checks still run: files and permissions (`files`), credentials (`credentials`), chat
//! channels and the gateway (`channels`). None writes a file, except that an existing
//! state.db is migrated on open, as every command does.

use super::Finding;
use super::channels::{alerts, channels, gateway, pairing_pending};
use super::cooldowns::cooldown_list;
use super::credentials::{Ctx, credentials};
use super::files::{auth_files, config_file, env_file, state_db, state_dir};
use crate::auth::CredentialResolver;
use crate::auth::cooldown::CooldownBook;
use crate::clock::Clock;
use crate::config::env::{EnvMap, import_shell_env};
use crate::config::paths::Paths;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the checks found, and the paths they looked at.
#[derive(Debug)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
    pub agent_id: String,
}

/// Keys whose plain string value is a secret (config permission check).
pub(super) const SECRET_KEYS: [&str; 3] = ["botToken", "token", "apiKey"];

/// The uid this process runs as (the user who must own RemoteClaw's files).
pub(super) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub dir: bool,
}

/// `None` when the path does not exist.
pub(super) fn stat(path: &Path) -> std::io::Result<Option<Stat>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Stat {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            dir: m.is_dir(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub use crate::config::redact_values;

/// Dotted paths of `botToken`/`token`/`apiKey` keys holding a non-blank plain string.
pub fn plain_secret_keys(table: &toml::Table) -> Vec<String> {
    fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::String(s)
                    if SECRET_KEYS.contains(&k.as_str()) && !s.trim().is_empty() =>
                {
                    out.push(path);
                }
                toml::Value::Table(t) => walk(t, &path, out),
                toml::Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let toml::Value::Table(t) = item {
                            walk(t, &format!("{path}[{i}]"), out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", &mut out);
    out
}

/// Multi-line loader messages on one line.
pub(super) fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub async fn run_all(
    paths: Paths,
    mut env: EnvMap,
    agent: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Outcome {
    let mut r = Vec::new();
    let now = clock.now_ms();
    state_dir(&paths.state_dir, &mut r);
    env_file(&paths.env_file(), &mut env, &mut r);
    let paths = paths.refresh_config_path(&env);
    let raw: Option<toml::Table> = std::fs::read_to_string(&paths.config_path)
        .ok()
        .and_then(|t| t.parse().ok());
    let config = config_file(&paths, raw.as_ref(), &mut r);
    let agent_id = agent
        .map(str::to_string)
        .or_else(|| config.as_ref().map(|c| c.agents.default_id.clone()))
        .or_else(|| {
            raw.as_ref().and_then(|t| {
                t.get("agents")?
                    .get("defaultId")?
                    .as_str()
                    .map(String::from)
            })
        })
        .unwrap_or_else(|| "main".into());
    let agent_ok = valid_agent_id(&agent_id);
    if !agent_ok {
        r.push(
            Finding::error(
                "agent_invalid",
                format!("agent id \"{agent_id}\" is not a plain name; every command refuses it"),
            )
            .fix("use letters, digits, '_' or '-' (--agent, or agents.defaultId in the config)"),
        );
    }
    let store = if agent_ok {
        auth_files(&paths, &agent_id, &mut r)
    } else {
        None
    };
    let db = state_db(&paths.state_db(), &mut r);
    let outcome = |findings| Outcome {
        findings,
        state_dir: paths.state_dir.clone(),
        config_path: paths.config_path.clone(),
        agent_id: agent_id.clone(),
    };
    let Some(config) = config else {
        r.push(Finding::info(
            "checks_skipped",
            "credential, channel and gateway checks skipped until the config loads",
        ));
        return outcome(r);
    };
    if config.env.shell_env.enabled {
        let timeout = Duration::from_millis(config.env.shell_env.timeout_ms);
        if let Err(e) = import_shell_env(&mut env, timeout).await {
            r.push(
                Finding::warning(
                    "shell_env_failed",
                    format!("env.shellEnv is enabled but the login shell import failed: {e}"),
                )
                .fix("check $SHELL and its startup files, raise env.shellEnv.timeoutMs, or disable env.shellEnv"),
            );
        }
    }
    let config = Arc::new(config);
    let env = Arc::new(env);
    let config_path = paths.config_path.display().to_string();
    // With `session.store = "redis"` the runtime state is in Redis, not in state.db.
    let stores = if config.session.store == crate::config::SessionStoreKind::Redis {
        match crate::app::open_stores(&config, &env, &paths, false).await {
            Ok(s) => {
                let at = s.redis.as_ref().map_or("", |r| r.location()).to_string();
                r.push(Finding::ok(
                    "state_store_ok",
                    format!("the Redis state store at {at} answers (session.store = \"redis\")"),
                ));
                Some(s)
            }
            Err(e) => {
                r.push(
                    Finding::error("state_store_unavailable", one_line(&e.to_string())).fix(
                        format!(
                            "start Redis, or fix session.redisUrl / redisUrlRef in {config_path}"
                        ),
                    ),
                );
                None
            }
        }
    } else {
        db.clone().map(crate::state::stores::Stores::sqlite)
    };
    let cooldowns = stores.as_ref().map(|s| {
        Arc::new(CooldownBook::with_store(
            s.cooldowns.clone(),
            config.auth.cooldowns.clone(),
        ))
    });
    if let Some(cooldowns) = cooldowns {
        let resolver = CredentialResolver::new(
            config.clone(),
            env.clone(),
            paths.auth_profiles(&agent_id),
            clock.clone(),
            cooldowns,
        )
        // The report is read-only: the file's usageStats stay out of the state store.
        .without_usage_import();
        match &store {
            Some(store) => {
                let ctx = Ctx {
                    config: &config,
                    resolver: &resolver,
                    store,
                    auth_path: paths.auth_profiles(&agent_id).display().to_string(),
                    config_path: config_path.clone(),
                    env_path: paths.env_file().display().to_string(),
                    now,
                };
                credentials(&ctx, &mut r).await;
                cooldown_list(&resolver, now, &mut r).await;
            }
            None => r.push(Finding::info(
                "checks_skipped",
                "credential checks skipped: the credentials file could not be read (see above)",
            )),
        }
        let env_path = paths.env_file().display().to_string();
        channels(
            &config,
            &env,
            &env_path,
            &resolver,
            &config_path,
            &agent_id,
            &mut r,
        )
        .await;
        gateway(&config, &resolver, &config_path, &mut r).await;
        alerts(&config, &env, &config_path, &mut r);
    }
    if let Some(stores) = &stores {
        let pairing = crate::pairing::PairingStore::with_backend(stores.pairing.clone(), clock);
        pairing_pending(&pairing, &config, &mut r).await;
    }
    outcome(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_quoted_values() {
        assert_eq!(
            redact_values("invalid type: string \"sk-CANARY\\\"x\", expected a map"),
            "invalid type: string \"…\", expected a map"
        );
        assert_eq!(redact_values("no quotes"), "no quotes");
        assert_eq!(redact_values("string \"unterminated"), "string \"…\"");
        assert_eq!(
            redact_values("a string \"x\" and string \"y\"!"),
            "a string \"…\" and string \"…\"!"
        );
    }

    #[test]
    fn finds_plain_secrets_in_config() {
        let t: toml::Table = r#"
[channels.telegram]
botToken = "123:abc"
[channels.discord]
token = " "
tokenRef = { source = "env", id = "X" }
[gateway.auth]
token = "t"
[models.providers.openai]
apiKey = { source = "env", id = "K" }
[models.providers.x]
apiKey = "k"
"#
        .parse()
        .unwrap();
        assert_eq!(
            plain_secret_keys(&t),
            [
                "channels.telegram.botToken",
                "gateway.auth.token",
                "models.providers.x.apiKey"
            ]
        );
    }

    #[test]
    fn agent_ids() {
        assert!(valid_agent_id("main"));
        assert!(valid_agent_id("a-b_2"));
        assert!(!valid_agent_id(""));
        assert!(!valid_agent_id("../x"));
    }
}
