//! The configuration in force, replaceable while the gateway runs (DESIGN §11).
//!
//! [`LiveConfig`] is a shared handle: every component that reads settings at run time
//! holds a clone and asks [`LiveConfig::get`] once per message or task step, so a
//! reload ([`LiveConfig::replace`]) applies to the next message without a restart and a
//! message already under way keeps the config it started with. One-shot commands build
//! a fixed handle from the config they loaded (`From<Arc<Config>>`).
//!
//! Which changes apply live, which restart one channel and which need a restart of the
//! process is decided from the TOML text of the old and the new file
//! ([`classify`]): the typed config has no equality, and the text says exactly which
//! keys the operator touched.

use super::Config;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// The configuration in force; clones share it.
#[derive(Clone)]
pub struct LiveConfig(Arc<ArcSwap<Config>>);

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveConfig").finish_non_exhaustive()
    }
}

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> LiveConfig {
        LiveConfig(Arc::new(ArcSwap::new(config)))
    }

    /// The config in force now.
    pub fn get(&self) -> Arc<Config> {
        self.0.load_full()
    }

    /// Put `config` in force for every holder of this handle.
    pub fn replace(&self, config: Arc<Config>) {
        self.0.store(config);
    }
}

impl From<Arc<Config>> for LiveConfig {
    fn from(config: Arc<Config>) -> LiveConfig {
        LiveConfig::new(config)
    }
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig::new(Arc::default())
    }
}

/// One part of the config (a channel's section) as its running user sees it: replaced
/// whole on every reload.
pub type LiveSection<T> = Arc<ArcSwap<T>>;

pub fn section<T>(value: T) -> LiveSection<T> {
    Arc::new(ArcSwap::from_pointee(value))
}

/// What a config change asks of the running gateway.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Dotted keys whose change applies to the next message.
    pub live: Vec<String>,
    /// Channels to stop and start again with the new settings (`telegram`, `discord`).
    pub restart_channels: Vec<&'static str>,
    /// Dotted keys that take effect only after the gateway restarts.
    pub need_restart: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart_channels.is_empty() && self.need_restart.is_empty()
    }
}

/// Keys of a channel whose change restarts that channel (its connection to the chat
/// service depends on them); every other channel key applies live.
const TELEGRAM_RESTART: &[&str] = &["enabled", "botToken", "botTokenRef", "apiRoot", "webhook"];
const DISCORD_RESTART: &[&str] = &[
    "enabled",
    "token",
    "tokenRef",
    "apiBase",
    "guilds",
    "shardCount",
    "shards",
];

/// Tables whose every key needs a process restart: the listener, the state store and
/// the environment are set up once.
const RESTART_TABLES: &[&str] = &["gateway", "session", "env"];

/// Single keys elsewhere that need a restart: the default agent owns the gateway's
/// main credential resolver.
const RESTART_KEYS: &[&str] = &["agents.defaultId"];

/// Sort the differences between two config texts (both valid TOML) by what they need.
pub fn classify(old: &toml::Table, new: &toml::Table) -> Changes {
    let mut changes = Changes::default();
    // A channel table added or removed starts or stops that channel.
    for name in ["telegram", "discord"] {
        let has = |t: &toml::Table| {
            t.get("channels")
                .and_then(toml::Value::as_table)
                .is_some_and(|c| c.contains_key(name))
        };
        if has(old) != has(new) {
            changes.restart_channels.push(name);
        }
    }
    let mut changed = Vec::new();
    diff("", old, new, &mut changed);
    for key in changed {
        let mut parts = key.split('.');
        let top = parts.next().unwrap_or_default();
        if RESTART_TABLES.contains(&top) || RESTART_KEYS.contains(&key.as_str()) {
            changes.need_restart.push(key);
            continue;
        }
        if top == "channels" {
            let channel = parts.next().unwrap_or_default();
            let field = parts.next();
            let restart = match channel {
                "telegram" => Some(("telegram", TELEGRAM_RESTART)),
                "discord" => Some(("discord", DISCORD_RESTART)),
                _ => None,
            };
            if let Some((name, keys)) = restart {
                if changes.restart_channels.contains(&name) {
                    continue;
                }
                if field.is_none_or(|f| keys.contains(&f)) {
                    if !changes.restart_channels.contains(&name) {
                        changes.restart_channels.push(name);
                    }
                    continue;
                }
            }
        }
        changes.live.push(key);
    }
    changes
}

/// Dotted paths of the keys that differ (added, removed or changed), descending into
/// tables on both sides; arrays and values compare whole.
fn diff(prefix: &str, old: &toml::Table, new: &toml::Table, out: &mut Vec<String>) {
    let path = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let empty = toml::Table::new();
    for (k, a) in old {
        match (a, new.get(k)) {
            (toml::Value::Table(a), Some(toml::Value::Table(b))) => diff(&path(k), a, b, out),
            // A table removed: each of its keys is.
            (toml::Value::Table(a), None) => diff(&path(k), a, &empty, out),
            (a, Some(b)) if a == b => {}
            _ => out.push(path(k)),
        }
    }
    for (k, b) in new {
        match (old.get(k), b) {
            (None, toml::Value::Table(b)) => diff(&path(k), &empty, b, out),
            (None, _) => out.push(path(k)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    fn changes(old: &str, new: &str) -> Changes {
        classify(&table(old), &table(new))
    }

    #[test]
    fn aliases_allowlists_and_channel_policies_apply_live() {
        let old = r#"
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "opus"
[channels.telegram]
botToken = "1:a"
allowFrom = [1]
"#;
        let new = r#"
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "big"
[channels.telegram]
botToken = "1:a"
allowFrom = [1, 2]
"#;
        let c = changes(old, new);
        assert_eq!(
            c.live,
            vec![
                "agents.defaults.models.anthropic/claude-opus-4-5.alias",
                "channels.telegram.allowFrom"
            ]
        );
        assert!(c.restart_channels.is_empty());
        assert!(c.need_restart.is_empty());
    }

    #[test]
    fn a_token_change_restarts_only_that_channel() {
        let old = "[channels.telegram]\nbotToken = \"1:a\"\n[channels.discord]\ntoken = \"d\"\n";
        let new = "[channels.telegram]\nbotToken = \"1:a\"\n[channels.discord]\ntoken = \"e\"\n";
        let c = changes(old, new);
        assert_eq!(c.restart_channels, vec!["discord"]);
        assert!(c.live.is_empty());
    }

    #[test]
    fn adding_or_removing_a_channel_restarts_it() {
        let c = changes("", "[channels.telegram]\nbotToken = \"1:a\"\n");
        assert_eq!(c.restart_channels, vec!["telegram"]);
        let c = changes("[channels.discord]\ntoken = \"d\"\n", "");
        assert_eq!(c.restart_channels, vec!["discord"]);
    }

    #[test]
    fn listener_and_store_keys_need_a_restart() {
        let c = changes(
            "[gateway]\nport = 1\n[session]\nstore = \"sqlite\"\n",
            "[gateway]\nport = 2\n[session]\nstore = \"redis\"\n",
        );
        assert_eq!(c.need_restart, vec!["gateway.port", "session.store"]);
        assert!(c.live.is_empty() && c.restart_channels.is_empty());
    }

    #[test]
    fn an_unchanged_file_has_no_changes() {
        let text = "[channels.telegram]\nbotToken = \"1:a\"\nallowFrom = [1]\n";
        assert!(changes(text, text).is_empty());
    }
}
