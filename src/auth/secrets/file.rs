//! `file` SecretRefs: a JSON document (id = JSON pointer) or a single-value file
//! (id = `value`). The file is opened without following symlinks (unless the provider
//! allows them), checked through the open handle, and read at most `maxBytes + 1` bytes.

use super::checks::{self, Stat};
use crate::config::{FileSecretMode, FileSecretProvider};
use crate::secret::Secret;
use std::io::Read;
use std::path::Path;

/// Default cap on a secrets file.
pub(super) const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

/// A loaded secrets file. Deliberately not `Debug`: it holds secret values.
pub(super) enum FileDoc {
    Json(serde_json::Value),
    Single(Secret),
}

/// Read and check the provider's file (blocking I/O runs off the async threads).
pub(super) async fn load(alias: &str, p: &FileSecretProvider) -> Result<FileDoc, String> {
    let (alias, p) = (alias.to_owned(), p.clone());
    let shown = p.path.clone();
    tokio::task::spawn_blocking(move || load_blocking(&alias, &p))
        .await
        .unwrap_or_else(|_| Err(format!("reading {shown} failed unexpectedly")))
}

fn load_blocking(alias: &str, p: &FileSecretProvider) -> Result<FileDoc, String> {
    let path = p.path.as_str();
    if !Path::new(path).is_absolute() {
        return Err(format!(
            "\"{path}\" is not an absolute path; write the full path in [secrets.providers.{alias}].path"
        ));
    }
    let max = p.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    let link = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if link.file_type().is_symlink() && !p.allow_symlink {
        return Err(checks::symlink_refused(alias, path, "path"));
    }
    use rustix::fs::{Mode, OFlags};
    // NONBLOCK: opening a FIFO must not hang; the checks below refuse anything but a
    // regular file, for which the flag changes nothing.
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if !p.allow_symlink {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP && !p.allow_symlink {
            checks::symlink_refused(alias, path, "path")
        } else {
            format!("cannot open {path}: {}", std::io::Error::from(e))
        }
    })?;
    let mut file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    checks::secret_file(alias, path, Stat::of(&meta), checks::euid(), max)?;
    let mut buf = Vec::new();
    (&mut file)
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if buf.len() as u64 > max {
        return Err(checks::too_large(alias, path, buf.len() as u64, max));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| format!("{path} is not UTF-8 text; write the secrets file as UTF-8"))?;
    match p.mode {
        FileSecretMode::Json => serde_json::from_str(&text).map(FileDoc::Json).map_err(|e| {
            // Only the position: serde's message could quote file content.
            format!(
                "{path} is not valid JSON (line {}, column {}); fix the file, or set mode = \"singleValue\" in [secrets.providers.{alias}] if it holds one bare value",
                e.line(),
                e.column()
            )
        }),
        FileSecretMode::SingleValue => Ok(FileDoc::Single(Secret::new(text.trim()))),
    }
}

/// The secret for `id` in a loaded file.
pub(super) fn extract(p: &FileSecretProvider, doc: &FileDoc, id: &str) -> Result<Secret, String> {
    let path = &p.path;
    match doc {
        FileDoc::Json(value) => {
            if !id.starts_with('/') {
                return Err(format!(
                    "id \"{id}\" is not a JSON pointer; this provider reads {path} as JSON, so ids look like \"/providers/openai/apiKey\""
                ));
            }
            match value.pointer(id) {
                None => Err(format!(
                    "{path} has no value at JSON pointer {id}; check the id against the file"
                )),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => Err(format!(
                    "the value at JSON pointer {id} in {path} is empty; put the secret there"
                )),
                Some(serde_json::Value::String(s)) => Ok(Secret::new(s.as_str())),
                Some(other) => Err(format!(
                    "the value at JSON pointer {id} in {path} is {}, not a string; point the id at a string value",
                    json_kind(other)
                )),
            }
        }
        FileDoc::Single(secret) => {
            if id != "value" {
                return Err(format!(
                    "this provider reads {path} as a single value (mode = \"singleValue\"), so the ref's id must be \"value\" (got \"{id}\")"
                ));
            }
            if secret.is_blank() {
                return Err(format!("{path} is empty; write the secret into it"));
            }
            Ok(secret.clone())
        }
    }
}

/// "a number", "an object"...: the kind of a JSON value, never its content.
pub(super) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(mode: FileSecretMode) -> FileSecretProvider {
        FileSecretProvider {
            path: "/etc/remoteclaw/secrets.json".into(),
            mode,
            max_bytes: None,
            allow_symlink: false,
        }
    }

    #[test]
    fn json_pointer_extraction() {
        let p = provider(FileSecretMode::Json);
        let doc = FileDoc::Json(serde_json::json!({
            "openai": { "key": "sk-CANARY-1", "blank": " ", "n": 424242, "o": { "k": "CANARY-2" } }
        }));
        assert_eq!(
            extract(&p, &doc, "/openai/key").unwrap().expose(),
            "sk-CANARY-1"
        );
        for (id, want) in [
            (
                "/openai/missing",
                "no value at JSON pointer /openai/missing",
            ),
            ("/openai/blank", "is empty"),
            ("/openai/n", "is a number, not a string"),
            ("/openai/o", "is an object, not a string"),
            ("openai/key", "is not a JSON pointer"),
            ("value", "is not a JSON pointer"),
        ] {
            let e = extract(&p, &doc, id).unwrap_err();
            assert!(e.contains(want), "{id}: {e}");
            assert!(
                e.contains("/etc/remoteclaw/secrets.json") || id == "value" || id == "openai/key"
            );
            assert!(!e.contains("CANARY") && !e.contains("424242"), "{e}");
        }
    }

    #[test]
    fn single_value_extraction() {
        let p = provider(FileSecretMode::SingleValue);
        let doc = FileDoc::Single(Secret::new("CANARY-single"));
        assert_eq!(
            extract(&p, &doc, "value").unwrap().expose(),
            "CANARY-single"
        );
        let e = extract(&p, &doc, "/x").unwrap_err();
        assert!(e.contains("must be \"value\""), "{e}");
        assert!(!e.contains("CANARY"));
        let e = extract(&p, &FileDoc::Single(Secret::new("")), "value").unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }
}
