//! `channels.telegram` of openclaw.json → `[channels.telegram]` (token inline, `${VAR}` or
//! SecretRef; policies; allowlists whose ids become integers; groups with their prompts;
//! the webhook), owners from `commands.ownerAllowFrom`, and the id and value helpers
//! that `discord` shares. Pure.

use super::convert::SecretIn;
use super::toml_out::{int_array, try_set};
use super::walk::{Obj, Skipped, index};
use serde_json::Value;
use toml_edit::{DocumentMut, value};

const TG: [&str; 2] = ["channels", "telegram"];

/// Owners per channel, from `commands.ownerAllowFrom` (`"telegram:123"`, `"discord:456"`).
#[derive(Debug, Default)]
pub struct Owners {
    pub telegram: Vec<i64>,
    pub discord: Vec<String>,
}

impl Owners {
    pub fn parse(v: &Value, path: &str, skipped: &mut Skipped) -> Owners {
        let mut out = Owners::default();
        let Some(items) = v.as_array() else {
            skipped.push(path);
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let s = item.as_str().unwrap_or_default().trim();
            let tg = ["telegram:", "tg:"].iter().find_map(|p| s.strip_prefix(p));
            let dc = s.strip_prefix("discord:");
            match (tg.and_then(telegram_id), dc.and_then(discord_id)) {
                (Some(id), _) => push_unique(&mut out.telegram, id),
                (_, Some(id)) => push_unique(&mut out.discord, id),
                _ => skipped.push(index(path, i)),
            }
        }
        out
    }
}

pub(super) fn push_unique<T: PartialEq>(v: &mut Vec<T>, item: T) {
    if !v.contains(&item) {
        v.push(item);
    }
}

/// A Telegram user or chat id: a number, or digits in a string (`"123"`, `"tg:123"`).
fn telegram_id(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = ["telegram:", "tg:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    s.parse::<i64>().ok()
}

fn telegram_id_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => telegram_id(s),
        _ => None,
    }
}

/// A Discord snowflake: digits (`"222"`, `"discord:222"`, `"user:222"`, `"<@222>"`).
pub(super) fn discord_id(s: &str) -> Option<String> {
    let s = s.trim();
    let s = ["discord:", "user:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    let s = s
        .strip_prefix("<@")
        .and_then(|r| r.strip_suffix('>'))
        .map(|r| r.trim_start_matches('!'))
        .unwrap_or(s);
    // The config's own test, so an imported id always loads (no 0, nothing past u64).
    crate::config::types::snowflake(s).map(|n| n.to_string())
}

pub(super) fn discord_id_value(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().filter(|n| *n != 0).map(|n| n.to_string()),
        Value::String(s) => discord_id(s),
        _ => None,
    }
}

/// The ids of an allowlist array; entries that are no id (`"*"`, `@names`) are reported.
pub(super) fn ids<T: PartialEq>(
    v: &Value,
    path: &str,
    parse: fn(&Value) -> Option<T>,
    skipped: &mut Skipped,
) -> Vec<T> {
    let mut out = Vec::new();
    let Some(items) = v.as_array() else {
        skipped.push(path);
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        match parse(item) {
            Some(id) => push_unique(&mut out, id),
            None => skipped.push(index(path, i)),
        }
    }
    out
}

/// A string setting whose OpenClaw value maps to one of ours.
pub(super) fn mapped(
    doc: &mut DocumentMut,
    o: &mut Obj,
    table: &[&str],
    src_key: &str,
    key: &str,
    map: fn(&Value) -> Option<&'static str>,
    skipped: &mut Skipped,
) {
    if let Some(v) = o.take(src_key) {
        let ok = map(v).is_some_and(|m| try_set(doc, table, key, value(m)));
        if !ok {
            skipped.push(o.key_path(src_key));
        }
    }
}

pub(super) fn policy(v: &Value) -> Option<&'static str> {
    Some(match v.as_str()? {
        "pairing" => "pairing",
        "allowlist" => "allowlist",
        "open" => "open",
        "disabled" => "disabled",
        _ => return None,
    })
}

pub(super) fn group_policy(v: &Value) -> Option<&'static str> {
    Some(match v.as_str()? {
        "allowlist" => "allowlist",
        "open" => "open",
        "disabled" => "disabled",
        _ => return None,
    })
}

/// Preview streaming: `partial` (one message edited as it grows) is our `edit`.
pub(super) fn streaming(v: &Value) -> Option<&'static str> {
    match v {
        Value::Bool(true) => Some("edit"),
        Value::Bool(false) => Some("off"),
        Value::String(s) if s == "partial" || s == "progress" => Some("edit"),
        Value::String(s) if s == "off" => Some("off"),
        _ => None,
    }
}

pub(super) fn secret(
    doc: &mut DocumentMut,
    o: &mut Obj,
    table: &[&str],
    src_key: &str,
    plain: &str,
    reference: &str,
    skipped: &mut Skipped,
) {
    if let Some(v) = o.take(src_key) {
        let ok = SecretIn::parse(v).is_some_and(|s| s.set(doc, table, plain, reference));
        if !ok {
            skipped.push(o.key_path(src_key));
        }
    }
}

pub(super) fn set_or_skip(
    doc: &mut DocumentMut,
    table: &[&str],
    key: &str,
    item: toml_edit::Item,
    path: String,
    skipped: &mut Skipped,
) {
    if !try_set(doc, table, key, item) {
        skipped.push(path);
    }
}

pub fn telegram(
    doc: &mut DocumentMut,
    tg: &mut Obj,
    owners: &Owners,
    agent: Option<&String>,
    skipped: &mut Skipped,
) {
    // OpenClaw runs a configured channel unless it says otherwise; RemoteClaw's default is off.
    let enabled = tg.take("enabled").and_then(Value::as_bool).unwrap_or(true);
    try_set(doc, &TG, "enabled", value(enabled));
    secret(doc, tg, &TG, "botToken", "botToken", "botTokenRef", skipped);
    mapped(doc, tg, &TG, "dmPolicy", "dmPolicy", policy, skipped);
    mapped(
        doc,
        tg,
        &TG,
        "groupPolicy",
        "groupPolicy",
        group_policy,
        skipped,
    );
    for key in ["streamMode", "streaming"] {
        mapped(doc, tg, &TG, key, "streaming", streaming, skipped);
    }
    for key in ["allowFrom", "groupAllowFrom"] {
        if let Some(v) = tg.take(key) {
            let list = ids(v, &tg.key_path(key), telegram_id_value, skipped);
            set_or_skip(doc, &TG, key, int_array(list), tg.key_path(key), skipped);
        }
    }
    if !owners.telegram.is_empty() {
        set_or_skip(
            doc,
            &TG,
            "owners",
            int_array(owners.telegram.iter().copied()),
            "commands.ownerAllowFrom".into(),
            skipped,
        );
    }
    if let Some(a) = agent {
        set_or_skip(
            doc,
            &TG,
            "agent",
            value(a.as_str()),
            "bindings".into(),
            skipped,
        );
    }
    if let Some(mut groups) = tg.take_obj("groups", skipped) {
        let mut chats = Vec::new();
        let mut mention: Vec<(bool, String)> = Vec::new();
        for (id, v) in groups.entries() {
            let path = groups.key_path(id);
            let Some(mut g) = Obj::new(v, path.clone(), skipped) else {
                continue;
            };
            if let Some(m) = g.take("requireMention") {
                match m.as_bool() {
                    Some(b) => mention.push((b, g.key_path("requireMention"))),
                    None => skipped.push(g.key_path("requireMention")),
                }
            }
            if id == "*" {
                g.finish(skipped);
                continue;
            }
            let Some(chat) = telegram_id(id) else {
                skipped.push(path);
                continue;
            };
            if g.take("enabled").and_then(Value::as_bool) != Some(false) {
                chats.push(chat);
            }
            if let Some(p) = g.take("systemPrompt") {
                let ok = p.as_str().is_some_and(|p| {
                    try_set(
                        doc,
                        &["channels", "telegram", "groupPrompts"],
                        &chat.to_string(),
                        value(p),
                    )
                });
                if !ok {
                    skipped.push(g.key_path("systemPrompt"));
                }
            }
            g.finish(skipped);
        }
        let path = groups.path.clone();
        groups.finish(skipped);
        set_or_skip(doc, &TG, "groups", int_array(chats), path, skipped);
        // One switch for every group here: carried when the source agrees on it.
        match mention.first() {
            Some((b, _)) if mention.iter().all(|(m, _)| m == b) => {
                try_set(doc, &TG, "requireMention", value(*b));
            }
            _ => mention.into_iter().for_each(|(_, p)| skipped.push(p)),
        }
    }
    let url = tg.take("webhookUrl");
    let secret = tg.take("webhookSecret");
    if let Some(url) = url {
        let mut t = toml_edit::Table::new();
        t.insert("url", value(url.as_str().unwrap_or_default()));
        if let Some(s) = secret.and_then(Value::as_str) {
            t.insert("secretToken", value(s));
        }
        if !try_set(doc, &TG, "webhook", toml_edit::Item::Table(t)) {
            skipped.push(tg.key_path("webhookUrl"));
            if secret.is_some() {
                skipped.push(tg.key_path("webhookSecret"));
            }
        }
    } else if secret.is_some() {
        skipped.push(tg.key_path("webhookSecret"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_from_the_forms_openclaw_accepts() {
        assert_eq!(telegram_id("123"), Some(123));
        assert_eq!(telegram_id(" tg:-100123 "), Some(-100123));
        assert_eq!(telegram_id("telegram:5"), Some(5));
        assert_eq!(telegram_id("@someone"), None);
        assert_eq!(telegram_id("*"), None);
        assert_eq!(discord_id("discord:222").as_deref(), Some("222"));
        assert_eq!(discord_id("<@!333>").as_deref(), Some("333"));
        assert_eq!(discord_id("user:44").as_deref(), Some("44"));
        assert_eq!(discord_id("somebody#1234"), None);
        // What the config would refuse is reported, not written (it would not load).
        assert_eq!(discord_id("discord:0"), None);
        assert_eq!(discord_id("99999999999999999999"), None);
        assert_eq!(discord_id_value(&json!(0)), None);
        assert_eq!(discord_id("<@0333>").as_deref(), Some("333"));
        let mut skipped = Skipped::default();
        let o = Owners::parse(
            &json!(["telegram:1", "discord:2", "tg:3", "4", 5]),
            "commands.ownerAllowFrom",
            &mut skipped,
        );
        assert_eq!(o.telegram, vec![1, 3]);
        assert_eq!(o.discord, vec!["2"]);
        assert_eq!(
            skipped.0,
            vec!["commands.ownerAllowFrom[3]", "commands.ownerAllowFrom[4]"]
        );
    }
}
