//! openclaw.json (already parsed from JSON5) → a new `remoteclaw.toml` document: models,
//! aliases, fallbacks, auth profiles and order, custom providers, SecretRef providers,
//! the shell-env switch, gateway port/token and (in `channels`) Telegram and Discord.
//! Every key that is not carried over is reported by its full key path. Pure: no I/O.

use super::agents::{agent_defaults, agent_list, bindings};
use super::channels::{self, Owners};
use super::toml_out::{json_value, new_document, secret_ref, str_array, try_set};
use super::walk::{Obj, Skipped};
use crate::catalog::normalize_provider;
use crate::config::ApiKind;
use serde_json::Value;
use toml_edit::{DocumentMut, Item, Table, value};

/// The new config and what could not be carried over.
#[derive(Debug)]
pub struct Converted {
    pub doc: DocumentMut,
    pub skipped: Skipped,
    /// The agent whose credentials are used when none is named (`agents.defaultId`).
    pub default_agent: String,
}

/// A secret as OpenClaw writes it: a string (`"${VAR}"` meaning the variable VAR), or a
/// SecretRef object.
pub enum SecretIn {
    Plain(String),
    Ref {
        source: String,
        provider: String,
        id: String,
    },
}

impl SecretIn {
    pub fn parse(v: &Value) -> Option<SecretIn> {
        if let Some(s) = v.as_str() {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            if let Some(var) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && !var.is_empty()
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Some(SecretIn::Ref {
                    source: "env".into(),
                    provider: "default".into(),
                    id: var.into(),
                });
            }
            return Some(SecretIn::Plain(s.to_string()));
        }
        let o = v.as_object()?;
        let source = o.get("source")?.as_str()?;
        if !["env", "file", "exec"].contains(&source)
            || o.keys()
                .any(|k| !["source", "provider", "id"].contains(&k.as_str()))
        {
            return None;
        }
        Some(SecretIn::Ref {
            source: source.into(),
            provider: o
                .get("provider")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .into(),
            id: o.get("id")?.as_str()?.into(),
        })
    }

    /// Set `plain_key` (a string) or `ref_key` (a SecretRef) in `table`.
    pub fn set(
        &self,
        doc: &mut DocumentMut,
        table: &[&str],
        plain_key: &str,
        ref_key: &str,
    ) -> bool {
        match self {
            SecretIn::Plain(s) => try_set(doc, table, plain_key, value(s.as_str())),
            SecretIn::Ref {
                source,
                provider,
                id,
            } => try_set(doc, table, ref_key, secret_ref(source, provider, id)),
        }
    }
}

/// OpenClaw's wire API names → ours.
fn api_kind(raw: &str) -> Option<ApiKind> {
    Some(match raw {
        "anthropic-messages" => ApiKind::AnthropicMessages,
        "openai-completions" => ApiKind::OpenaiCompletions,
        "openai-responses" => ApiKind::OpenaiResponses,
        "google-generative-ai" | "google-generative" => ApiKind::GoogleGenerative,
        _ => return None,
    })
}

pub fn convert(src: &Value) -> Converted {
    let mut skipped = Skipped::default();
    let mut doc = new_document();
    let mut default_agent = "main".to_string();
    let Some(mut root) = Obj::new(src, "", &mut skipped) else {
        return Converted {
            doc,
            skipped,
            default_agent,
        };
    };
    if let Some(mut env) = root.take_obj("env", &mut skipped) {
        if let Some(mut shell) = env.take_obj("shellEnv", &mut skipped) {
            for key in ["enabled", "timeoutMs"] {
                if let Some(v) = shell.take(key).and_then(json_value)
                    && !try_set(&mut doc, &["env", "shellEnv"], key, Item::Value(v))
                {
                    skipped.push(shell.key_path(key));
                }
            }
            shell.finish(&mut skipped);
        }
        env.finish(&mut skipped);
    }
    if let Some(mut secrets) = root.take_obj("secrets", &mut skipped) {
        if let Some(mut providers) = secrets.take_obj("providers", &mut skipped) {
            for (alias, v) in providers.entries() {
                let ok = json_value(v).is_some_and(|tv| {
                    let mut t = Table::new();
                    if let toml_edit::Value::InlineTable(it) = tv {
                        t = it.into_table();
                    }
                    !t.is_empty()
                        && try_set(&mut doc, &["secrets", "providers"], alias, Item::Table(t))
                });
                if !ok {
                    skipped.push(providers.key_path(alias));
                }
            }
            providers.finish(&mut skipped);
        }
        secrets.finish(&mut skipped);
    }
    if let Some(mut models) = root.take_obj("models", &mut skipped) {
        if let Some(mut providers) = models.take_obj("providers", &mut skipped) {
            for (id, v) in providers.entries() {
                provider(&mut doc, id, v, &providers.key_path(id), &mut skipped);
            }
            providers.finish(&mut skipped);
        }
        models.finish(&mut skipped);
    }
    if let Some(mut auth) = root.take_obj("auth", &mut skipped) {
        auth_section(&mut doc, &mut auth, &mut skipped);
        auth.finish(&mut skipped);
    }
    if let Some(mut agents) = root.take_obj("agents", &mut skipped) {
        if let Some(mut defaults) = agents.take_obj("defaults", &mut skipped) {
            agent_defaults(&mut doc, &mut defaults, &mut skipped);
            defaults.finish(&mut skipped);
        }
        let list_path = agents.key_path("list");
        if let Some(id) = agents
            .take("list")
            .and_then(|list| agent_list(list, &list_path, &mut skipped))
        {
            default_agent = id;
        }
        agents.finish(&mut skipped);
    }
    if default_agent != "main"
        && !try_set(
            &mut doc,
            &["agents"],
            "defaultId",
            value(default_agent.as_str()),
        )
    {
        skipped.push("agents.list");
        default_agent = "main".into();
    }
    let owners = match root.take_obj("commands", &mut skipped) {
        Some(mut commands) => {
            let owners = commands
                .take("ownerAllowFrom")
                .map(|v| Owners::parse(v, &commands.key_path("ownerAllowFrom"), &mut skipped))
                .unwrap_or_default();
            commands.finish(&mut skipped);
            owners
        }
        None => Owners::default(),
    };
    let bound = root
        .take("bindings")
        .map(|b| bindings(b, &mut skipped))
        .unwrap_or_default();
    if let Some(mut ch) = root.take_obj("channels", &mut skipped) {
        if let Some(mut tg) = ch.take_obj("telegram", &mut skipped) {
            channels::telegram(
                &mut doc,
                &mut tg,
                &owners,
                bound.get("telegram"),
                &mut skipped,
            );
            tg.finish(&mut skipped);
        }
        if let Some(mut dc) = ch.take_obj("discord", &mut skipped) {
            super::discord::discord(
                &mut doc,
                &mut dc,
                &owners,
                bound.get("discord"),
                &mut skipped,
            );
            dc.finish(&mut skipped);
        }
        ch.finish(&mut skipped);
    }
    if let Some(mut gw) = root.take_obj("gateway", &mut skipped) {
        gateway(&mut doc, &mut gw, &mut skipped);
        gw.finish(&mut skipped);
    }
    root.finish(&mut skipped);
    Converted {
        doc,
        skipped,
        default_agent,
    }
}

/// `models.providers.<id>`: `baseUrl`, `api` and `apiKey`; the provider is left out
/// (and reported) when RemoteClaw cannot use what remains.
fn provider(doc: &mut DocumentMut, raw_id: &str, v: &Value, path: &str, skipped: &mut Skipped) {
    let Some(mut p) = Obj::new(v, path, skipped) else {
        return;
    };
    let id = normalize_provider(raw_id);
    let mut t = Table::new();
    if let Some(url) = p.take("baseUrl").and_then(Value::as_str) {
        t.insert("baseUrl", value(url.trim_end_matches('/')));
    }
    match p.take("api").map(|a| a.as_str().and_then(api_kind)) {
        Some(Some(api)) => {
            t.insert("api", value(api.as_str()));
        }
        Some(None) => skipped.push(p.key_path("api")),
        None => {}
    }
    let key = p
        .take("apiKey")
        .map(|k| (SecretIn::parse(k), p.key_path("apiKey")));
    if id.is_empty() || !try_set(doc, &["models", "providers"], &id, Item::Table(t)) {
        skipped.push(path);
        return;
    }
    if let Some((key, key_path)) = key {
        let ok = key.is_some_and(|k| k.set(doc, &["models", "providers", &id], "apiKey", "apiKey"));
        if !ok {
            skipped.push(key_path);
        }
    }
    p.finish(skipped);
}

fn auth_section(doc: &mut DocumentMut, auth: &mut Obj, skipped: &mut Skipped) {
    if let Some(mut profiles) = auth.take_obj("profiles", skipped) {
        for (id, v) in profiles.entries() {
            let path = profiles.key_path(id);
            let Some(mut p) = Obj::new(v, path.clone(), skipped) else {
                continue;
            };
            let provider = p
                .take("provider")
                .and_then(Value::as_str)
                .map(normalize_provider);
            let mode = p.take("mode").and_then(Value::as_str);
            let mut t = Table::new();
            let ok = match (provider, mode) {
                (Some(provider), Some(mode @ ("api_key" | "token" | "oauth")))
                    if !provider.is_empty() =>
                {
                    t.insert("provider", value(provider));
                    t.insert("mode", value(mode));
                    try_set(doc, &["auth", "profiles"], id, Item::Table(t))
                }
                _ => false,
            };
            if ok {
                p.finish(skipped);
            } else {
                skipped.push(path);
            }
        }
        profiles.finish(skipped);
    }
    if let Some(mut order) = auth.take_obj("order", skipped) {
        for (provider, v) in order.entries() {
            let ids: Option<Vec<&str>> = v
                .as_array()
                .map(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .unwrap_or(None);
            let key = normalize_provider(provider);
            let ok = ids.is_some_and(|ids| {
                !key.is_empty() && try_set(doc, &["auth", "order"], &key, str_array(ids))
            });
            if !ok {
                skipped.push(order.key_path(provider));
            }
        }
        order.finish(skipped);
    }
    if let Some(mut cd) = auth.take_obj("cooldowns", skipped) {
        // Whole hours only; the maximum first, so a larger backoff still loads.
        for key in ["billingMaxHours", "billingBackoffHours"] {
            if let Some(v) = cd.take(key) {
                let ok = v
                    .as_u64()
                    .is_some_and(|h| try_set(doc, &["auth", "cooldowns"], key, value(h as i64)));
                if !ok {
                    skipped.push(cd.key_path(key));
                }
            }
        }
        cd.finish(skipped);
    }
}

/// `gateway.port` and a token (`gateway.auth.token`); binding modes and the rest are
/// OpenClaw's own.
fn gateway(doc: &mut DocumentMut, gw: &mut Obj, skipped: &mut Skipped) {
    if let Some(v) = gw.take("port") {
        let ok = v
            .as_u64()
            .is_some_and(|p| try_set(doc, &["gateway"], "port", value(p as i64)));
        if !ok {
            skipped.push(gw.key_path("port"));
        }
    }
    if let Some(mut auth) = gw.take_obj("auth", skipped) {
        let mode = auth.take("mode");
        if mode.is_some_and(|m| m.as_str() != Some("token")) {
            skipped.push(auth.key_path("mode"));
        }
        if let Some(t) = auth.take("token") {
            let ok = SecretIn::parse(t)
                .is_some_and(|s| s.set(doc, &["gateway", "auth"], "token", "token"));
            if !ok {
                skipped.push(auth.key_path("token"));
            }
        }
        auth.finish(skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: Value) -> (crate::config::Config, Vec<String>, String) {
        let c = convert(&src);
        let text = c.doc.to_string();
        let cfg = crate::config::parse(std::path::Path::new("t.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        (cfg, c.skipped.0, text)
    }

    #[test]
    fn model_as_a_string_env_refs_and_custom_providers() {
        let (cfg, skipped, text) = run(json!({
            "agents": {"defaults": {"model": "zai/glm-4.7", "timeoutSeconds": 120, "mediaMaxMb": 2}},
            "models": {"mode": "merge", "providers": {
                "zai": {"baseUrl": "https://api.z.ai/v1/", "api": "openai-completions", "apiKey": "${ZAI_API_KEY}", "models": []},
                "weird": {"baseUrl": "https://x.example", "api": "bedrock-converse-stream"}
            }},
            "channels": {"discord": {"token": {"source": "env", "provider": "default", "id": "DISCORD_BOT_TOKEN"}, "streaming": false}},
            "gateway": {"auth": {"mode": "password", "password": "p"}}
        }));
        assert_eq!(cfg.agents.defaults.model.primary, "zai/glm-4.7");
        assert_eq!(cfg.agents.defaults.turn_timeout_secs, Some(120));
        assert_eq!(cfg.agents.defaults.max_image_bytes, Some(2 * 1024 * 1024));
        let zai = &cfg.models.providers["zai"];
        assert_eq!(zai.base_url.as_deref(), Some("https://api.z.ai/v1"));
        assert!(
            text.contains(
                "apiKey = { source = \"env\", provider = \"default\", id = \"ZAI_API_KEY\" }"
            ),
            "{text}"
        );
        let dc = cfg.channels.discord.unwrap();
        assert!(dc.enabled);
        assert_eq!(dc.token_ref.unwrap().id, "DISCORD_BOT_TOKEN");
        assert_eq!(dc.streaming, crate::config::Streaming::Off);
        assert_eq!(
            skipped,
            vec![
                "models.providers.weird.api",
                "models.providers.weird",
                "models.providers.zai.models",
                "models.mode",
                "gateway.auth.mode",
                "gateway.auth.password",
            ]
        );
    }

    #[test]
    fn what_remoteclaw_would_refuse_is_left_out_and_reported() {
        let (cfg, skipped, _) = run(json!({
            "agents": {
                "defaults": {"models": {
                    "anthropic/claude-opus-4-5": {"alias": "opus"},
                    "anthropic/claude-haiku-4-5": {"alias": "opus"},
                    "openai/gpt-4o": {"alias": "status"},
                    "minimax/m2": {"alias": "mm"}
                }, "model": {"primary": "mm", "fallbacks": ["opus", 3]}},
                "list": [{"id": "Bad Id!"}, {"id": "ops", "default": true, "model": "x"}]
            },
            "auth": {"profiles": {"aws:x": {"provider": "amazon-bedrock", "mode": "aws-sdk"}},
                     "cooldowns": {"billingBackoffHours": 0.5, "billingMaxHours": 48}},
            "channels": {"telegram": {"groups": {"*": {"requireMention": false}, "-100": {"requireMention": true}},
                                      "webhookUrl": "not a url", "webhookSecret": "s"}},
            "bindings": [{"agentId": "ops", "match": {"channel": "telegram"}},
                         {"agentId": "ops", "match": {"channel": "discord", "peer": {"kind": "dm", "id": "1"}}}]
        }));
        assert_eq!(cfg.agents.default_id, "ops");
        assert_eq!(
            cfg.agents.defaults.model.primary,
            crate::catalog::DEFAULT_MODEL
        );
        assert_eq!(cfg.agents.defaults.model.fallbacks, vec!["opus"]);
        assert_eq!(cfg.agents.defaults.models.len(), 3);
        assert_eq!(cfg.auth.cooldowns.billing_max_hours, 48);
        let tg = cfg.channels.telegram.unwrap();
        assert_eq!(tg.groups, vec![-100]);
        assert!(tg.webhook.is_none());
        assert_eq!(tg.agent.as_deref(), Some("ops"));
        assert_eq!(
            skipped,
            vec![
                "auth.profiles.\"aws:x\"",
                "auth.cooldowns.billingBackoffHours",
                "agents.defaults.models.\"anthropic/claude-opus-4-5\".alias",
                "agents.defaults.models.\"minimax/m2\"",
                "agents.defaults.models.\"openai/gpt-4o\".alias",
                "agents.defaults.model.primary",
                "agents.defaults.model.fallbacks[1]",
                "agents.list[0]",
                "agents.list[1].model",
                "bindings[1]",
                "channels.telegram.groups.\"*\".requireMention",
                "channels.telegram.groups.-100.requireMention",
                "channels.telegram.webhookUrl",
                "channels.telegram.webhookSecret",
            ]
        );
    }
}
