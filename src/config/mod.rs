//! Configuration: where files live (`paths`), the process environment as seen by
//! RemoteClaw (`env`), the typed `remoteclaw.toml` (`types`) and loading with strict,
//! located error messages (this file and `validate`).
//!
//! Loading never touches the network; the only I/O is reading the file.

pub mod edit;
pub mod env;
pub mod live;
pub mod paths;
pub mod types;
mod validate;
pub use validate::is_plain_agent_id;

pub use types::*;

use std::path::{Path, PathBuf};

/// Where an example of every key lives; named in every config error.
pub const EXAMPLE_HINT: &str =
    "config/remoteclaw.example.toml in the RemoteClaw sources documents every key";

/// A config problem, located in the file, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}. Check the path (REMOTECLAW_CONFIG_PATH) and its permissions.", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}{}\n  fix: {hint}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!(" (key `{key}`)") })]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        /// Dotted key path, e.g. `agents.defaults.model.primary`; empty for a syntax error.
        key: String,
        message: String,
        hint: String,
    },
}

impl ConfigError {
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } => None,
        }
    }
}

/// A loaded, validated config and the file it came from (if any).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The config path that was looked at (it may not exist).
    pub path: PathBuf,
    pub exists: bool,
}

/// Load the config at `path`. A missing file is the empty config when `required` is
/// false (the default location), and an error when the operator named the file.
pub fn load(path: &Path, required: bool) -> Result<LoadedConfig, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(LoadedConfig {
            config: parse(path, &text_of(path, bytes)?)?,
            path: path.to_path_buf(),
            exists: true,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(LoadedConfig {
            config: Config::default(),
            path: path.to_path_buf(),
            exists: false,
        }),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The config file's bytes as text. Not UTF-8: an error that says where (line and
/// byte), not "check its permissions".
pub fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let (line, byte) = first_bad_utf8(e.as_bytes()).unwrap_or((1, 0));
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line: Some(line),
            key: String::new(),
            message: format!("not valid UTF-8 (byte 0x{byte:02x})"),
            hint: "save the file as UTF-8 (TOML files are UTF-8 text)".into(),
        }
    })
}

/// The line (1-based) and value of the first byte of `bytes` that is not UTF-8.
pub fn first_bad_utf8(bytes: &[u8]) -> Option<(usize, u8)> {
    let at = std::str::from_utf8(bytes).err()?.valid_up_to();
    Some((line_at(bytes, at), bytes.get(at).copied().unwrap_or(0)))
}

/// Parse and validate config text. `path` is used only in messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::new(text);
    let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut key = key_path(e.path());
        let inner = e.into_inner();
        let mut message = inner.message().trim().to_string();
        if message.contains("untagged enum SecretInput") {
            message = "expected a secret string or a SecretRef table { source = \"env\" | \"file\" | \"exec\", provider = \"…\", id = \"…\" }".into();
        }
        // Inside internally tagged tables serde loses the unknown key's position:
        // add it to the path and find its line ourselves.
        let unknown = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(str::to_string);
        let mut span_line = inner.span().map(|s| line_of_offset(text, s.start));
        if let Some(u) = unknown
            && !key.is_empty() && key.rsplit('.').next() != Some(u.as_str()) {
                key = format!("{key}.{u}");
                span_line = None;
            }
        let line = span_line.or_else(|| validate::line_of_key(text, &key));
        let hint = hint_for(&message, &key);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
            hint,
        }
    })?;
    validate::validate(&config).map_err(|v| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: validate::line_of_key(text, &v.key),
        key: v.key,
        message: v.message,
        hint: v.hint,
    })?;
    config.normalize();
    Ok(config)
}

/// The TOML key path of a deserialization error, quoting the keys that are not bare
/// (`auth.profiles."anthropic:work".mode`, `agents.defaults.models."openai/gpt-4o".images`),
/// as the validation errors write them.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push('"');
                    out.push_str(&key.replace('\\', "\\\\").replace('"', "\\\""));
                    out.push('"');
                }
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn hint_for(message: &str, key: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = message
            .split("expected ")
            .nth(1)
            .unwrap_or_default()
            .split(['`', ',', ' '])
            .filter(|s| !s.is_empty() && *s != "one" && *s != "of" && *s != "or")
            .collect();
        let best = expected
            .iter()
            .map(|cand| (strsim::jaro_winkler(unknown, cand), *cand))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        return match best {
            Some((_, cand)) => {
                format!("did you mean `{cand}`? Rename or remove `{unknown}`; {EXAMPLE_HINT}")
            }
            None => format!(
                "remove `{unknown}` or check its spelling (keys are camelCase); {EXAMPLE_HINT}"
            ),
        };
    }
    if key.is_empty() {
        return format!("fix the TOML syntax at the marked position; {EXAMPLE_HINT}");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return format!("add `{field} = …` to `{key}`; {EXAMPLE_HINT}");
    }
    format!("give `{key}` a value of the expected type; {EXAMPLE_HINT}")
}

/// Loader messages may quote a value (`invalid type: string "sk-…", expected a map`):
/// blank out every quoted string that follows the word `string`.
pub fn redact_values(msg: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(MARK) {
        let start = i + MARK.len();
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let mut escaped = false;
        let end = tail.char_indices().find_map(|(j, c)| {
            if escaped {
                escaped = false;
                return None;
            }
            match c {
                '\\' => {
                    escaped = true;
                    None
                }
                '"' => Some(j),
                _ => None,
            }
        });
        out.push_str("…\"");
        rest = end.map_or("", |j| &tail[j + 1..]);
    }
    out.push_str(rest);
    out
}

/// 1-based line number of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    line_at(text.as_bytes(), offset)
}

/// 1-based line number of a byte offset in bytes that need not be UTF-8.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let offset = offset.min(bytes.len());
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn a_config_that_is_not_utf8_names_the_line_not_the_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remoteclaw.toml");
        std::fs::write(&path, b"[gateway]\nport = 8080\n# caf\xe9\n").expect("write");
        let err = load(&path, true).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}:3: not valid UTF-8 (byte 0xe9)",
                path.display()
            )),
            "{err}"
        );
        assert!(err.contains("save the file as UTF-8"), "{err}");
        assert!(!err.contains("permissions"), "{err}");
    }
}
