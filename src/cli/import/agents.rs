//! `agents` of openclaw.json: the default model and fallbacks, the model allowlist with
//! aliases, turn timeout and media size (`agents.defaults`), which agent is the default
//! (`agents.list`), and `bindings` that send a whole channel to one agent. Pure.

use super::toml_out::{str_array, try_set};
use super::walk::{Obj, Skipped, child, index};
use serde_json::Value;
use std::collections::BTreeMap;
use toml_edit::{DocumentMut, Item, Table, value};

pub(super) fn agent_defaults(doc: &mut DocumentMut, d: &mut Obj, skipped: &mut Skipped) {
    const DEFAULTS: [&str; 2] = ["agents", "defaults"];
    const MODELS: [&str; 3] = ["agents", "defaults", "models"];
    const MODEL: [&str; 3] = ["agents", "defaults", "model"];
    // Aliases that did not carry over: a model choice naming one would otherwise read
    // as a bare model id of the default provider.
    let mut lost_aliases: Vec<String> = Vec::new();
    let mut kept_aliases: Vec<String> = Vec::new();
    if let Some(mut models) = d.take_obj("models", skipped) {
        for (raw, v) in models.entries() {
            let path = models.key_path(raw);
            let Some(mut entry) = Obj::new(v, path.clone(), skipped) else {
                continue;
            };
            let model = raw.trim();
            if !try_set(doc, &MODELS, model, Item::Table(Table::new())) {
                skipped.push(path);
                lost_aliases.extend(
                    v.get("alias")
                        .and_then(Value::as_str)
                        .map(|a| a.trim().to_lowercase()),
                );
                continue;
            }
            if let Some(alias) = entry.take("alias") {
                let ok = alias.as_str().is_some_and(|a| {
                    try_set(
                        doc,
                        &["agents", "defaults", "models", model],
                        "alias",
                        value(a.trim()),
                    )
                });
                let name = alias.as_str().map(|a| a.trim().to_lowercase());
                if ok {
                    kept_aliases.extend(name);
                } else {
                    skipped.push(entry.key_path("alias"));
                    lost_aliases.extend(name);
                }
            }
            entry.finish(skipped);
        }
        models.finish(skipped);
    }
    if let Some(m) = d.take("model") {
        let path = child(&d.path, "model");
        let (primary, fallbacks) = match (
            m.as_str(),
            Obj::new(m, path.clone(), &mut Skipped::default()),
        ) {
            (Some(s), _) => (Some((s, path.clone())), None),
            (None, Some(mut o)) => {
                let p = o
                    .take("primary")
                    .map(|p| (p.as_str().unwrap_or_default(), o.key_path("primary")));
                let f = o.take("fallbacks").map(|f| (f, o.key_path("fallbacks")));
                o.finish(skipped);
                (p, f)
            }
            (None, None) => {
                skipped.push(path);
                (None, None)
            }
        };
        let lost = |r: &str| {
            let r = r.trim().to_lowercase();
            lost_aliases.contains(&r) && !kept_aliases.contains(&r)
        };
        if let Some((p, p_path)) = primary
            && (lost(p) || !try_set(doc, &MODEL, "primary", value(p.trim())))
        {
            skipped.push(p_path);
        }
        if let Some((f, f_path)) = fallbacks {
            let list = f.as_array().map(Vec::as_slice).unwrap_or_default();
            if !f.is_array() {
                skipped.push(f_path.clone());
            }
            let mut kept: Vec<String> = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let Some(s) = item.as_str().filter(|s| !lost(s)) else {
                    skipped.push(index(&f_path, i));
                    continue;
                };
                let mut next = kept.clone();
                next.push(s.trim().to_string());
                if try_set(
                    doc,
                    &MODEL,
                    "fallbacks",
                    str_array(next.iter().map(String::as_str)),
                ) {
                    kept = next;
                } else {
                    skipped.push(index(&f_path, i));
                }
            }
        }
    }
    if let Some(v) = d.take("timeoutSeconds") {
        let ok = v
            .as_u64()
            .is_some_and(|s| try_set(doc, &DEFAULTS, "turnTimeoutSecs", value(s as i64)));
        if !ok {
            skipped.push(d.key_path("timeoutSeconds"));
        }
    }
    if let Some(v) = d.take("mediaMaxMb") {
        let bytes = v
            .as_f64()
            .filter(|mb| *mb > 0.0)
            .map(|mb| (mb * 1024.0 * 1024.0) as i64);
        let ok = bytes.is_some_and(|b| try_set(doc, &DEFAULTS, "maxImageBytes", value(b)));
        if !ok {
            skipped.push(d.key_path("mediaMaxMb"));
        }
    }
}

fn plain_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// `agents.list[]`: only which agent is the default carries over (each agent's
/// credentials come from its directory); per-agent settings are reported.
pub(super) fn agent_list(list: &Value, path: &str, skipped: &mut Skipped) -> Option<String> {
    let Some(items) = list.as_array() else {
        skipped.push(path);
        return None;
    };
    let mut first = None;
    let mut marked = None;
    for (i, item) in items.iter().enumerate() {
        let Some(mut a) = Obj::new(item, index(path, i), skipped) else {
            continue;
        };
        let id = a
            .take("id")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_lowercase());
        match id.filter(|id| plain_agent_id(id)) {
            Some(id) => {
                if a.take("default").and_then(Value::as_bool) == Some(true) && marked.is_none() {
                    marked = Some(id.clone());
                }
                first.get_or_insert(id);
                a.finish(skipped);
            }
            None => skipped.push(index(path, i)),
        }
    }
    marked.or(first)
}

/// `bindings[]` that send a whole channel to one agent (`{agentId, match: {channel}}`)
/// become `channels.<c>.agent`; finer routing (per account or peer) is reported.
pub(super) fn bindings(v: &Value, skipped: &mut Skipped) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(items) = v.as_array() else {
        skipped.push("bindings");
        return out;
    };
    for (i, b) in items.iter().enumerate() {
        let path = index("bindings", i);
        let simple = (|| {
            let o = b.as_object()?;
            let agent = o.get("agentId")?.as_str()?.trim().to_lowercase();
            let m = o.get("match")?.as_object()?;
            let channel = m.get("channel")?.as_str()?;
            let only_channel = m.iter().all(|(k, v)| {
                k == "channel" || (k == "accountId" && v.as_str() == Some("default"))
            });
            let only_keys = o.keys().all(|k| k == "agentId" || k == "match");
            (only_channel
                && only_keys
                && plain_agent_id(&agent)
                && ["telegram", "discord"].contains(&channel))
            .then(|| (channel.to_string(), agent))
        })();
        match simple {
            Some((channel, agent)) if !out.contains_key(&channel) => {
                out.insert(channel, agent);
            }
            _ => skipped.push(path),
        }
    }
    out
}
