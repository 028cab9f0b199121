//! Editing `remoteclaw.toml` from the CLI with `toml_edit`, so comments, ordering and
//! keys the command does not know survive. Every write is validated (the result must
//! load), keeps a backup of the previous file, and replaces the file atomically, under a
//! cross-process lock (`<config>.lock`, 0600, never deleted) taken before the file is
//! read: two CLI commands editing at once (`paste-token` in parallel) both land.

use std::io::Write;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{}: not valid TOML ({message}). Fix it by hand before running this command; nothing was changed.", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("the change would make {} invalid: {0}. Nothing was changed.", path.display())]
    Invalid {
        path: PathBuf,
        source: Box<super::ConfigError>,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Rejected(String),
    /// The config path is a dangling symbolic link: nothing is written.
    #[error(transparent)]
    Link(#[from] super::paths::LinkError),
}

/// Apply `edit` to the config document (an empty one when the file does not exist),
/// check the result loads, back up the old file to `<path>.bak`, and write atomically;
/// all of it under the config's lock, so a concurrent edit is read, not overwritten.
/// A config that is a symbolic link is edited at the file it points to (lock, backup and
/// temp file next to it), so the link stays a link.
pub fn update_config(
    path: &Path,
    edit: impl FnOnce(&mut DocumentMut) -> Result<(), String>,
) -> Result<(), EditError> {
    let target = super::paths::write_target(path)?;
    let path = target.as_path();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    super::paths::ensure_private_dir(dir).map_err(io_err(path, "create directory"))?;
    // Blocking: callers are CLI commands.
    let lock_path = super::paths::lock_path(path);
    let lock =
        super::paths::open_lock_file(&lock_path).map_err(|(_, e)| io_err(path, "lock")(e))?;
    lock.lock().map_err(io_err(path, "lock"))?;
    let result = update_locked(path, edit);
    let _ = lock.unlock();
    result
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> EditError {
    let path = path.to_path_buf();
    move |source| EditError::Io {
        path,
        action,
        source,
    }
}

fn update_locked(
    path: &Path,
    edit: impl FnOnce(&mut DocumentMut) -> Result<(), String>,
) -> Result<(), EditError> {
    let io = |action: &'static str| io_err(path, action);
    let old = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("read")(e)),
    };
    let mut doc: DocumentMut =
        old.as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|e: toml_edit::TomlError| EditError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
    edit(&mut doc).map_err(EditError::Rejected)?;
    let text = doc.to_string();
    super::parse(path, &text).map_err(|e| EditError::Invalid {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    if old.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    if let Some(old) = &old {
        write_atomic(&path.with_extension("toml.bak"), old.as_bytes())
            .map_err(io("write backup"))?;
    }
    write_atomic(path, text.as_bytes()).map_err(io("write"))
}

/// Write `bytes` to a 0600 temp file next to `path`, fsync, rename over `path`. When
/// `path` is a symbolic link, the file it points to is replaced and the link kept; a
/// dangling link is an error (nothing written).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let target = super::paths::write_target(path)?;
    let path = target.as_path();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The table at `path` (e.g. `["auth", "profiles", "anthropic:manual"]`), created as a
/// regular (non-inline) table where missing.
pub fn table_mut<'a>(doc: &'a mut DocumentMut, path: &[&str]) -> Result<&'a mut Table, String> {
    let mut table = doc.as_table_mut();
    for (i, key) in path.iter().enumerate() {
        let item = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(i + 1 < path.len());
            Item::Table(t)
        });
        table = item
            .as_table_mut()
            .ok_or_else(|| format!("`{}` is not a table", path[..=i].join(".")))?;
    }
    Ok(table)
}

/// Declare an auth profile (`[auth.profiles."<id>"] provider = … mode = …`).
pub fn declare_profile(
    doc: &mut DocumentMut,
    id: &str,
    provider: &str,
    mode: &str,
) -> Result<(), String> {
    let t = table_mut(doc, &["auth", "profiles", id])?;
    set_value(t, "provider", provider);
    set_value(t, "mode", mode);
    Ok(())
}

/// `t[key] = v`, keeping what surrounded the old value on its line (the spacing and a
/// trailing `# comment`), so an edited line keeps its comment.
pub fn set_value(t: &mut Table, key: &str, v: impl Into<toml_edit::Value>) {
    let mut new: toml_edit::Value = v.into();
    if let Some(old) = t.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    t[key] = Item::Value(new);
}

/// Remove an auth profile's declaration (`[auth.profiles."<id>"]`) and its entries in
/// every `auth.order` list. Returns whether anything changed.
pub fn undeclare_profile(doc: &mut DocumentMut, id: &str) -> bool {
    let Some(auth) = doc.get_mut("auth").and_then(|a| a.as_table_like_mut()) else {
        return false;
    };
    let removed = auth
        .get_mut("profiles")
        .and_then(|p| p.as_table_like_mut())
        .and_then(|p| p.remove(id));
    let mut changed = removed.is_some();
    // The comment lines above the removed table belong to what follows it (often the
    // file's own header): hand them on to the next table instead of dropping them.
    let orphaned = removed.as_ref().and_then(|item| {
        let t = item.as_table()?;
        let prefix = t.decor().prefix()?.as_str()?.to_string();
        prefix
            .lines()
            .any(|l| l.trim_start().starts_with('#'))
            .then(|| (t.position(), prefix))
    });
    if let Some(order) = auth.get_mut("order").and_then(|o| o.as_table_like_mut()) {
        for (_, list) in order.iter_mut() {
            if let Some(arr) = list.as_array_mut() {
                let before = arr.len();
                arr.retain(|v| v.as_str() != Some(id));
                changed |= arr.len() != before;
            }
        }
    }
    if let Some((position, prefix)) = orphaned {
        hand_on_comment(doc, position, &prefix);
    }
    changed
}

/// Prepend `prefix` (comment lines) to the table that follows `position` in the file,
/// or to the document's end when none does.
fn hand_on_comment(doc: &mut DocumentMut, position: Option<usize>, prefix: &str) {
    fn next_table(
        t: &Table,
        after: usize,
        path: &mut Vec<String>,
        best: &mut Option<(usize, Vec<String>)>,
    ) {
        for (k, item) in t.iter() {
            if let Some(child) = item.as_table() {
                path.push(k.to_string());
                if let Some(p) = child
                    .position()
                    .filter(|p| *p > after && !child.is_implicit())
                    && best.as_ref().is_none_or(|(b, _)| p < *b)
                {
                    *best = Some((p, path.clone()));
                }
                next_table(child, after, path, best);
                path.pop();
            }
        }
    }
    let mut best = None;
    if let Some(after) = position {
        next_table(doc.as_table(), after, &mut Vec::new(), &mut best);
    }
    let target = best.and_then(|(_, path)| {
        let mut t = doc.as_table_mut();
        for k in &path {
            t = t.get_mut(k)?.as_table_mut()?;
        }
        Some(t)
    });
    match target {
        Some(t) => {
            let own = t
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_string();
            t.decor_mut().set_prefix(format!("{prefix}{own}"));
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing(format!("{trailing}\n{}", prefix.trim_start_matches('\n')));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_comments_and_unknown_order_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remoteclaw.toml");
        let original = "# my gateway\n[gateway]\nport = 1234 # fixed port\n";
        std::fs::write(&path, original).unwrap();
        update_config(&path, |doc| {
            declare_profile(doc, "anthropic:manual", "anthropic", "token")
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# my gateway\n[gateway]\nport = 1234 # fixed port\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "[auth.profiles.\"anthropic:manual\"]\nprovider = \"anthropic\"\nmode = \"token\""
            ),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(path.with_extension("toml.bak")).unwrap(),
            original
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn concurrent_edits_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remoteclaw.toml");
        std::fs::write(&path, "# operator's notes\n").unwrap();
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    update_config(&path, |doc| {
                        // Widen the read-modify-write window.
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        declare_profile(doc, &format!("openai:p{i}"), "openai", "api_key")
                    })
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for i in 0..12 {
            assert!(
                text.contains(&format!("[auth.profiles.\"openai:p{i}\"]")),
                "{text}"
            );
        }
        assert!(text.contains("# operator's notes\n"), "{text}");
    }

    #[test]
    fn removing_the_first_profile_keeps_the_comment_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remoteclaw.toml");
        std::fs::write(
            &path,
            "# keep me\n[auth.profiles.\"openai:a\"]\nprovider = \"openai\"\nmode = \"api_key\"\n\n[auth.profiles.\"openai:b\"]\nprovider = \"openai\"\nmode = \"api_key\"\n",
        )
        .unwrap();
        update_config(&path, |doc| {
            assert!(undeclare_profile(doc, "openai:a"));
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# keep me\n") && !text.contains("openai:a"),
            "{text}"
        );
        assert!(text.contains("[auth.profiles.\"openai:b\"]"), "{text}");
        // The last one too: the comment goes to the end rather than away.
        update_config(&path, |doc| {
            assert!(undeclare_profile(doc, "openai:b"));
            Ok(())
        })
        .unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("# keep me")
        );
    }

    #[test]
    fn an_edited_line_keeps_its_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remoteclaw.toml");
        std::fs::write(
            &path,
            "[auth.profiles.\"anthropic:work\"]\nprovider = \"anthropic\"\nmode = \"api_key\"   # keep\n",
        )
        .unwrap();
        update_config(&path, |doc| {
            declare_profile(doc, "anthropic:work", "anthropic", "token")
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("mode = \"token\"   # keep\n"), "{text}");
    }

    #[test]
    fn refuses_changes_that_would_not_load_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remoteclaw.toml");
        let e = update_config(&path, |doc| {
            doc["gateway"] = toml_edit::table();
            doc["gateway"]["prot"] = toml_edit::value(1);
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("would make"), "{e}");
        assert!(!path.exists());
        std::fs::write(&path, "[gateway\n").unwrap();
        assert!(matches!(
            update_config(&path, |_| Ok(())),
            Err(EditError::Parse { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[gateway\n");
    }
}
