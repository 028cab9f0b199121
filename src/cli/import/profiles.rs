//! An OpenClaw agent's `auth-profiles.json` → ours. The formats are compatible (DESIGN
//! §2): profiles of a type RemoteClaw reads (api_key, token, oauth) are carried as they
//! are, with `order`, `usageStats` (read once into the state store) and `lastGood`;
//! anything else is reported. Also: how a file is shown with its secrets redacted. Pure.

use super::walk::{Obj, Skipped, child};
use serde_json::{Map, Value};

pub const REDACTED: &str = "<redacted>";

/// The converted document, or `None` (and the file reported) when it is not an object.
pub fn convert(src: &Value, file: &str, skipped: &mut Skipped) -> Option<Value> {
    let prefix = format!("{file}: ");
    let mut local = Skipped::default();
    let mut root = Obj::new(src, "", &mut local)?;
    let mut out = Map::new();
    out.insert("version".into(), Value::from(1));
    if let Some(v) = root.take("version")
        && v.as_u64() != Some(1)
    {
        local.push("version");
    }
    let mut profiles = Map::new();
    if let Some(mut p) = root.take_obj("profiles", &mut local) {
        for (id, v) in p.entries() {
            if usable(id, v) {
                profiles.insert(id.to_string(), v.clone());
            } else {
                local.push(p.key_path(id));
            }
        }
        p.finish(&mut local);
    }
    out.insert("profiles".into(), Value::Object(profiles));
    for (key, v) in root.entries() {
        if key == "order" && !v.is_object() {
            local.push(child("", key));
            continue;
        }
        out.insert(key.to_string(), v.clone());
    }
    root.finish(&mut local);
    for path in local.0 {
        skipped.push(format!("{prefix}{path}"));
    }
    Some(Value::Object(out))
}

/// A profile RemoteClaw's reader keeps: a sane id, an object with a provider and a known type.
fn usable(id: &str, v: &Value) -> bool {
    let id_ok = !id.trim().is_empty() && id.trim() == id && !id.chars().any(char::is_control);
    let provider = v
        .get("provider")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.trim().is_empty());
    let kind = matches!(
        v.get("type").and_then(Value::as_str),
        Some("api_key" | "token" | "oauth")
    );
    id_ok && provider && kind
}

/// Field names that hold a secret (`key`, `token`, `access`, `refresh`, `idToken`, …).
fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["key", "token", "secret", "access", "refresh", "password"]
        .iter()
        .any(|w| n.contains(w))
}

/// The document with every secret string replaced by `<redacted>` (SecretRefs stay:
/// they name where a secret lives, not the secret).
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if v.is_string() && secret_field(k) {
                        Value::from(REDACTED)
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The config text with inline secrets (tokens, API keys, webhook secrets) redacted.
pub fn redact_toml(doc: &toml_edit::DocumentMut) -> String {
    fn walk(t: &mut dyn toml_edit::TableLike) {
        for (k, item) in t.iter_mut() {
            if item.is_str() && secret_field(k.get()) {
                *item = toml_edit::value(REDACTED);
            } else if let Some(inner) = item.as_table_like_mut() {
                walk(inner);
            }
        }
    }
    let mut doc = doc.clone();
    walk(doc.as_table_mut());
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_readable_profiles_and_stats_and_reports_the_rest() {
        let src = json!({
            "version": 1,
            "profiles": {
                "anthropic:work": {"type": "api_key", "provider": "anthropic", "key": "k1"},
                "openai:oauth": {"type": "oauth", "provider": "openai", "access": "a", "refresh": "r", "expires": 5, "accountId": "acc"},
                "aws:default": {"type": "aws-sdk", "provider": "amazon-bedrock"},
                "bad": "x"
            },
            "order": {"anthropic": ["anthropic:work"]},
            "usageStats": {"anthropic:work": {"lastUsed": 1, "errorCount": 2}},
            "lastGood": {"anthropic": "anthropic:work"}
        });
        let mut skipped = Skipped::default();
        let out = convert(&src, "agents/main/agent/auth-profiles.json", &mut skipped).unwrap();
        assert_eq!(out["profiles"].as_object().unwrap().len(), 2);
        assert_eq!(out["profiles"]["openai:oauth"]["accountId"], "acc");
        assert_eq!(out["usageStats"]["anthropic:work"]["errorCount"], 2);
        assert_eq!(out["lastGood"]["anthropic"], "anthropic:work");
        assert_eq!(out["order"]["anthropic"][0], "anthropic:work");
        assert_eq!(
            skipped.0,
            vec![
                "agents/main/agent/auth-profiles.json: profiles.\"aws:default\"",
                "agents/main/agent/auth-profiles.json: profiles.bad"
            ]
        );
        let shown = redact(&out).to_string();
        assert!(
            !shown.contains("\"k1\"") && !shown.contains("\"a\"") && !shown.contains("\"r\""),
            "{shown}"
        );
        assert!(shown.contains("\"accountId\":\"acc\""), "{shown}");
    }

    #[test]
    fn toml_secrets_are_redacted_refs_kept() {
        let doc: toml_edit::DocumentMut = "[channels.telegram]\nbotToken = \"123:abc\"\nallowFrom = [1]\n[channels.discord]\ntokenRef = { source = \"env\", provider = \"default\", id = \"DISCORD_TOKEN\" }\n[models.providers.x]\napiKey = \"sk-1\"\nbaseUrl = \"http://127.0.0.1:1\"\n".parse().unwrap();
        let shown = redact_toml(&doc);
        assert!(
            !shown.contains("123:abc") && !shown.contains("sk-1"),
            "{shown}"
        );
        assert!(shown.contains("botToken = \"<redacted>\""), "{shown}");
        assert!(
            shown.contains("DISCORD_TOKEN") && shown.contains("127.0.0.1:1"),
            "{shown}"
        );
    }
}
