//! Setting one variable in `<state>/.env` (read by dotenvy at start): every other line
//! stays as it is, the file is replaced atomically and is 0600. Values are written so
//! dotenvy reads them back literally (no `$VAR` substitution).

use crate::config::edit::write_atomic;
use crate::config::paths::ensure_private_dir;
use anyhow::{Context, bail};
use std::path::Path;

/// `NAME=value`, quoted when needed. Refuses values dotenvy could not read back as is.
fn assignment(name: &str, value: &str) -> anyhow::Result<String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the value for {name} must be one word without spaces or control characters");
    }
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.:/+=@%,~".contains(c));
    if plain {
        Ok(format!("{name}={value}"))
    } else if !value.contains('\'') {
        // Single quotes: dotenvy takes the text literally.
        Ok(format!("{name}='{value}'"))
    } else {
        bail!(
            "the value for {name} contains a quote character, which .env cannot hold reliably; use --store profile instead"
        )
    }
}

/// The variable a line assigns (`NAME=…` or `export NAME=…`), if any.
fn assigned_name(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
    let (name, _) = t.split_once('=')?;
    let name = name.trim_end();
    (!name.is_empty() && !name.starts_with('#')).then_some(name)
}

/// `text` with `name` set to `value`: the first assignment is replaced in place, later
/// ones are dropped, and a missing one is appended.
pub(super) fn upsert(text: &str, name: &str, value: &str) -> anyhow::Result<String> {
    let line = assignment(name, value)?;
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut done = false;
    for l in text.split_inclusive('\n') {
        if assigned_name(l) == Some(name) {
            if !done {
                out.push_str(&line);
                out.push('\n');
                done = true;
            }
            continue;
        }
        out.push_str(l);
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Set `name=value` in the env file at `path` (created 0600 if missing).
pub(super) fn set_var(path: &Path, name: &str, value: &str) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let new = upsert(&old, name, value)?;
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(path, new.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_in_place_and_keeps_other_lines() {
        let text = "# keys\nOTHER=1\nexport ANTHROPIC_API_KEY=old\nLAST=\"x y\"\nANTHROPIC_API_KEY = older\n";
        let out = upsert(text, "ANTHROPIC_API_KEY", "sk-new").unwrap();
        assert_eq!(
            out,
            "# keys\nOTHER=1\nANTHROPIC_API_KEY=sk-new\nLAST=\"x y\"\n"
        );
        // Similar names are other variables.
        let out = upsert("ANTHROPIC_API_KEYS=a,b\n", "ANTHROPIC_API_KEY", "k").unwrap();
        assert_eq!(out, "ANTHROPIC_API_KEYS=a,b\nANTHROPIC_API_KEY=k\n");
    }

    #[test]
    fn appends_with_a_newline_and_quotes_when_needed() {
        assert_eq!(upsert("", "K", "v").unwrap(), "K=v\n");
        assert_eq!(upsert("A=1", "K", "v").unwrap(), "A=1\nK=v\n");
        assert_eq!(upsert("", "K", "a$b#c").unwrap(), "K='a$b#c'\n");
        assert!(upsert("", "K", "a'b$").is_err());
        assert!(upsert("", "K", "a b").is_err());
    }

    #[test]
    fn dotenvy_reads_it_back_literally() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/.env");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "KEEP=1\n").unwrap();
        set_var(&path, "OPENAI_API_KEY", "sk-$HOME#x").unwrap();
        set_var(&path, "GEMINI_API_KEY", "AIza-plain").unwrap();
        let mut env = crate::config::env::EnvMap::default();
        crate::config::env::load_env_file(&path, &mut env).unwrap();
        assert_eq!(env.get("KEEP"), Some("1"));
        assert_eq!(env.get("OPENAI_API_KEY"), Some("sk-$HOME#x"));
        assert_eq!(env.get("GEMINI_API_KEY"), Some("AIza-plain"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
