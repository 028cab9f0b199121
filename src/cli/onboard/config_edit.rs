//! The config part of an onboarding plan, applied with `toml_edit` to the existing
//! document: tables are found however they are written (`[a.b]`, dotted, inline) and
//! created where missing; arrays of ids are extended, never replaced.

use super::credentials::Target;
use super::{Channel, KeyStore, Plan};
use crate::config::edit;
use anyhow::{Context, anyhow};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike, Value, value};

/// The table at `path`, created where missing (inline inside inline tables, implicit
/// for intermediate levels), whether written `[a.b]`, dotted or inline.
fn section<'a>(doc: &'a mut DocumentMut, path: &[&str]) -> Result<&'a mut dyn TableLike, String> {
    let mut cur: &mut dyn TableLike = doc.as_table_mut();
    let mut inline = false;
    for (i, key) in path.iter().enumerate() {
        if !cur.contains_key(key) {
            let item = if inline {
                Item::Value(Value::InlineTable(InlineTable::new()))
            } else {
                let mut t = Table::new();
                t.set_implicit(i + 1 < path.len());
                Item::Table(t)
            };
            cur.insert(key, item);
        }
        let not_table = || format!("`{}` is not a table", path[..=i].join("."));
        let item = cur.get_mut(key).ok_or_else(not_table)?;
        inline = item.is_inline_table();
        cur = item.as_table_like_mut().ok_or_else(not_table)?;
    }
    Ok(cur)
}

/// Add `ids` to the array `key` (created from `seed_from` when missing, so owners that
/// defaulted to allowFrom stay owners), skipping ids already there.
fn add_ids<T: Clone + PartialEq + Into<Value>>(
    t: &mut dyn TableLike,
    path: &str,
    key: &str,
    seed_from: Option<&str>,
    ids: &[T],
    read: fn(&Value) -> Option<T>,
) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    if !t.contains_key(key) {
        let seed = seed_from
            .and_then(|k| t.get(k))
            .and_then(Item::as_array)
            .cloned()
            .unwrap_or_else(Array::new);
        t.insert(key, value(seed));
    }
    let arr = t
        .get_mut(key)
        .and_then(Item::as_array_mut)
        .ok_or_else(|| format!("`{path}.{key}` is not an array"))?;
    for id in ids {
        if !arr.iter().any(|v| read(v).as_ref() == Some(id)) {
            arr.push(id.clone());
        }
    }
    Ok(())
}

fn edit_channel<T: Clone + PartialEq + Into<Value>>(
    doc: &mut DocumentMut,
    name: &str,
    (ref_key, plain_key): (&str, &str),
    channel: &Channel<T>,
    read: fn(&Value) -> Option<T>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let path = format!("channels.{name}");
    let t = section(doc, &["channels", name])?;
    if let Some(var) = &channel.token_env {
        let mut r = InlineTable::new();
        r.insert("source", "env".into());
        r.insert("provider", "default".into());
        r.insert("id", var.as_str().into());
        t.insert(ref_key, value(r));
        if t.remove(plain_key).is_some() {
            notes.push(format!(
                "removed the inline {path}.{plain_key}: the token now comes from ${var}"
            ));
        }
        t.insert("enabled", value(true));
    }
    add_ids(t, &path, "owners", Some("allowFrom"), &channel.owners, read)?;
    add_ids(t, &path, "allowFrom", None, &channel.owners, read)?;
    Ok(())
}

/// Apply the config part of the plan to a document.
pub(super) fn edit_doc(
    doc: &mut DocumentMut,
    plan: &Plan,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(k) = &plan.key
        && k.store == KeyStore::Profile
    {
        edit::declare_profile(
            doc,
            &format!("{}:default", k.provider),
            &k.provider,
            "api_key",
        )?;
    }
    if let Some(m) = &plan.model {
        section(doc, &["agents", "defaults", "model"])?.insert("primary", value(m.as_str()));
    }
    if let Some(c) = &plan.telegram {
        edit_channel(
            doc,
            "telegram",
            ("botTokenRef", "botToken"),
            c,
            Value::as_integer,
            notes,
        )?;
    }
    if let Some(c) = &plan.discord {
        let read = |v: &Value| v.as_str().map(str::to_string);
        edit_channel(doc, "discord", ("tokenRef", "token"), c, read, notes)?;
    }
    Ok(())
}

/// Check the config edit on a copy before anything is written.
pub(super) fn preflight(target: &Target, plan: &Plan) -> anyhow::Result<()> {
    let path = &target.config_path;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        anyhow!(
            "{}: not valid TOML ({}); nothing was changed",
            path.display(),
            e.message()
        )
    })?;
    edit_doc(&mut doc, plan, &mut Vec::new())
        .map_err(|e| anyhow!("cannot change {}: {e}; nothing was changed", path.display()))?;
    crate::config::parse(path, &doc.to_string()).map_err(|e| {
        anyhow!(
            "the change would make {} invalid: {e}. Nothing was changed.",
            path.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with_channels() -> Plan {
        Plan {
            telegram: Some(Channel {
                token_env: Some("TG_TOKEN".into()),
                owners: vec![42, 7],
            }),
            discord: Some(Channel {
                token_env: None,
                owners: vec!["222".into()],
            }),
            ..Plan::default()
        }
    }

    #[test]
    fn channels_merge_into_existing_tables_keeping_owners() {
        let text = "# bot\n[channels.telegram]\nbotToken = \"inline\" # old\nallowFrom = [7, 8]\n\n[channels.discord]\nenabled = true\ntokenRef = { source = \"env\", id = \"D\" }\nallowFrom = [\"111\"]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        let mut notes = Vec::new();
        edit_doc(&mut doc, &plan_with_channels(), &mut notes).unwrap();
        let out = doc.to_string();
        assert!(out.starts_with("# bot\n[channels.telegram]\n"), "{out}");
        let cfg = crate::config::parse(std::path::Path::new("x.toml"), &out).unwrap();
        let tg = cfg.channels.telegram.unwrap();
        assert!(tg.enabled);
        assert_eq!(tg.bot_token, None);
        assert_eq!(tg.bot_token_ref.unwrap().id, "TG_TOKEN");
        assert_eq!(tg.owners, Some(vec![7, 8, 42]));
        assert_eq!(tg.allow_from, vec![7, 8, 42]);
        let dc = cfg.channels.discord.unwrap();
        assert_eq!(dc.token_ref.unwrap().id, "D", "no token flag: kept");
        assert_eq!(dc.owners, Some(vec!["111".to_string(), "222".to_string()]));
        assert_eq!(dc.allow_from, vec!["111", "222"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        // Twice is the same as once.
        let mut again: DocumentMut = out.parse().unwrap();
        edit_doc(&mut again, &plan_with_channels(), &mut Vec::new()).unwrap();
        assert_eq!(again.to_string(), out);
    }

    #[test]
    fn inline_and_missing_tables() {
        let mut doc: DocumentMut = "agents = { defaults = { maxTokens = 100 } }\n"
            .parse()
            .unwrap();
        let plan = Plan {
            model: Some("openai/gpt-4o-mini".into()),
            ..Plan::default()
        };
        edit_doc(&mut doc, &plan, &mut Vec::new()).unwrap();
        let cfg = crate::config::parse(std::path::Path::new("x.toml"), &doc.to_string()).unwrap();
        assert_eq!(cfg.agents.defaults.model.primary, "openai/gpt-4o-mini");
        assert_eq!(cfg.agents.defaults.max_tokens, Some(100));

        let mut doc = DocumentMut::new();
        edit_doc(&mut doc, &plan, &mut Vec::new()).unwrap();
        assert_eq!(
            doc.to_string(),
            "[agents.defaults.model]\nprimary = \"openai/gpt-4o-mini\"\n"
        );

        let mut doc: DocumentMut = "channels = 3\n".parse().unwrap();
        let e = edit_doc(&mut doc, &plan_with_channels(), &mut Vec::new()).unwrap_err();
        assert!(e.contains("`channels` is not a table"), "{e}");
    }
}
