//! Walking a source JSON document while keeping account of what was used: every key a
//! converter does not take is reported by its full key path ("Not carried over"), so
//! nothing is dropped silently. Pure: no I/O.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// `parent.key`, with the key quoted when it is not a bare word
/// (`agents.defaults.models."openai/gpt-4o"`, `auth.profiles."anthropic:work"`).
pub fn child(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The keys that could not be carried over, by full key path, in the order found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped(pub Vec<String>);

impl Skipped {
    pub fn push(&mut self, path: impl Into<String>) {
        let path = path.into();
        if !self.0.contains(&path) {
            self.0.push(path);
        }
    }
}

/// An object of the source whose keys are taken one by one; [`Obj::finish`] reports the
/// rest.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub path: String,
    used: BTreeSet<&'a str>,
}

impl<'a> Obj<'a> {
    /// `None` (and the path reported) when `value` is not an object.
    pub fn new(value: &'a Value, path: impl Into<String>, skipped: &mut Skipped) -> Option<Self> {
        let path = path.into();
        match value.as_object() {
            Some(map) => Some(Obj {
                map,
                path,
                used: BTreeSet::new(),
            }),
            None => {
                skipped.push(path);
                None
            }
        }
    }

    /// The value at `key`, marked as used.
    pub fn take(&mut self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.map.get_key_value(key)?;
        self.used.insert(k.as_str());
        Some(v)
    }

    /// The object at `key`, marked as used; reported when it is there but not an object.
    pub fn take_obj(&mut self, key: &str, skipped: &mut Skipped) -> Option<Obj<'a>> {
        let path = self.key_path(key);
        let v = self.take(key)?;
        Obj::new(v, path, skipped)
    }

    /// Every entry not taken yet, marking them used (for maps keyed by ids).
    pub fn entries(&mut self) -> Vec<(&'a str, &'a Value)> {
        let out: Vec<(&'a str, &'a Value)> = self
            .map
            .iter()
            .filter(|(k, _)| !self.used.contains(k.as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        for (k, _) in &out {
            self.used.insert(k);
        }
        out
    }

    pub fn key_path(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// Report every key that was not taken.
    pub fn finish(self, skipped: &mut Skipped) {
        for (k, v) in self.map {
            if !self.used.contains(k.as_str()) {
                push_leaves(&child(&self.path, k), v, skipped);
            }
        }
    }
}

/// Report `value` at `path` by its full key paths: each leaf of an object
/// (`messages.ackReaction`), the path itself for anything else (an empty object, an
/// array, a scalar).
fn push_leaves(path: &str, value: &Value, skipped: &mut Skipped) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                push_leaves(&child(path, k), v, skipped);
            }
        }
        _ => skipped.push(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_quote_what_is_not_a_bare_word() {
        assert_eq!(child("", "channels"), "channels");
        assert_eq!(child("channels", "whatsapp"), "channels.whatsapp");
        assert_eq!(
            child("auth.profiles", "anthropic:work"),
            "auth.profiles.\"anthropic:work\""
        );
        assert_eq!(child("a", "say \"hi\""), "a.\"say \\\"hi\\\"\"");
        assert_eq!(index("agents.list", 2), "agents.list[2]");
    }

    #[test]
    fn untaken_keys_are_reported_once() {
        let v = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        let mut skipped = Skipped::default();
        let mut o = Obj::new(&v, "", &mut skipped).unwrap();
        o.take("a");
        let mut b = o.take_obj("b", &mut skipped).unwrap();
        b.take("c");
        b.finish(&mut skipped);
        o.finish(&mut skipped);
        skipped.push("e");
        assert_eq!(skipped.0, vec!["b.d", "e"]);
        let mut skipped = Skipped::default();
        assert!(Obj::new(&json!(3), "x.y", &mut skipped).is_none());
        assert_eq!(skipped.0, vec!["x.y"]);
    }
}
