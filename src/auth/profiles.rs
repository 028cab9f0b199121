//! Reading `auth-profiles.json` (schema version 1, DESIGN §2). Entries with an unknown
//! `type` or no `provider` are dropped with a warning naming them; a file that is not
//! valid JSON is reported with its path and line and never touched.
//!
//! `ProfileFile` keeps the file as last read and reads it again when its size or mtime
//! changes; turns ask it without file I/O on the async workers (`load_async`).

use crate::config::SecretRef;
use crate::secret::Secret;
use crate::state::{RECHECK_EVERY, Recheck};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileCredential {
    ApiKey {
        key: Option<Secret>,
        key_ref: Option<SecretRef>,
    },
    Token {
        token: Option<Secret>,
        token_ref: Option<SecretRef>,
        expires_ms: Option<i64>,
    },
    Oauth {
        access: Option<Secret>,
        refresh: Option<Secret>,
        expires_ms: Option<i64>,
        /// The provider's account id (`accountId`), when the sign-in said.
        account_id: Option<String>,
        /// The signed-in account's email (`email`), when the sign-in said.
        email: Option<String>,
    },
}

/// A stored profile. Secret fields are `Secret`, so `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: String,
    pub provider: String,
    pub credential: ProfileCredential,
    /// `expires` was present but not epoch milliseconds (reason `invalid_expires`).
    pub invalid_expires: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileStore {
    pub profiles: BTreeMap<String, Profile>,
    pub order: BTreeMap<String, Vec<String>>,
    /// `usageStats` of a file imported from the reference system (read once into state.db).
    pub usage_stats: BTreeMap<String, UsageStats>,
    /// Human-readable notes about dropped or repaired entries (no secret values).
    pub warnings: Vec<String>,
    /// `order` entries that are not a list of ids (a string, null, a number, …): ignored,
    /// so the provider's order comes from the next source (DESIGN §5), and reported by
    /// `models status` and `doctor`.
    pub malformed_order: Vec<MalformedOrder>,
}

/// An `order.<provider>` entry that is not a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedOrder {
    /// The key as written in the file (`order.<key>`).
    pub key: String,
    /// The provider it stands for (normalized).
    pub provider: String,
    /// What it is instead: "a string", "null", "a number", "a boolean", "an object".
    pub found: &'static str,
}

impl MalformedOrder {
    /// What is wrong, naming the file and the key; never the value.
    pub fn problem(&self, path: &Path) -> String {
        format!(
            "{}: \"order.{}\" is {}, not a list of profile ids; it is ignored, so {} takes its auth order from auth.order in the config, else its declared or stored profiles",
            path.display(),
            self.key,
            self.found,
            self.provider
        )
    }

    /// How to repair it.
    pub fn fix(&self) -> String {
        format!(
            "make it a list of profile ids: `remoteclaw models auth order set --provider {p} <PROFILE_ID>...`, or remove it: `remoteclaw models auth order clear --provider {p}`",
            p = self.provider
        )
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileStoreError {
    #[error("cannot read {}: {source}. Check its permissions.", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not valid JSON ({message}). The file was left untouched; fix it by hand or restore a backup.", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    profiles: BTreeMap<String, Value>,
    #[serde(default, rename = "usageStats")]
    usage_stats: BTreeMap<String, Value>,
    #[serde(default)]
    order: BTreeMap<String, Value>,
}

/// `expires` in epoch ms; absent, 0 or not a number = no expiry.
fn expires(v: &Value) -> Option<i64> {
    v.get("expires").and_then(Value::as_i64).filter(|&e| e > 0)
}

/// `expires` present but neither null, 0 nor a non-negative integer.
fn expires_invalid(v: &Value) -> bool {
    match v.get("expires") {
        None | Some(Value::Null) => false,
        Some(e) => e.as_i64().is_none_or(|e| e < 0),
    }
}

/// One entry of an imported file's `usageStats` (reference-system field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageStats {
    pub last_used: Option<i64>,
    pub error_count: Option<u32>,
    pub cooldown_until: Option<i64>,
    pub disabled_until: Option<i64>,
    pub disabled_reason: Option<String>,
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn opt_secret(v: &Value, k: &str) -> Option<Secret> {
    v.get(k).and_then(Value::as_str).map(Secret::new)
}

fn opt_ref(v: &Value, k: &str) -> Option<SecretRef> {
    v.get(k)
        .and_then(|r| serde_json::from_value(r.clone()).ok())
}

impl ProfileStore {
    /// Load the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<ProfileStore, ProfileStoreError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, Self::utf8(path, &bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileStore::default()),
            Err(source) => Err(ProfileStoreError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's text, or — for bytes that are not UTF-8 (JSON is UTF-8 text) — a
    /// [`ProfileStoreError::Corrupt`] naming the file and the line of the first bad
    /// byte, never quoting the content.
    fn utf8<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, ProfileStoreError> {
        std::str::from_utf8(bytes).map_err(|e| ProfileStoreError::Corrupt {
            path: path.to_path_buf(),
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            message: "the file is not valid UTF-8 text, which JSON must be; save it as UTF-8"
                .into(),
        })
    }

    pub fn parse(path: &Path, text: &str) -> Result<ProfileStore, ProfileStoreError> {
        // serde reads a struct from a list too (`[]` as an empty store, `[x]` with x as
        // the version): a list at the top level is as corrupt as `"x"` or `null` are.
        let body = text.trim_start_matches([' ', '\t', '\n', '\r']);
        if body.starts_with('[') {
            return Err(ProfileStoreError::Corrupt {
                path: path.to_path_buf(),
                line: 1 + text[..text.len() - body.len()].matches('\n').count(),
                message: "the top level is not a JSON object but a list; expected an object with a \"profiles\" object".into(),
            });
        }
        let raw: RawFile = serde_json::from_str(text).map_err(|e| ProfileStoreError::Corrupt {
            path: path.to_path_buf(),
            line: e.line(),
            // serde's own text can quote the offending value, which may be a key: say
            // what kind of problem it is, never what the file holds.
            message: match e.classify() {
                serde_json::error::Category::Syntax => format!("syntax error at column {}", e.column()),
                serde_json::error::Category::Eof => "the file ends too early".to_string(),
                serde_json::error::Category::Data => {
                    "unexpected structure: expected an object with a \"profiles\" object and an optional \"order\" object".to_string()
                }
                serde_json::error::Category::Io => "read error".to_string(),
            },
        })?;
        let mut store = ProfileStore::default();
        if let Some(v) = raw
            .version
            .as_ref()
            .filter(|v| !v.is_null() && v.as_f64() != Some(1.0))
        {
            store.warnings.push(format!(
                "schema version {v}: this RemoteClaw reads version 1, so entries a newer version added may be ignored; run the RemoteClaw that wrote the file"
            ));
        }
        for (id, v) in raw.profiles {
            let Some(provider) = opt_str(&v, "provider").filter(|p| !p.trim().is_empty()) else {
                store
                    .warnings
                    .push(format!("profile \"{id}\" has no provider and was ignored"));
                continue;
            };
            let credential = match v.get("type").and_then(Value::as_str) {
                Some("api_key") => ProfileCredential::ApiKey {
                    key: opt_secret(&v, "key"),
                    key_ref: opt_ref(&v, "keyRef"),
                },
                Some("token") => ProfileCredential::Token {
                    token: opt_secret(&v, "token"),
                    token_ref: opt_ref(&v, "tokenRef"),
                    expires_ms: expires(&v),
                },
                Some("oauth") => ProfileCredential::Oauth {
                    access: opt_secret(&v, "access"),
                    refresh: opt_secret(&v, "refresh"),
                    expires_ms: expires(&v),
                    account_id: opt_str(&v, "accountId"),
                    email: opt_str(&v, "email"),
                },
                other => {
                    store.warnings.push(format!(
                        "profile \"{id}\" has unknown type {} and was ignored",
                        other.map_or("(none)".into(), |t| format!("\"{t}\""))
                    ));
                    continue;
                }
            };
            store.profiles.insert(
                id.clone(),
                Profile {
                    id,
                    provider: crate::catalog::normalize_provider(&provider),
                    credential,
                    invalid_expires: expires_invalid(&v),
                },
            );
        }
        for (id, v) in raw.usage_stats {
            match serde_json::from_value::<UsageStats>(v) {
                Ok(u) => {
                    store.usage_stats.insert(id, u);
                }
                Err(_) => store.warnings.push(format!(
                    "usageStats for \"{id}\" are not in the expected shape and were ignored"
                )),
            }
        }
        for (key, v) in raw.order {
            let provider = crate::catalog::normalize_provider(&key);
            // Not a list: as if absent (an empty explicit order would hide every stored
            // profile of the provider), and reported.
            let Some(list) = v.as_array() else {
                store.malformed_order.push(MalformedOrder {
                    key,
                    provider,
                    found: json_type(&v),
                });
                continue;
            };
            for (i, entry) in list.iter().enumerate().filter(|(_, e)| !e.is_string()) {
                store.warnings.push(format!(
                    "order.{key}[{i}] is {} where a profile id (a string) belongs, and was ignored",
                    json_type(entry)
                ));
            }
            let ids: Vec<String> = list
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            store.order.insert(provider, ids);
        }
        Ok(store)
    }

    pub fn for_provider<'a>(&'a self, provider: &'a str) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles
            .values()
            .filter(move |p| p.provider == provider)
    }

    /// The ids of `provider`'s profiles as messages list them (`Profiles for anthropic:
    /// anthropic:work, anthropic:manual.`): those in the auth order first, in its order —
    /// this file's `order` for the provider, else `config_order` (`auth.order`) — then
    /// the others by id.
    pub fn ids_in_order(&self, provider: &str, config_order: Option<&[String]>) -> Vec<String> {
        let order: &[String] = match self.order.get(provider) {
            Some(o) => o,
            None => config_order.unwrap_or_default(),
        };
        let mut ids: Vec<&str> = self.for_provider(provider).map(|p| p.id.as_str()).collect();
        // Stable: ids outside the order keep the store's (sorted) order behind them.
        ids.sort_by_key(|id| order.iter().position(|o| o == id).unwrap_or(usize::MAX));
        ids.into_iter().map(str::to_string).collect()
    }
}

/// File identity used to notice edits by another process (the CLI): mtime and size;
/// `None` when the file does not exist.
type Stamp = Option<(SystemTime, u64)>;

/// What a [`ProfileFile`] holds between reads.
#[derive(Debug, Clone, Default)]
struct Cached {
    /// The stamp the file had when last read; `None`: read it at the next check
    /// (nothing read yet, or the read failed: a corrupt file may be fixed at the same
    /// size within one mtime tick, and a permission change does not show in the stamp).
    read_at: Option<Stamp>,
    /// The profiles in force: the file's last valid version, or none when it has not
    /// been valid since this process started.
    in_force: Arc<ProfileStore>,
    /// `in_force` came from the file as last valid (not from its absence).
    has_good: bool,
    /// Why the file on disk is not what is in force (unreadable or corrupt).
    problem: Option<Arc<str>>,
}

/// One auth-profiles.json, cached: read again only when its stamp changes. A file that
/// turns unreadable or corrupt does not take its last valid version away (README, "auth-
/// profiles.json is re-read on change the same way"): that stays in force, the problem is
/// logged once per change and kept for `/health` ([`problem`](Self::problem)), and it
/// is logged again when the file is valid. A file never valid since the start gives no
/// profiles (environment and config keys still work) until it is fixed.
#[derive(Debug)]
pub struct ProfileFile {
    path: PathBuf,
    cache: Mutex<Cached>,
    /// Held from the `stat` to the cache update: reads overlap no more, so an older
    /// read never replaces a newer one.
    loading: Mutex<()>,
    recheck: Recheck,
}

impl ProfileFile {
    pub fn new(path: PathBuf) -> ProfileFile {
        ProfileFile {
            path,
            cache: Mutex::new(Cached::default()),
            loading: Mutex::new(()),
            recheck: Recheck::new(RECHECK_EVERY),
        }
    }

    /// Check the file's stamp in turns at most every `every` (instead of
    /// [`RECHECK_EVERY`]).
    pub fn with_recheck(mut self, every: std::time::Duration) -> ProfileFile {
        self.recheck = Recheck::new(every);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cached(&self) -> Cached {
        self.cache.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Why the file, as last looked at, is not in force (it is unreadable or not valid):
    /// the file, the line and what is used meanwhile; never a value from the file.
    pub fn problem(&self) -> Option<Arc<str>> {
        self.cached().problem
    }

    /// The profiles in force, after a `stat` (and a read when the file changed).
    /// Blocking.
    pub fn load(&self) -> Arc<ProfileStore> {
        let started = Instant::now();
        let _loading = self.loading.lock();
        let stamp: Stamp = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let before = self.cached();
        if before.read_at == Some(stamp) {
            self.recheck.done(started);
            return before.in_force;
        }
        let read = ProfileStore::load(&self.path);
        let Ok(mut cache) = self.cache.lock() else {
            self.recheck.done(started);
            return read.map(Arc::new).unwrap_or_default();
        };
        let had_problem = cache.problem.is_some();
        let mut newly_invalid = None;
        match read {
            Ok(store) => {
                for w in &store.warnings {
                    tracing::warn!(file = %self.path.display(), "{w}");
                }
                for m in &store.malformed_order {
                    tracing::warn!("{}", m.problem(&self.path));
                }
                *cache = Cached {
                    read_at: Some(stamp),
                    in_force: Arc::new(store),
                    // No file (no stamp) puts no profiles in force: a corrupt file
                    // written next has no last valid version to fall back on.
                    has_good: stamp.is_some(),
                    problem: None,
                };
            }
            Err(e) => {
                let problem: Arc<str> = format!(
                    "{e} {}",
                    if cache.has_good {
                        "Until then the last valid version of its profiles stays in force."
                    } else {
                        "Its profiles are not used until it is fixed; environment and config keys still are."
                    }
                )
                .into();
                if cache.problem.as_deref() != Some(&*problem) {
                    newly_invalid = Some(problem.clone());
                }
                // Read again at the next check, whatever the stamp: a fix of the same
                // size within the same mtime tick must be seen (the message is only
                // logged when it changes).
                cache.read_at = None;
                cache.problem = Some(problem);
            }
        }
        let in_force = cache.in_force.clone();
        let valid_again = had_problem && cache.problem.is_none();
        drop(cache);
        self.recheck.done(started);
        if let Some(problem) = newly_invalid {
            tracing::warn!(file = %self.path.display(), "credentials file is not valid: {problem}");
        }
        if valid_again {
            tracing::info!(file = %self.path.display(), "credentials file is valid again; its profiles are in force");
        }
        in_force
    }

    /// The profiles for a turn: from memory when the file was checked less than
    /// [`RECHECK_EVERY`] ago, else checked (and read if changed) on the blocking pool.
    pub async fn load_async(self: &Arc<Self>) -> Arc<ProfileStore> {
        if !self.recheck.due() {
            let cached = self.cached();
            // Read once already (a read error included): served until the next check.
            if cached.read_at.is_some() || cached.problem.is_some() {
                return cached.in_force;
            }
        }
        self.check_async().await
    }

    /// The profiles as on disk now, checked on the blocking pool (e.g. when a profile a
    /// request names is not in the copy in memory: it may have been added a moment ago).
    pub async fn check_async(self: &Arc<Self>) -> Arc<ProfileStore> {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.load()).await {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), "the credentials file read task failed: {e}");
                self.cached().in_force
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_file_and_coerces() {
        let text = r#"{ "version": 1,
          "profiles": {
            "anthropic:work": { "type": "api_key", "provider": "anthropic", "key": "sk-ant-api03-x" },
            "anthropic:manual": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-y", "expires": 0 },
            "openrouter:team": { "type": "api_key", "provider": "openrouter", "keyRef": { "source": "env", "provider": "default", "id": "TEAM_OR_KEY" } },
            "bad:type": { "type": "password", "provider": "x" },
            "bad:noprov": { "type": "api_key", "key": "k" } },
          "order": { "anthropic": [" anthropic:work ", "", "anthropic:manual"] },
          "usageStats": {} }"#;
        let s = ProfileStore::parse(Path::new("a.json"), text).expect("parse");
        assert_eq!(s.profiles.len(), 3);
        assert_eq!(s.order["anthropic"], ["anthropic:work", "anthropic:manual"]);
        assert_eq!(s.warnings.len(), 2);
        assert!(matches!(
            s.profiles["anthropic:manual"].credential,
            ProfileCredential::Token {
                expires_ms: None,
                ..
            }
        ));
        assert!(
            matches!(&s.profiles["openrouter:team"].credential, ProfileCredential::ApiKey { key: None, key_ref: Some(r) } if r.id == "TEAM_OR_KEY")
        );
    }

    /// Regression (audit s9): a non-list `order` entry became an empty explicit order,
    /// hiding every stored profile of the provider. It is now as if absent, and reported.
    #[test]
    fn an_order_entry_that_is_not_a_list_is_ignored_and_reported() {
        for (value, found) in [
            ("\"corp:a\"", "a string"),
            ("null", "null"),
            ("3", "a number"),
            ("{}", "an object"),
        ] {
            let text = format!(
                r#"{{"profiles": {{"corp:a": {{"type": "api_key", "provider": "corp", "key": "k"}}}},
                   "order": {{"Corp": {value}, "other": ["o:1"]}}}}"#
            );
            let s = ProfileStore::parse(Path::new("/x/auth-profiles.json"), &text).expect("parse");
            assert!(!s.order.contains_key("corp"), "{value}: treated as absent");
            assert_eq!(s.order["other"], ["o:1"]);
            assert_eq!(
                s.malformed_order,
                [MalformedOrder {
                    key: "Corp".into(),
                    provider: "corp".into(),
                    found,
                }]
            );
            let problem = s.malformed_order[0].problem(Path::new("/x/auth-profiles.json"));
            assert!(
                problem.starts_with("/x/auth-profiles.json: \"order.Corp\" is "),
                "{problem}"
            );
            assert!(
                !problem.contains("corp:a\""),
                "never quotes the value: {problem}"
            );
            assert!(
                s.malformed_order[0]
                    .fix()
                    .contains("remoteclaw models auth order clear --provider corp"),
            );
        }
        // Entries that are no profile id are ignored, each one reported (never quoted).
        let s = ProfileStore::parse(
            Path::new("a.json"),
            r#"{"profiles": {}, "order": {"corp": ["corp:a", 3, {"k": "secret"}, "corp:b"]}}"#,
        )
        .expect("parse");
        assert_eq!(s.order["corp"], ["corp:a", "corp:b"]);
        assert_eq!(
            s.warnings,
            [
                "order.corp[1] is a number where a profile id (a string) belongs, and was ignored",
                "order.corp[2] is an object where a profile id (a string) belongs, and was ignored",
            ]
        );
        // An explicit empty list stays an explicit empty order.
        let s = ProfileStore::parse(
            Path::new("a.json"),
            r#"{"profiles": {}, "order": {"corp": []}}"#,
        )
        .expect("parse");
        assert_eq!(s.order["corp"], Vec::<String>::new());
        assert!(s.malformed_order.is_empty());
    }

    /// Regression (audit s9): a non-UTF-8 file was reported as "cannot read …: stream
    /// did not contain valid UTF-8. Check its permissions."
    #[test]
    fn a_file_that_is_not_utf8_is_named_as_such_with_its_line() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::fs::write(&path, b"{\"profiles\": {\n\"a\": \"sk-canary-\xff\"}}").expect("write");
        let err = ProfileStore::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ProfileStoreError::Corrupt { line: 2, .. }),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("{}:2: ", path.display())), "{msg}");
        assert!(msg.contains("not valid UTF-8"), "{msg}");
        assert!(msg.contains("save it as UTF-8"), "{msg}");
        assert!(!msg.contains("permissions"), "{msg}");
        assert!(!msg.contains("canary"), "{msg}");
    }

    #[test]
    fn corrupt_file_names_path_and_line() {
        let err = ProfileStore::parse(
            Path::new("/x/auth-profiles.json"),
            "{\n \"profiles\": {,\n}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/x/auth-profiles.json:2"), "{err}");
        assert!(err.contains("left untouched"), "{err}");
    }

    /// Regression (audit): a file whose top level is a list was read as an empty store
    /// (`[{"old":"data"}]` even as schema version `{"old":"data"}`); writers already
    /// refused it. Readers now report it as corrupt, with its line.
    #[test]
    fn a_list_at_the_top_level_is_corrupt() {
        for (text, line) in [
            ("[]", 1),
            ("[{\"old\":\"data\"}]", 1),
            ("\n  [\n{\"profiles\": {}}]", 2),
        ] {
            let err = ProfileStore::parse(Path::new("/x/auth-profiles.json"), text).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, ProfileStoreError::Corrupt { line: l, .. } if l == line),
                "{text}: {msg}"
            );
            assert!(
                msg.starts_with(&format!("/x/auth-profiles.json:{line}: not valid JSON (the top level is not a JSON object")),
                "{msg}"
            );
            assert!(!msg.contains("old"), "never quotes the content: {msg}");
        }
    }

    #[test]
    fn corrupt_file_message_never_quotes_the_content() {
        let err = ProfileStore::parse(
            Path::new("a.json"),
            r#"{"profiles": "sk-ant-api03-CANARY"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("CANARY"), "{err}");
        assert!(err.contains("unexpected structure"), "{err}");
    }

    #[test]
    fn debug_hides_keys() {
        let s = ProfileStore::parse(
            Path::new("a"),
            r#"{"profiles":{"a:b":{"type":"api_key","provider":"a","key":"sk-canary"}}}"#,
        )
        .expect("parse");
        assert!(!format!("{s:?}").contains("canary"));
    }

    #[tokio::test]
    async fn a_changed_file_is_read_again_after_a_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-profiles.json");
        let one = r#"{"profiles":{"a:one":{"type":"api_key","provider":"a","key":"k1"}}}"#;
        let two = r#"{"profiles":{"a:two":{"type":"api_key","provider":"a","key":"k2"},"a:three":{"type":"api_key","provider":"a","key":"k3"}}}"#;
        let ids = |s: &ProfileStore| s.profiles.keys().cloned().collect::<Vec<_>>();
        let file = Arc::new(ProfileFile::new(path.clone()).with_recheck(std::time::Duration::ZERO));
        assert!(
            file.load_async().await.profiles.is_empty(),
            "missing = empty"
        );
        std::fs::write(&path, one).unwrap();
        assert_eq!(ids(&*file.load_async().await), ["a:one"]);
        std::fs::write(&path, two).unwrap();
        assert_eq!(ids(&*file.load_async().await), ["a:three", "a:two"]);

        let lazy = Arc::new(
            ProfileFile::new(path.clone()).with_recheck(std::time::Duration::from_secs(3600)),
        );
        assert_eq!(lazy.load_async().await.profiles.len(), 2);
        std::fs::write(&path, one).unwrap();
        assert_eq!(
            lazy.load_async().await.profiles.len(),
            2,
            "served from memory until the next check is due"
        );
        assert_eq!(
            ids(&lazy.load()),
            ["a:one"],
            "the blocking load always checks"
        );
    }

    /// Regression (audit): a file that turned corrupt took its profiles away from a
    /// running process. The last valid version stays in force, with the problem kept;
    /// a file never valid gives no profiles and says they are not used.
    #[test]
    fn a_corrupt_file_keeps_the_last_valid_profiles_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-profiles.json");
        let good = r#"{"profiles":{"a:one":{"type":"api_key","provider":"a","key":"sk-CANARY"}}}"#;
        let file = ProfileFile::new(path.clone());

        std::fs::write(&path, "{\"profiles\": {\n,").unwrap();
        assert!(file.load().profiles.is_empty());
        let problem = file.problem().expect("a problem");
        assert!(
            problem.starts_with(&format!("{}:2: not valid JSON", path.display())),
            "{problem}"
        );
        assert!(
            problem.contains("Its profiles are not used until it is fixed"),
            "{problem}"
        );

        std::fs::write(&path, good).unwrap();
        assert_eq!(file.load().profiles.len(), 1);
        assert!(file.problem().is_none(), "valid again");

        std::fs::write(&path, "{\"version\":1,\"profiles\":{").unwrap();
        assert_eq!(
            file.load().profiles.len(),
            1,
            "the last valid version stays"
        );
        let problem = file.problem().expect("a problem");
        assert!(
            problem.starts_with(&format!("{}:1: not valid JSON", path.display())),
            "{problem}"
        );
        assert!(
            problem.contains("the last valid version of its profiles stays in force"),
            "{problem}"
        );
        assert!(!problem.contains("CANARY"), "{problem}");
        assert!(!path.with_extension("json.bak").exists());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"version\":1,\"profiles\":{",
            "never touched"
        );
    }

    /// Regression (review): a corrupt read was cached by its stamp (mtime, size), so a
    /// fix of the same size within the same mtime tick was never seen.
    #[test]
    fn a_fix_of_a_corrupt_file_with_the_same_size_and_mtime_is_seen() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth-profiles.json");
        let valid =
            r#"{"profiles":{"anthropic:a":{"type":"api_key","provider":"anthropic","key":"k"}}}"#;
        let corrupt = valid.replace("}}}", "}} ");
        assert_eq!(valid.len(), corrupt.len());
        let mtime = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let put = |text: &str| {
            std::fs::write(&path, text).expect("write");
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(mtime))
                .expect("mtime");
        };
        let file = ProfileFile::new(path.clone());
        put(&corrupt);
        assert!(file.load().profiles.is_empty());
        assert!(file.problem().is_some());
        put(valid);
        assert!(file.load().profiles.contains_key("anthropic:a"));
        assert_eq!(file.problem(), None);
    }

    /// Regression (review): a process started with no file, then given a corrupt one,
    /// said "the last valid version of its profiles stays in force" (none was).
    #[test]
    fn a_corrupt_file_after_no_file_says_its_profiles_are_not_used() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("auth-profiles.json");
        let file = ProfileFile::new(path.clone());
        assert!(file.load().profiles.is_empty());
        std::fs::write(&path, "{\"profiles\": [").expect("write");
        file.load();
        let problem = file.problem().expect("a problem");
        assert!(
            problem.contains("are not used until it is fixed"),
            "{problem}"
        );
        assert!(!problem.contains("stays in force"), "{problem}");
        // Valid once, then corrupt: the last valid version stays in force.
        std::fs::write(
            &path,
            r#"{"profiles":{"anthropic:a":{"type":"api_key","provider":"anthropic","key":"k"}}}"#,
        )
        .expect("write");
        assert!(file.load().profiles.contains_key("anthropic:a"));
        std::fs::write(&path, "{").expect("write");
        assert!(file.load().profiles.contains_key("anthropic:a"));
        let problem = file.problem().expect("a problem");
        assert!(problem.contains("stays in force"), "{problem}");
    }
}
