//! Reading an OpenClaw state directory (blocking file I/O; run it off the async
//! workers): `openclaw.json` (JSON5: comments, unquoted keys, trailing commas) and each
//! agent's `agents/<agentId>/agent/auth-profiles.json`. Syntax errors name the file,
//! line and column, and never quote the file's content (it holds secrets).

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What was found in the OpenClaw directory.
#[derive(Debug)]
pub struct Source {
    pub dir: PathBuf,
    pub config: Value,
    pub agents: Vec<SourceAgent>,
    /// Agent directories whose name RemoteClaw cannot use as an agent id.
    pub unusable_agents: Vec<String>,
    /// OpenClaw's own `.env` (variables for `${VAR}` in its config): not copied.
    pub env_file: Option<PathBuf>,
}

#[derive(Debug)]
pub struct SourceAgent {
    pub id: String,
    /// `agents/<id>/agent/auth-profiles.json`, relative to the OpenClaw directory.
    pub file: String,
    pub doc: Value,
}

/// How deep arrays and objects may nest (the JSON5 reader recurses per level, and a
/// config never comes near this; serde_json stops at 128 too).
const MAX_DEPTH: usize = 128;

/// Where `text` first nests arrays/objects deeper than `limit` (1-based line and
/// column), looking past strings and comments as JSON5 writes them.
fn too_deep(text: &str, limit: usize) -> Option<(usize, usize)> {
    // JSON5 line terminators: LF, CR (CR LF counts once), U+2028, U+2029.
    let ends_line = |c: char, next: Option<&char>| {
        matches!(c, '\n' | '\u{2028}' | '\u{2029}') || (c == '\r' && next != Some(&'\n'))
    };
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        if ends_line(c, chars.peek()) {
            line += 1;
            col = 0;
            continue;
        }
        match c {
            '"' | '\'' => {
                while let Some(d) = chars.next() {
                    col += 1;
                    if d == '\\' {
                        // An escaped character, a line continuation included.
                        if let Some(e) = chars.next() {
                            col += 1;
                            if ends_line(e, chars.peek()) {
                                line += 1;
                                col = 0;
                            }
                        }
                    } else if ends_line(d, chars.peek()) {
                        line += 1;
                        col = 0;
                    } else if d == c {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while let Some(d) = chars.next() {
                    if ends_line(d, chars.peek()) {
                        line += 1;
                        col = 0;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                while let Some(d) = chars.next() {
                    col += 1;
                    if ends_line(d, chars.peek()) {
                        line += 1;
                        col = 0;
                    }
                    if star && d == '/' {
                        break;
                    }
                    star = d == '*';
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > limit {
                    return Some((line, col));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parse JSON5 text; an error names `path`, the line and the column.
pub fn parse_json5(path: &Path, text: &str) -> anyhow::Result<Value> {
    if let Some((line, column)) = too_deep(text, MAX_DEPTH) {
        bail!(
            "{}:{line}:{column}: not valid here: arrays and objects nest more than {MAX_DEPTH} levels deep at line {line}, column {column}. Nothing was imported.",
            path.display()
        );
    }
    json5::from_str::<Value>(text).map_err(|e| {
        // Only the crate's fixed error texts are shown: a custom message could quote input.
        let what = e
            .code()
            .map_or_else(|| "syntax error".to_string(), |c| c.to_string());
        match e.position() {
            Some(p) => anyhow::anyhow!(
                "{}:{}:{}: not valid JSON5 ({what}) at line {}, column {}. Nothing was imported.",
                path.display(),
                p.line + 1,
                p.column + 1,
                p.line + 1,
                p.column + 1
            ),
            None => anyhow::anyhow!(
                "{}: not valid JSON5 ({what}). Nothing was imported.",
                path.display()
            ),
        }
    })
}

fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

pub fn read(dir: &Path) -> anyhow::Result<Source> {
    if !dir.is_dir() {
        let what = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        bail!(
            "the OpenClaw directory {} {what}. Pass the directory that holds openclaw.json with --from DIR.",
            crate::pairing::printable(&dir.display().to_string())
        );
    }
    let config_path = dir.join("openclaw.json");
    let text = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} not found: is {} an OpenClaw state directory? Pass the right one with --from DIR.",
            config_path.display(),
            dir.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", config_path.display()));
        }
    };
    let config = parse_json5(&config_path, &text)?;
    if !config.is_object() {
        bail!(
            "{}: the top level is not an object. Nothing was imported.",
            config_path.display()
        );
    }
    let mut agents = Vec::new();
    let mut unusable_agents = Vec::new();
    let agents_dir = dir.join("agents");
    let mut names: Vec<String> = match std::fs::read_dir(&agents_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot list {}", agents_dir.display()));
        }
    };
    names.sort();
    for name in names {
        let file = format!("agents/{name}/agent/auth-profiles.json");
        let path = dir.join(&file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let id = name.to_lowercase();
        if !plain_id(&id) {
            unusable_agents.push(file);
            continue;
        }
        let doc = parse_json5(&path, &text)?;
        agents.push(SourceAgent { id, file, doc });
    }
    let env_file = Some(dir.join(".env")).filter(|p| p.is_file());
    Ok(Source {
        dir: dir.to_path_buf(),
        config,
        agents,
        unusable_agents,
        env_file,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{a: {}{}}}", "[".repeat(5000), "]".repeat(5000));
        let e = super::parse_json5(std::path::Path::new("/x/openclaw.json"), &deep)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/openclaw.json:1:"), "{e}");
        assert!(e.contains("128 levels"), "{e}");
        // Brackets inside strings and comments do not count; real nesting up to the
        // limit parses.
        let fine = format!(
            "// [[[[ {{{{\n{{s: '[[[\\'[[', t: \"{{{{\", /* [[[ */ n: {}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let v = super::parse_json5(std::path::Path::new("/x/openclaw.json"), &fine).unwrap();
        assert_eq!(v["s"], "[[['[[");
        // A line comment ends at any JSON5 line terminator, not only LF.
        for end in ["\r", "\u{2028}", "\u{2029}", "\r\n"] {
            let sneaky = format!("// c{end}{{a: {}{}}}", "[".repeat(300), "]".repeat(300));
            let e = super::parse_json5(std::path::Path::new("/x/o.json"), &sneaky)
                .unwrap_err()
                .to_string();
            assert!(e.contains("/x/o.json:2:"), "{end:?}: {e}");
        }
    }

    use super::*;

    #[test]
    fn json5_errors_name_line_and_column_without_content() {
        let e = parse_json5(
            Path::new("/x/openclaw.json"),
            "{\n  a: 1,\n  b: \"secret-value\" c: 2\n}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/x/openclaw.json:3:"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("secret-value"), "{e}");
        let v = parse_json5(Path::new("x"), "// c\n{ a: [1, 2,], /* b */ 'q': \"r\", }").unwrap();
        assert_eq!(v["a"][1], 2);
        assert_eq!(v["q"], "r");
    }
}
