//! src/auth/profile_writer.rs — every write to auth-profiles.json: under a cross-process lock,
//! re-reading the file under the lock, atomic (temp 0600 + fsync + rename + dir fsync), with a
//! backup, never over a corrupt file.
//!
//! One write, in order (DESIGN §2, §8):
//! 0. a path that is a symbolic link stands for the file it finally points to: steps 1–7
//!    happen there, so the link survives and all links to one file share its lock;
//!    a dangling link is refused;
//! 1. create the parent directory (0700) if it is missing;
//! 2. open `<path>.lock` (created 0600, never deleted) and take an exclusive `flock` on it,
//!    held until the write is durable — writers in other processes (and other threads) queue;
//! 3. read the file *under the lock*: missing → `{"version":1,"profiles":{}}`; not valid
//!    JSON, not an object, a `profiles`/`order` that is not an object, or a schema version
//!    other than 1 → [`WriteError::Corrupt`] and nothing is written;
//! 4. run the edit on that document; unknown top-level keys and unknown profile fields are
//!    carried through untouched;
//! 5. check the result (object, `version` 1, `profiles` an object, `order` an object, and
//!    [`ProfileStore::parse`] accepts it) — otherwise [`WriteError::Rejected`];
//! 6. if the document did not change, stop (no write, the backup stays the previous version);
//! 7. copy the current bytes to `<path>.bak`, then write the new document; both atomically:
//!    `.<name>.tmp.<pid>.<n>` created 0600 with `create_new`, write, `fsync`, rename over the
//!    target, `fsync` the directory. A failed step removes its temp file.
//!
//! No profile content ever reaches a log line or an error message: errors name a path, a
//! line and an action, and JSON syntax errors carry only serde_json's category text.

use crate::auth::profiles::{ProfileStore, ProfileStoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The only schema version this writer reads and writes.
const SCHEMA_VERSION: u64 = 1;

/// [`WriteError::Corrupt`] for `path`, naming its backup only when there is one.
fn corrupt_error(path: &Path, line: usize, message: String) -> WriteError {
    let bak = with_suffix(path, ".bak");
    WriteError::Corrupt {
        path: path.to_path_buf(),
        line,
        message,
        backup: bak.is_file().then_some(bak),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The current file is not valid JSON (or not an auth-profiles document): it is never
    /// overwritten.
    #[error(
        "{}:{line}: {message}. The file was left untouched; fix it by hand{}.",
        path.display(),
        match backup {
            Some(b) => format!(" or restore {}", b.display()),
            None => " (there is no backup to restore)".to_string(),
        }
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
        /// `<path>.bak`, when there is one.
        backup: Option<PathBuf>,
    },
    /// A schema version this RemoteClaw does not know (written by a newer one): never
    /// rewritten as version 1.
    #[error(
        "{}: schema version {version} (this RemoteClaw reads and writes version 1). The file was left untouched; run the RemoteClaw that wrote it, or edit it with that version",
        path.display()
    )]
    Unsupported { path: PathBuf, version: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// The edit function refused (its message is shown as is).
    #[error("{0}")]
    Rejected(String),
    /// The path is a symbolic link that cannot be followed (dangling): nothing is written,
    /// the link is never replaced by a regular file.
    #[error(transparent)]
    Link(#[from] crate::config::paths::LinkError),
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io {
        path,
        action,
        source,
    }
}

/// Apply `edit` to the file's JSON document (a fresh `{"version":1,"profiles":{}}` when the
/// file does not exist) and write the result. The closure runs while the lock is held, on the
/// content read under the lock, so concurrent writers in other processes lose nothing.
/// Unknown top-level keys (e.g. "usageStats", "lastGood") and unknown profile fields are
/// preserved as they are.
pub fn update(
    path: &Path,
    edit: impl FnOnce(&mut Value) -> Result<(), String>,
) -> Result<(), WriteError> {
    hold(path)?.update(edit)
}

/// The cross-process lock on auth-profiles.json, held until dropped. A caller that must
/// read, do something slow (an OAuth token request) and then write, all as one step that no
/// other process interleaves with, holds it across the three (`ProfileStore::load`, the
/// request, [`Held::update`]). Blocking: take it on a blocking thread.
#[derive(Debug)]
pub struct Held {
    lock: File,
    path: PathBuf,
}

/// Take the lock on `path` (creating its directory, 0700, and `<path>.lock`, 0600).
///
/// When `path` is a symbolic link, everything happens at the file it finally points to
/// ([`crate::config::paths::write_target`]): the lock is `<target>.lock`, the temp file,
/// rename and backup sit next to the target, and the link stays a link. A dangling link
/// is [`WriteError::Link`].
pub fn hold(path: &Path) -> Result<Held, WriteError> {
    if path.file_name().is_none() {
        return Err(WriteError::Io {
            path: path.to_path_buf(),
            action: "use as a credentials file",
            source: std::io::Error::new(ErrorKind::InvalidInput, "not a file path"),
        });
    }
    let target = crate::config::paths::write_target(path)?;
    let path = target.as_path();
    let dir = parent_dir(path);
    crate::config::paths::ensure_private_dir(dir).map_err(io_err(dir, "create directory"))?;
    let lock_path = crate::config::paths::lock_path(path);
    let lock = crate::config::paths::open_lock_file(&lock_path)
        .map_err(|(action, e)| io_err(&lock_path, action)(e))?;
    lock.lock().map_err(io_err(&lock_path, "lock"))?;
    Ok(Held {
        lock,
        path: path.to_path_buf(),
    })
}

impl Held {
    /// [`update`] while this lock is held.
    pub fn update(
        &self,
        edit: impl FnOnce(&mut Value) -> Result<(), String>,
    ) -> Result<(), WriteError> {
        update_locked(&self.path, parent_dir(&self.path), edit)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Closing the handle releases the lock too; unlocking first makes the hand-over
        // explicit.
        let _ = self.lock.unlock();
    }
}

/// Insert or replace one profile object (e.g.
/// `{"type":"token","provider":"anthropic","token":"...","expires":...}`).
///
/// The id must be non-empty without surrounding whitespace, and the profile must be one the
/// reader keeps (an object with a known `type` and a `provider`); otherwise `Rejected`.
pub fn put_profile(path: &Path, id: &str, profile: Value) -> Result<(), WriteError> {
    check_id(id)?;
    check_profile(id, &profile)?;
    update(path, |doc| {
        profiles_mut(doc)?.insert(id.to_string(), profile);
        Ok(())
    })
}

/// Remove a profile (and its id from every order list). Returns whether it existed.
///
/// An order list that this removal leaves empty is removed, so the provider falls back to
/// the configured order instead of "no profiles at all".
pub fn remove_profile(path: &Path, id: &str) -> Result<bool, WriteError> {
    let mut existed = false;
    update(path, |doc| {
        existed = profiles_mut(doc)?.remove(id).is_some();
        if let Some(order) = doc.get_mut("order").and_then(Value::as_object_mut) {
            let mut emptied = Vec::new();
            for (provider, list) in order.iter_mut() {
                if let Some(ids) = list.as_array_mut() {
                    let before = ids.len();
                    ids.retain(|e| e.as_str().map(str::trim) != Some(id));
                    if ids.is_empty() && before > 0 {
                        emptied.push(provider.clone());
                    }
                }
            }
            for provider in emptied {
                order.remove(&provider);
            }
        }
        Ok(())
    })?;
    Ok(existed)
}

/// Set (Some) or clear (None) `order[provider]`.
///
/// The provider key is written normalized (`crate::catalog::normalize_provider`) and any
/// other spelling of the same provider is replaced. Ids are trimmed and de-duplicated;
/// an empty id is `Rejected`. `Some(vec![])` stores an explicit empty order.
pub fn set_order(
    path: &Path,
    provider: &str,
    order: Option<Vec<String>>,
) -> Result<(), WriteError> {
    let key = crate::catalog::normalize_provider(provider);
    if key.is_empty() {
        return Err(WriteError::Rejected(
            "the provider of an auth order must not be empty".into(),
        ));
    }
    let ids = match order {
        None => None,
        Some(list) => {
            let mut ids: Vec<String> = Vec::with_capacity(list.len());
            for raw in list {
                let id = raw.trim();
                if id.is_empty() {
                    return Err(WriteError::Rejected(format!(
                        "the auth order for {key} contains an empty profile id"
                    )));
                }
                if !ids.iter().any(|s| s == id) {
                    ids.push(id.to_string());
                }
            }
            Some(ids)
        }
    };
    update(path, |doc| {
        let obj = doc
            .as_object_mut()
            .ok_or_else(|| "the document is not a JSON object".to_string())?;
        let order = obj
            .entry("order")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| "\"order\" is not a JSON object".to_string())?;
        order.retain(|k, _| crate::catalog::normalize_provider(k) != key);
        if let Some(ids) = ids {
            order.insert(
                key.clone(),
                Value::Array(ids.into_iter().map(Value::String).collect()),
            );
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Under the lock

fn update_locked(
    path: &Path,
    dir: &Path,
    edit: impl FnOnce(&mut Value) -> Result<(), String>,
) -> Result<(), WriteError> {
    let current = read_current(path)?;
    let mut doc = match &current {
        Some((_, value)) => value.clone(),
        None => default_document(),
    };
    normalize_read(path, &mut doc)?;

    edit(&mut doc).map_err(WriteError::Rejected)?;
    check_edited(&mut doc).map_err(|m| {
        WriteError::Rejected(format!(
            "the edited credentials are invalid ({m}); nothing was written"
        ))
    })?;
    if let Some((_, before)) = &current
        && *before == doc
    {
        return Ok(());
    }
    let text = render(&doc)?;
    // Whatever the reader would refuse, the writer refuses too. (serde's message is not
    // shown: a type error can quote a value.)
    if ProfileStore::parse(path, &text).is_err() {
        return Err(WriteError::Rejected(
            "the edited credentials would not be readable; nothing was written".into(),
        ));
    }

    remove_stale_temps(dir, path);
    if let Some((bytes, _)) = &current {
        write_atomic(&with_suffix(path, ".bak"), bytes)?;
    }
    write_atomic(path, text.as_bytes())?;
    tracing::debug!(path = %path.display(), "credentials file written");
    Ok(())
}

fn default_document() -> Value {
    serde_json::json!({ "version": SCHEMA_VERSION, "profiles": {} })
}

/// Read the current file. `None` when it does not exist; `Corrupt` when it is not an
/// auth-profiles document this writer may replace.
fn read_current(path: &Path) -> Result<Option<(Vec<u8>, Value)>, WriteError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "read")(e)),
    };
    let corrupt = |line: usize, message: String| corrupt_error(path, line, message);
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        corrupt(line, "not valid UTF-8".into())
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // Syntax/EOF messages ("expected value", "trailing comma", ...) quote no content.
        let full = e.to_string();
        let what = full.split(" at line").next().unwrap_or_default();
        corrupt(e.line(), format!("not valid JSON ({what})"))
    })?;
    if let Some(problem) = shape_problem(&value) {
        // The reader's error gives the line of the problem; its message is not used because
        // serde quotes the offending value (which could be a secret). A document that passes
        // `shape_problem` always passes `ProfileStore::parse` (it needs exactly these
        // objects), and the edited result is parsed again before anything is written.
        let line = match ProfileStore::parse(path, text) {
            Err(ProfileStoreError::Corrupt { line, .. }) => line,
            _ => 1,
        };
        return Err(corrupt(line, problem));
    }
    Ok(Some((bytes, value)))
}

/// What makes a document unusable as auth-profiles.json (mirrors what `ProfileStore::parse`
/// needs, plus "the top level is an object"). Messages quote no values.
fn shape_problem(doc: &Value) -> Option<String> {
    let Some(obj) = doc.as_object() else {
        return Some("the top level is not a JSON object".into());
    };
    for key in ["profiles", "order"] {
        if obj.get(key).is_some_and(|v| !v.is_object()) {
            return Some(format!("\"{key}\" is not a JSON object"));
        }
    }
    None
}

/// Schema version 1, or absent (then 1). Anything else is refused rather than downgraded.
fn version_ok(v: Option<&Value>) -> Result<(), String> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => Ok(()),
        Some(Value::Number(n)) if n.as_f64() == Some(SCHEMA_VERSION as f64) => Ok(()),
        Some(Value::Number(n)) => Err(format!(
            "unsupported schema version {n} (this RemoteClaw reads and writes version {SCHEMA_VERSION})"
        )),
        Some(_) => Err("\"version\" is not a number".into()),
    }
}

/// The document as read, made ready for an edit: `version` 1 and a `profiles` object.
fn normalize_read(path: &Path, doc: &mut Value) -> Result<(), WriteError> {
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| corrupt_error(path, 1, "the top level is not a JSON object".into()))?;
    if let Some(Value::Number(n)) = obj.get("version")
        && n.as_f64() != Some(SCHEMA_VERSION as f64)
    {
        return Err(WriteError::Unsupported {
            path: path.to_path_buf(),
            version: n.to_string(),
        });
    }
    version_ok(obj.get("version")).map_err(|message| corrupt_error(path, 1, message))?;
    obj.insert("version".into(), Value::from(SCHEMA_VERSION));
    obj.entry("profiles")
        .or_insert_with(|| Value::Object(Map::new()));
    Ok(())
}

/// The document after the edit: still an object, `version` 1, `profiles` an object.
fn check_edited(doc: &mut Value) -> Result<(), String> {
    if let Some(problem) = shape_problem(doc) {
        return Err(problem);
    }
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| "the top level is not a JSON object".to_string())?;
    version_ok(obj.get("version"))?;
    obj.insert("version".into(), Value::from(SCHEMA_VERSION));
    obj.entry("profiles")
        .or_insert_with(|| Value::Object(Map::new()));
    Ok(())
}

fn profiles_mut(doc: &mut Value) -> Result<&mut Map<String, Value>, String> {
    doc.get_mut("profiles")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| "\"profiles\" is not a JSON object".to_string())
}

fn check_id(id: &str) -> Result<(), WriteError> {
    if id.trim().is_empty() {
        return Err(WriteError::Rejected(
            "a profile id must not be empty".into(),
        ));
    }
    if id.trim() != id || id.chars().any(char::is_control) {
        return Err(WriteError::Rejected(format!(
            "profile id {id:?} has surrounding whitespace or control characters"
        )));
    }
    Ok(())
}

/// A profile the reader would drop (not an object, unknown `type`, no `provider`) is refused.
fn check_profile(id: &str, profile: &Value) -> Result<(), WriteError> {
    if !profile.is_object() {
        return Err(WriteError::Rejected(format!(
            "profile \"{id}\" must be a JSON object"
        )));
    }
    let mut profiles = Map::new();
    profiles.insert(id.to_string(), profile.clone());
    let probe = Value::Object(Map::from_iter([(
        "profiles".to_string(),
        Value::Object(profiles),
    )]));
    match ProfileStore::parse(Path::new("(new profile)"), &probe.to_string()) {
        Ok(store) if store.profiles.contains_key(id) => Ok(()),
        // Warnings name the id and the type, never a secret.
        Ok(store) => Err(WriteError::Rejected(if store.warnings.is_empty() {
            format!("profile \"{id}\" is not a usable credential profile")
        } else {
            store.warnings.join("; ")
        })),
        Err(_) => Err(WriteError::Rejected(format!(
            "profile \"{id}\" is not a usable credential profile"
        ))),
    }
}

/// Pretty JSON with a trailing newline; `version`, `profiles`, `order` first, then the
/// other top-level keys (serde_json's map is sorted, which would put `version` last).
fn render(doc: &Value) -> Result<String, WriteError> {
    #[derive(Serialize)]
    struct Ordered<'a> {
        version: &'a Value,
        profiles: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        order: Option<&'a Value>,
        #[serde(flatten)]
        rest: BTreeMap<&'a str, &'a Value>,
    }
    let obj = doc
        .as_object()
        .ok_or_else(|| WriteError::Rejected("the top level is not a JSON object".into()))?;
    let empty = Value::Object(Map::new());
    let version = Value::from(SCHEMA_VERSION);
    let ordered = Ordered {
        version: &version,
        profiles: obj.get("profiles").unwrap_or(&empty),
        order: obj.get("order"),
        rest: obj
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "version" | "profiles" | "order"))
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&ordered)
        .map_err(|e| WriteError::Rejected(format!("cannot serialize the credentials ({e})")))?;
    text.push('\n');
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// Files

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.<name>.tmp.` — the prefix of every temp file for `target`.
fn temp_prefix(target: &Path) -> OsString {
    let mut s = OsString::from(".");
    s.push(target.file_name().unwrap_or_default());
    s.push(".tmp.");
    s
}

/// Create `.<name>.tmp.<pid>.<counter>` next to `target`, mode 0600, never reusing a file.
fn create_temp(target: &Path) -> Result<(PathBuf, File), WriteError> {
    let dir = parent_dir(target);
    let pid = std::process::id();
    let mut attempts = 0;
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = temp_prefix(target);
        name.push(format!("{pid}.{n}"));
        let tmp = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => {
                // The umask can only clear bits; make it exactly 0600 anyway.
                if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io_err(&tmp, "set permissions of temp file")(e));
                }
                return Ok((tmp, file));
            }
            // A leftover of a crashed process that had our pid: take the next number.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
            Err(e) => return Err(io_err(&tmp, "create temp file")(e)),
        }
    }
}

/// Replace `target` with `bytes`: temp 0600 + write + fsync + rename + directory fsync.
fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let (tmp, mut file) = create_temp(target)?;
    let written = (|| {
        file.write_all(bytes)
            .map_err(io_err(&tmp, "write temp file"))?;
        file.sync_all().map_err(io_err(&tmp, "sync temp file"))?;
        drop(file);
        std::fs::rename(&tmp, target).map_err(io_err(target, "rename"))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_dir(target))
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        Ok(()) => Ok(()),
        // Some filesystems cannot fsync a directory; the rename itself has happened.
        Err(e) if matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::InvalidInput) => Ok(()),
        Err(e) => Err(io_err(dir, "sync directory")(e)),
    }
}

/// Temp files of this file and of its backup that a crashed writer left behind. Every
/// writer creates them only while holding the lock, which we hold now, so any that exist
/// are stale. Best effort.
fn remove_stale_temps(dir: &Path, path: &Path) {
    let prefixes = [temp_prefix(path), temp_prefix(&with_suffix(path, ".bak"))];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = prefixes
            .iter()
            .any(|p| name.as_encoded_bytes().starts_with(p.as_encoded_bytes()));
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let p = entry.path();
            match std::fs::remove_file(&p) {
                Ok(()) => tracing::warn!(path = %p.display(), "removed a stale temp file"),
                Err(e) => {
                    tracing::debug!(path = %p.display(), error = %e, "cannot remove stale temp file")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").mode() & 0o777
    }

    fn read_json(p: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
    }

    fn key(k: &str) -> Value {
        json!({ "type": "api_key", "provider": "anthropic", "key": k })
    }

    #[test]
    fn missing_file_starts_from_the_default_document() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("agents/main/agent");
        let path = dir.join("auth-profiles.json");
        put_profile(&path, "anthropic:work", key("sk-1")).expect("put");
        let doc = read_json(&path);
        assert_eq!(
            doc,
            json!({ "version": 1, "profiles": { "anthropic:work": key("sk-1") } })
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("{\n  \"version\": 1,\n  \"profiles\""),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert!(!with_suffix(&path, ".bak").exists(), "no backup of nothing");

        // An edit that does nothing still creates the default document.
        let other = dir.join("other.json");
        update(&other, |_| Ok(())).expect("update");
        assert_eq!(read_json(&other), json!({ "version": 1, "profiles": {} }));
    }

    #[test]
    fn modes_are_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state/agents/main/agent");
        let path = dir.join("auth-profiles.json");
        put_profile(&path, "a:1", key("sk-1")).expect("put");
        put_profile(&path, "a:2", key("sk-2")).expect("put");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("state")), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&with_suffix(&path, ".bak")), 0o600);
        assert_eq!(mode(&with_suffix(&path, ".lock")), 0o600);

        // A world-readable file from elsewhere is tightened by the next write.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        put_profile(&path, "a:3", key("sk-3")).expect("put");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&with_suffix(&path, ".bak")), 0o600);
    }

    #[test]
    fn unknown_keys_and_fields_are_preserved() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        let original = json!({
            "version": 1,
            "profiles": {
                "anthropic:work": { "type": "api_key", "provider": "anthropic", "key": "sk-a",
                                    "label": "work", "extra": { "nested": [1, 2.5, null] } },
                "legacy:thing": { "type": "password", "provider": "legacy", "secret": "x" }
            },
            "order": { "anthropic": ["anthropic:work"] },
            "usageStats": { "anthropic:work": { "lastUsed": 1767225600000u64, "errorCount": 0 } },
            "lastGood": { "anthropic": "anthropic:work" }
        });
        std::fs::write(&path, serde_json::to_vec(&original).expect("ser")).expect("write");
        put_profile(
            &path,
            "openai:x",
            json!({ "type": "api_key", "provider": "openai", "key": "sk-o" }),
        )
        .expect("put");
        let mut expected = original.clone();
        expected["profiles"]["openai:x"] =
            json!({ "type": "api_key", "provider": "openai", "key": "sk-o" });
        assert_eq!(read_json(&path), expected);
    }

    #[test]
    fn missing_version_becomes_1_and_other_versions_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::fs::write(&path, r#"{"profiles":{}}"#).expect("write");
        put_profile(&path, "a:1", key("k")).expect("put");
        assert_eq!(read_json(&path)["version"], json!(1));

        std::fs::write(&path, r#"{"version":2,"profiles":{}}"#).expect("write");
        let err = put_profile(&path, "a:1", key("k")).unwrap_err();
        assert!(matches!(err, WriteError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("schema version 2"), "{err}");
        assert!(
            !err.to_string().contains(".bak"),
            "no backup to restore: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            r#"{"version":2,"profiles":{}}"#
        );
    }

    #[test]
    fn corrupt_file_is_never_touched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        for (content, line) in [
            (
                "{\n \"profiles\": {\"a:1\": {\"key\": \"sk-canary\"},\n}",
                3,
            ),
            ("[{\"profiles\": {}}]", 1),
            ("{\n\"version\": 1,\n\"profiles\": \"sk-canary\"}", 3),
            ("{\"profiles\": {}, \"order\": [\"sk-canary\"]}", 1),
            ("", 1),
        ] {
            std::fs::write(&path, content).expect("write");
            let before = std::fs::read(&path).expect("read");
            let err = put_profile(&path, "a:2", key("sk-new")).unwrap_err();
            let msg = err.to_string();
            let WriteError::Corrupt { line: got, .. } = &err else {
                panic!("not Corrupt: {msg}");
            };
            assert_eq!(*got, line, "{msg}");
            assert!(msg.contains(&format!("{}:{line}", path.display())), "{msg}");
            // No backup exists here: the message does not send anyone to one.
            assert!(msg.contains("there is no backup to restore"), "{msg}");
            assert!(!msg.contains("canary"), "{msg}");
            assert_eq!(std::fs::read(&path).expect("read"), before);
            assert!(!with_suffix(&path, ".bak").exists());
        }

        // With a backup from an earlier write, the message names it.
        let other = tmp.path().join("other.json");
        put_profile(&other, "a:1", key("k1")).expect("put");
        put_profile(&other, "a:2", key("k2")).expect("put");
        std::fs::write(&other, "{").expect("write");
        let msg = put_profile(&other, "a:3", key("k3"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("restore {}.bak", other.display())),
            "{msg}"
        );
        std::fs::remove_file(&other).expect("rm");
        std::fs::remove_file(with_suffix(&other, ".bak")).expect("rm");
        let _ = std::fs::remove_file(with_suffix(&other, ".lock"));

        std::fs::write(&path, b"{\"profiles\":\n{\"a\": \"\xff\"}}").expect("write");
        let err = remove_profile(&path, "a").unwrap_err();
        assert!(matches!(err, WriteError::Corrupt { line: 2, .. }), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"{\"profiles\":\n{\"a\": \"\xff\"}}"
        );
        assert!(!with_suffix(&path, ".bak").exists());
        assert!(
            std::fs::read_dir(tmp.path())
                .expect("ls")
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().contains(".tmp."))
        );
    }

    #[test]
    fn backup_is_the_previous_version() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        let bak = with_suffix(&path, ".bak");
        // A hand-written first version: the backup keeps its exact bytes.
        let hand = "{ \"version\": 1, \"profiles\": {} }  \n";
        std::fs::write(&path, hand).expect("write");
        put_profile(&path, "a:1", key("sk-1")).expect("put");
        assert_eq!(std::fs::read_to_string(&bak).expect("bak"), hand);

        let v2 = std::fs::read(&path).expect("read");
        put_profile(&path, "a:2", key("sk-2")).expect("put");
        assert_eq!(std::fs::read(&bak).expect("bak"), v2);
        let v3 = std::fs::read(&path).expect("read");

        // A no-op edit writes nothing: the backup stays the real previous version.
        assert!(!remove_profile(&path, "a:missing").expect("remove"));
        assert_eq!(std::fs::read(&path).expect("read"), v3);
        assert_eq!(std::fs::read(&bak).expect("bak"), v2);
    }

    #[test]
    fn rejected_edit_leaves_the_file_untouched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        put_profile(&path, "a:1", key("sk-1")).expect("put");
        let before = std::fs::read(&path).expect("read");

        let err = update(&path, |doc| {
            doc["profiles"]["a:2"] = key("sk-2");
            Err("no thanks".into())
        })
        .unwrap_err();
        assert!(matches!(&err, WriteError::Rejected(m) if m == "no thanks"));
        assert_eq!(err.to_string(), "no thanks");

        for bad in [
            json!([]),
            json!({ "profiles": [] }),
            json!({ "version": 3, "profiles": {} }),
        ] {
            let err = update(&path, |doc| {
                *doc = bad;
                Ok(())
            })
            .unwrap_err();
            assert!(matches!(err, WriteError::Rejected(_)), "{err}");
        }
        let err = put_profile(
            &path,
            "a:2",
            json!({ "type": "password", "provider": "a", "key": "sk-x" }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown type"), "{err}");
        assert!(!err.to_string().contains("sk-x"), "{err}");
        assert!(put_profile(&path, "a:2", json!({ "type": "api_key", "key": "sk-x" })).is_err());
        assert!(put_profile(&path, "a:2", json!("sk-x")).is_err());
        assert!(put_profile(&path, " a:2", key("sk-x")).is_err());
        assert!(put_profile(&path, "", key("sk-x")).is_err());

        assert_eq!(std::fs::read(&path).expect("read"), before);
        assert!(!with_suffix(&path, ".bak").exists());
    }

    #[test]
    fn remove_profile_cleans_order_lists() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&json!({
                "version": 1,
                "profiles": { "a:1": key("sk-1"), "a:2": key("sk-2") },
                "order": { "anthropic": ["a:1", " a:2 "], "other": ["a:2"], "keep": ["a:1"] }
            }))
            .expect("ser"),
        )
        .expect("write");
        assert!(remove_profile(&path, "a:2").expect("remove"));
        let doc = read_json(&path);
        assert_eq!(doc["profiles"], json!({ "a:1": key("sk-1") }));
        assert_eq!(
            doc["order"],
            json!({ "anthropic": ["a:1"], "keep": ["a:1"] })
        );
        assert!(!remove_profile(&path, "a:2").expect("remove again"));
    }

    #[test]
    fn set_order_sets_and_clears() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::fs::write(
            &path,
            r#"{"version":1,"profiles":{},"order":{"Anthropic":["x"]}}"#,
        )
        .expect("write");
        set_order(
            &path,
            "anthropic",
            Some(vec!["a:2".into(), " a:1".into(), "a:2".into()]),
        )
        .expect("set");
        assert_eq!(
            read_json(&path)["order"],
            json!({ "anthropic": ["a:2", "a:1"] })
        );
        let store = ProfileStore::load(&path).expect("load");
        assert_eq!(store.order["anthropic"], ["a:2", "a:1"]);

        set_order(&path, "gemini", Some(vec![])).expect("set");
        assert_eq!(read_json(&path)["order"]["google"], json!([]));
        set_order(&path, "anthropic", None).expect("clear");
        assert_eq!(read_json(&path)["order"], json!({ "google": [] }));
        assert!(set_order(&path, "anthropic", Some(vec![" ".into()])).is_err());
    }

    #[test]
    fn stale_temp_files_are_swept_and_failures_leave_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::fs::write(tmp.path().join(".auth-profiles.json.tmp.99999.0"), "x").expect("write");
        std::fs::write(tmp.path().join(".auth-profiles.json.bak.tmp.99999.1"), "x").expect("write");
        std::fs::write(tmp.path().join(".unrelated.tmp.1.1"), "x").expect("write");
        put_profile(&path, "a:1", key("sk-1")).expect("put");
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".unrelated.tmp.1.1",
                "auth-profiles.json",
                "auth-profiles.json.lock"
            ]
        );

        // The target is a directory: the rename fails, the temp file is removed.
        let as_dir = tmp.path().join("d.json");
        std::fs::create_dir(&as_dir).expect("mkdir");
        let err = write_atomic(&as_dir, b"{}").unwrap_err();
        assert!(err.to_string().starts_with("cannot rename"), "{err}");
        assert!(
            std::fs::read_dir(tmp.path())
                .expect("ls")
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(".d.json.tmp."))
        );
    }

    #[test]
    fn a_symlinked_file_is_written_where_it_points_and_stays_a_link() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let shared_dir = tmp.path().join("shared");
        std::fs::create_dir(&shared_dir).expect("mkdir");
        let shared = shared_dir.join("auth-profiles.json");
        put_profile(&shared, "a:1", key("sk-1")).expect("put");
        let shared = std::fs::canonicalize(&shared).expect("canonicalize");
        // Two agents' files link to it: one absolute, one relative link.
        let link_a = tmp.path().join("a/agents/main/agent/auth-profiles.json");
        let link_b = tmp.path().join("b/agents/main/agent/auth-profiles.json");
        for link in [&link_a, &link_b] {
            std::fs::create_dir_all(link.parent().expect("dir")).expect("mkdir");
        }
        std::os::unix::fs::symlink(&shared, &link_a).expect("symlink");
        std::os::unix::fs::symlink("../../../../shared/auth-profiles.json", &link_b)
            .expect("symlink");

        put_profile(&link_a, "a:2", key("sk-2")).expect("put through a");
        remove_profile(&link_b, "a:1").expect("remove through b");
        for link in [&link_a, &link_b] {
            let meta = std::fs::symlink_metadata(link).expect("lstat");
            assert!(
                meta.file_type().is_symlink(),
                "{} is still a link",
                link.display()
            );
            assert!(
                !with_suffix(link, ".lock").exists(),
                "no lock beside the link"
            );
            assert!(
                !with_suffix(link, ".bak").exists(),
                "no backup beside the link"
            );
        }
        let doc = read_json(&shared);
        assert_eq!(doc["profiles"], json!({ "a:2": key("sk-2") }));
        assert_eq!(read_json(&link_a), doc);
        assert_eq!(mode(&shared), 0o600);
        assert!(with_suffix(&shared, ".bak").is_file());

        // Both links take the one lock, the target's: held through one, it is taken.
        let held = hold(&link_b).expect("hold through b");
        let lock = File::open(with_suffix(&shared, ".lock")).expect("open lock");
        assert!(
            matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            "the lock taken through one link is the target's lock"
        );
        drop(held);
        lock.try_lock().expect("free once released");
        drop(lock);

        // A dangling link is refused, named, and left a link.
        let dangling = tmp.path().join("c/auth-profiles.json");
        std::fs::create_dir_all(dangling.parent().expect("dir")).expect("mkdir");
        std::os::unix::fs::symlink(tmp.path().join("nowhere/x.json"), &dangling).expect("symlink");
        let err = put_profile(&dangling, "a:3", key("sk-3")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, WriteError::Link(_)), "{msg}");
        assert!(msg.contains("is a symbolic link to"), "{msg}");
        assert!(msg.contains("nowhere/x.json"), "{msg}");
        assert!(
            std::fs::symlink_metadata(&dangling)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert!(!tmp.path().join("nowhere").exists());
    }

    #[test]
    fn threads_in_one_process_also_serialize() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("auth-profiles.json");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for n in 0..25 {
                        put_profile(path, &format!("t{t}:{n}"), key("k")).expect("put");
                    }
                });
            }
        });
        let store = ProfileStore::load(&path).expect("load");
        assert_eq!(store.profiles.len(), 100);
    }
}
