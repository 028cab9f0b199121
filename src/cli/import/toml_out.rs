//! Building the new `remoteclaw.toml` piece by piece, where each piece is kept only if
//! the document still loads with `config::parse` (the same checks the gateway runs): a
//! value RemoteClaw would refuse is left out and reported instead of failing the import.

use crate::config::edit::table_mut;
use serde_json::Value as Json;
use std::path::Path;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

/// Whether `doc` loads as a RemoteClaw config.
pub fn loads(doc: &DocumentMut) -> bool {
    crate::config::parse(Path::new("remoteclaw.toml"), &doc.to_string()).is_ok()
}

/// Set `key` in the table at `table` (created where missing) if the document still loads
/// afterwards; otherwise put back what was there and return false.
pub fn try_set(doc: &mut DocumentMut, table: &[&str], key: &str, item: Item) -> bool {
    let existing = (0..=table.len())
        .take_while(|&n| table_exists(doc, &table[..n]))
        .last()
        .unwrap_or(0);
    let Ok(t) = table_mut(doc, table) else {
        return false;
    };
    // A table made here only to hold the key is shown only while it holds one.
    if existing < table.len() {
        t.set_implicit(true);
    }
    let previous = t.insert(key, item);
    if loads(doc) {
        return true;
    }
    if let Ok(t) = table_mut(doc, table) {
        match previous {
            Some(p) => {
                t.insert(key, p);
            }
            None => {
                t.remove(key);
            }
        }
    }
    prune_empty(doc, table, existing);
    false
}

fn table_exists(doc: &DocumentMut, path: &[&str]) -> bool {
    let mut t: &dyn toml_edit::TableLike = doc.as_table();
    for key in path {
        match t.get(key).and_then(Item::as_table_like) {
            Some(inner) => t = inner,
            None => return false,
        }
    }
    true
}

/// A new document whose top-level tables come out in this order when filled.
pub fn new_document() -> DocumentMut {
    let mut doc = DocumentMut::new();
    for key in [
        "env", "agents", "auth", "models", "secrets", "channels", "gateway",
    ] {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert(key, Item::Table(t));
    }
    doc
}

/// Remove the empty tables along `table` deeper than the `keep` levels that were
/// there before (top-level tables stay: empty, they are not shown).
fn prune_empty(doc: &mut DocumentMut, table: &[&str], keep: usize) {
    for depth in (keep.max(1) + 1..=table.len()).rev() {
        let (parent, last) = table[..depth].split_at(depth - 1);
        let Ok(p) = table_mut(doc, parent) else {
            return;
        };
        let empty = p
            .get(last[0])
            .and_then(Item::as_table)
            .is_some_and(|t| t.is_empty());
        if empty {
            p.remove(last[0]);
        } else {
            return;
        }
    }
}

/// A SecretRef `{ source = "env", provider = "default", id = "VAR" }`.
pub fn secret_ref(source: &str, provider: &str, id: &str) -> Item {
    let mut t = InlineTable::new();
    t.insert("source", source.into());
    t.insert("provider", provider.into());
    t.insert("id", id.into());
    Item::Value(Value::InlineTable(t))
}

pub fn str_array<'a>(items: impl IntoIterator<Item = &'a str>) -> Item {
    Item::Value(Value::Array(Array::from_iter(items)))
}

pub fn int_array(items: impl IntoIterator<Item = i64>) -> Item {
    Item::Value(Value::Array(Array::from_iter(items)))
}

/// A JSON value as a TOML value (`null` has none).
pub fn json_value(v: &Json) -> Option<Value> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => (*b).into(),
        Json::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Json::String(s) => s.as_str().into(),
        Json::Array(a) => Value::Array(a.iter().filter_map(json_value).collect()),
        Json::Object(o) => {
            let mut t = InlineTable::new();
            for (k, v) in o {
                if let Some(v) = json_value(v) {
                    t.insert(k, v);
                }
            }
            Value::InlineTable(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml_edit::value;

    #[test]
    fn refused_values_are_rolled_back_and_empty_tables_pruned() {
        let mut doc = new_document();
        assert!(try_set(&mut doc, &["gateway"], "port", value(1234)));
        assert!(!try_set(&mut doc, &["gateway"], "port", value("x")));
        assert!(!try_set(&mut doc, &["gateway"], "bind", value("nowhere")));
        assert_eq!(doc.to_string(), "[gateway]\nport = 1234\n");
        assert!(!try_set(
            &mut doc,
            &["agents", "defaults", "model"],
            "primary",
            value("nope/x")
        ));
        assert_eq!(doc.to_string(), "[gateway]\nport = 1234\n");
    }
}
