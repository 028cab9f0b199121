//! The environment as RemoteClaw sees it: a snapshot of the process environment, filled
//! in (never overridden) from `<state>/.env` and, optionally, the login shell.
//!
//! Nothing here calls `std::env::set_var`: the snapshot is passed to whoever needs a
//! variable (credential resolution, SecretRefs), so tests build one by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Environment variables. `Debug` lists names only: values may be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvMap(BTreeMap<String, String>);

impl fmt::Debug for EnvMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl EnvMap {
    /// The current process environment (variables that are not UTF-8 are skipped).
    pub fn from_process() -> EnvMap {
        EnvMap(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> EnvMap {
        EnvMap(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value when set and not blank.
    pub fn get_nonblank(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Set only the variables that are not set yet; returns how many were added.
    pub fn fill_missing(&mut self, pairs: impl IntoIterator<Item = (String, String)>) -> usize {
        let mut added = 0;
        for (k, v) in pairs {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.0.entry(k) {
                slot.insert(v);
                added += 1;
            }
        }
        added
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Variables whose name starts with `prefix`, sorted by name.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read {path}: {source}. Fix its permissions or remove it.")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The state directory itself is the problem, not the `.env` in it.
    #[error(
        "the state directory {path} {why}. Point REMOTECLAW_STATE_DIR at a directory you own (default ~/.remoteclaw), or fix this one; `remoteclaw doctor` checks it."
    )]
    StateDir { path: String, why: &'static str },
    /// The offending line is never echoed: it may hold a secret.
    #[error(
        "{path}:{line}: not a KEY=VALUE line. Fix or remove that line (values with spaces need quotes)."
    )]
    Syntax { path: String, line: usize },
    #[error("{path}:{line}: not valid UTF-8. Save the file as UTF-8, or fix or remove that line.")]
    NotUtf8 { path: String, line: usize },
}

/// When `.env` cannot be read because of the directory it lives in (not a directory,
/// or not one this user may open), that directory's problem.
fn state_dir_problem(env_file: &Path) -> Option<EnvFileError> {
    let dir = env_file.parent()?;
    let why = match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => "is not a directory",
        Ok(_) => match std::fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                "cannot be opened (permission denied)"
            }
            _ => return None,
        },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "cannot be opened (permission denied)"
        }
        Err(_) => return None,
    };
    Some(EnvFileError::StateDir {
        path: dir.display().to_string(),
        why,
    })
}

/// Read `<state>/.env` with dotenvy and add its variables where not already set.
/// A missing file is fine; returns how many variables were added.
pub fn load_env_file(path: &Path, env: &mut EnvMap) -> Result<usize, EnvFileError> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(state_dir_problem(path).unwrap_or(EnvFileError::Read {
                path: shown,
                source,
            }));
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(_) => {
            let line = super::first_bad_utf8(&bytes).map_or(1, |(l, _)| l);
            return Err(EnvFileError::NotUtf8 { path: shown, line });
        }
    };
    // Editors on some systems start a file with a byte order mark: not part of line 1.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let iter = dotenvy::from_read_iter(text.as_bytes());
    let mut pairs = Vec::new();
    for item in iter {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(dotenvy::Error::LineParse(content, _)) => {
                let first = content.lines().next().unwrap_or_default();
                let line = text
                    .lines()
                    .position(|l| !first.is_empty() && l.contains(first))
                    .map_or(1, |i| i + 1);
                return Err(EnvFileError::Syntax { path: shown, line });
            }
            Err(dotenvy::Error::Io(source)) => {
                return Err(EnvFileError::Read {
                    path: shown,
                    source,
                });
            }
            Err(_) => {
                return Err(EnvFileError::Syntax {
                    path: shown,
                    line: 1,
                });
            }
        }
    }
    Ok(env.fill_missing(pairs))
}

/// Run the login shell (`$SHELL -l -c 'env -0'`) and add the variables it exports that
/// are not set yet. The shell is killed after `timeout`. Returns how many were added.
pub async fn import_shell_env(env: &mut EnvMap, timeout: Duration) -> Result<usize, String> {
    let shell = env.get_nonblank("SHELL").unwrap_or("/bin/sh").to_string();
    let mut cmd = tokio::process::Command::new(&shell);
    cmd.args(["-l", "-c", "env -0"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(format!(
                "login shell {shell} did not finish within {} ms (env.shellEnv.timeoutMs)",
                timeout.as_millis()
            ));
        }
        Ok(Err(e)) => return Err(format!("cannot run login shell {shell}: {e}")),
        Ok(Ok(o)) => o,
    };
    if !out.status.success() {
        return Err(format!("login shell {shell} exited with {}", out.status));
    }
    Ok(env.fill_missing(parse_env0(&out.stdout)))
}

/// Parse `env -0` output: NUL-separated `KEY=VALUE` records.
fn parse_env0(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|&b| b == 0)
        .filter_map(|rec| {
            let s = std::str::from_utf8(rec).ok()?;
            let (k, v) = s.split_once('=')?;
            (!k.is_empty() && !k.contains('\n')).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_fills_but_never_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=from_file\nB=\"two words\"\n# comment\n").expect("write");
        let mut env = EnvMap::from_pairs([("A", "from_process")]);
        assert_eq!(load_env_file(&path, &mut env).expect("load"), 1);
        assert_eq!(env.get("A"), Some("from_process"));
        assert_eq!(env.get("B"), Some("two words"));
    }

    #[test]
    fn a_state_dir_that_is_a_file_is_named_as_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("st");
        std::fs::write(&state, "").expect("write");
        let err = load_env_file(&state.join(".env"), &mut EnvMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "the state directory {} is not a directory",
                state.display()
            )),
            "{err}"
        );
        assert!(err.contains("REMOTECLAW_STATE_DIR"), "{err}");
    }

    #[test]
    fn dotenv_syntax_error_names_line_not_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\nSECRET sk-canary-value\n").expect("write");
        let err = load_env_file(&path, &mut EnvMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:"), "{err}");
        assert!(!err.contains("canary"), "{err}");
    }

    #[test]
    fn a_dotenv_that_is_not_utf8_names_the_line_and_a_bom_is_no_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".env");
        std::fs::write(&path, b"A=1\nB=caf\xe9\n").expect("write");
        let err = load_env_file(&path, &mut EnvMap::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: not valid UTF-8. Save the file as UTF-8, or fix or remove that line.",
                path.display()
            )
        );
        std::fs::write(&path, "\u{feff}A=1\nB=2\n").expect("write");
        let mut env = EnvMap::default();
        assert_eq!(load_env_file(&path, &mut env).expect("a BOM is fine"), 2);
        assert_eq!(env.get("A"), Some("1"));
    }

    #[test]
    fn missing_dotenv_is_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            load_env_file(&dir.path().join(".env"), &mut EnvMap::default()).expect("ok"),
            0
        );
    }

    #[test]
    fn env0_parsing() {
        let v = parse_env0(b"A=1\0B=x=y\0\0junk\0C=multi\nline\0");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "multi\nline".into())
            ]
        );
    }

    #[test]
    fn prefix_listing_is_sorted() {
        let env = EnvMap::from_pairs([("K_B", "2"), ("K_A", "1"), ("KX", "0"), ("L", "9")]);
        assert_eq!(
            env.with_prefix("K_").collect::<Vec<_>>(),
            [("K_A", "1"), ("K_B", "2")]
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let env = EnvMap::from_pairs([("ANTHROPIC_API_KEY", "sk-canary")]);
        assert!(!format!("{env:?}").contains("canary"));
    }

    #[tokio::test]
    async fn shell_env_import_fills_missing() {
        let mut env = EnvMap::from_pairs([("SHELL", "/bin/sh"), ("HOME", "/nonexistent-home")]);
        let added = import_shell_env(&mut env, Duration::from_secs(10))
            .await
            .expect("shell");
        assert!(added > 0);
        assert_eq!(env.get("SHELL"), Some("/bin/sh"));
        assert_eq!(
            env.get("HOME"),
            Some("/nonexistent-home"),
            "never overridden"
        );
    }
}
