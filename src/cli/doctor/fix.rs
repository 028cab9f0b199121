//! `doctor --fix`: back up, then tighten permissions. Nothing else is ever changed.
//!
//! 1. Gather the permission changes of every fixable finding; a path named by several
//!    findings gets the strictest mode (the bitwise AND of their targets).
//! 2. Create `<state>/backups/doctor-<epoch-ms>/` (0700) and copy every file that will be
//!    touched into it (0600, same path relative to the state dir; files outside it go to
//!    `external/`), plus `manifest.json` with each path's old and new mode. If any copy
//!    fails, nothing is changed.
//! 3. chmod each path and mark the findings it repairs as fixed.

use super::Finding;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

struct Planned {
    path: PathBuf,
    dir: bool,
    old_mode: u32,
    new_mode: u32,
    /// Where the copy went, relative to the backup directory.
    backup: Option<PathBuf>,
}

/// Apply the repairs of `findings`. `Ok(None)`: nothing to do; `Ok(Some(dir))`: the
/// backup directory; `Err`: the backup failed and nothing was changed.
pub fn apply(
    findings: &mut [Finding],
    state_dir: &Path,
    now_ms: i64,
) -> Result<Option<PathBuf>, String> {
    let mut targets: BTreeMap<PathBuf, (bool, u32)> = BTreeMap::new();
    for rep in findings
        .iter()
        .filter(|f| !f.fixed)
        .flat_map(|f| &f.repairs)
    {
        targets
            .entry(rep.path.clone())
            .and_modify(|(_, m)| *m &= rep.mode)
            .or_insert((rep.dir, rep.mode));
    }
    if targets.is_empty() {
        return Ok(None);
    }
    let backups = state_dir.join("backups");
    crate::config::paths::ensure_private_dir(&backups)
        .map_err(|e| format!("cannot create {}: {e}", backups.display()))?;
    let dir = create_unique_dir(&backups, now_ms)?;

    let mut planned = Vec::with_capacity(targets.len());
    for (i, (path, (is_dir, mode))) in targets.into_iter().enumerate() {
        let meta = std::fs::metadata(&path)
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        let backup = if is_dir {
            None
        } else {
            let rel = backup_name(&path, state_dir, i);
            copy_private(&path, &dir.join(&rel))?;
            Some(rel)
        };
        planned.push(Planned {
            path,
            dir: is_dir,
            old_mode: meta.mode() & 0o7777,
            new_mode: mode,
            backup,
        });
    }
    write_manifest(&dir, &planned, now_ms)?;

    let mut done: BTreeMap<PathBuf, Result<String, String>> = BTreeMap::new();
    for p in &planned {
        let result = if p.old_mode == p.new_mode {
            Ok(format!(
                "{} already has mode {:04o}",
                p.path.display(),
                p.new_mode
            ))
        } else {
            std::fs::set_permissions(&p.path, std::fs::Permissions::from_mode(p.new_mode))
                .map(|()| {
                    format!(
                        "chmod {:o} {} (was {:04o})",
                        p.new_mode,
                        p.path.display(),
                        p.old_mode
                    )
                })
                .map_err(|e| format!("chmod {} failed: {e}", p.path.display()))
        };
        done.insert(p.path.clone(), result);
    }
    for f in findings
        .iter_mut()
        .filter(|f| !f.fixed && !f.repairs.is_empty())
    {
        let results: Vec<&Result<String, String>> =
            f.repairs.iter().filter_map(|r| done.get(&r.path)).collect();
        let failed: Vec<&str> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(String::as_str))
            .collect();
        if failed.is_empty() && results.len() == f.repairs.len() {
            f.fixed = true;
            let notes: Vec<&str> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(String::as_str))
                .collect();
            f.note = Some(notes.join("; "));
        } else {
            f.note = Some(failed.join("; "));
        }
    }
    Ok(Some(dir))
}

/// `<backups>/doctor-<ms>` (or `-1`, `-2`, … if taken), created 0700.
fn create_unique_dir(backups: &Path, now_ms: i64) -> Result<PathBuf, String> {
    for n in 0..100 {
        let name = if n == 0 {
            format!("doctor-{now_ms}")
        } else {
            format!("doctor-{now_ms}-{n}")
        };
        let dir = backups.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create a backup directory in {}",
        backups.display()
    ))
}

/// The copy's path inside the backup directory.
fn backup_name(path: &Path, state_dir: &Path, i: usize) -> PathBuf {
    match path.strip_prefix(state_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => {
            let name = path
                .file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
            PathBuf::from("external").join(format!("{i}-{name}"))
        }
    }
}

/// Copy `src` to a new 0600 file `dest` (parents 0700) and fsync it. Unlike
/// `std::fs::copy`, the copy does not inherit the source's (too open) mode.
fn copy_private(src: &Path, dest: &Path) -> Result<(), String> {
    let fail =
        |action: &str, p: &Path, e: std::io::Error| format!("cannot {action} {}: {e}", p.display());
    if let Some(parent) = dest.parent() {
        crate::config::paths::ensure_private_dir(parent).map_err(|e| fail("create", parent, e))?;
    }
    let mut from = std::fs::File::open(src).map_err(|e| fail("read", src, e))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| fail("create", dest, e))?;
    std::io::copy(&mut from, &mut to).map_err(|e| fail("copy to", dest, e))?;
    to.sync_all().map_err(|e| fail("sync", dest, e))
}

fn write_manifest(dir: &Path, planned: &[Planned], now_ms: i64) -> Result<(), String> {
    let changes: Vec<_> = planned
        .iter()
        .map(|p| {
            json!({
                "path": p.path.display().to_string(),
                "kind": if p.dir { "dir" } else { "file" },
                "oldMode": format!("{:04o}", p.old_mode),
                "newMode": format!("{:04o}", p.new_mode),
                "backup": p.backup.as_ref().map(|b| b.display().to_string()),
            })
        })
        .collect();
    let doc = json!({ "createdAt": now_ms, "by": "remoteclaw doctor --fix", "changes": changes });
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        })
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn backs_up_then_chmods_and_marks_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let agent = state.join("agents/main/agent");
        std::fs::create_dir_all(&agent).unwrap();
        let file = agent.join("auth-profiles.json");
        std::fs::write(&file, "{\"x\": 1}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let outside = tmp.path().join("rc.toml");
        std::fs::write(&outside, "").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut findings = vec![
            Finding::error("a", "file").repair(&file, 0o600, false),
            Finding::warning("b", "dir").repair(&state, 0o700, true),
            Finding::warning("c", "cfg w").repair(&outside, 0o644, false),
            Finding::error("d", "cfg r").repair(&outside, 0o600, false),
            Finding::error("e", "not fixable"),
        ];
        let dir = apply(&mut findings, &state, 42).unwrap().unwrap();
        assert_eq!(dir, state.join("backups/doctor-42"));
        assert_eq!(mode(&dir), 0o700);
        let copy = dir.join("agents/main/agent/auth-profiles.json");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "{\"x\": 1}");
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(mode(&dir.join("external/0-rc.toml")), 0o600);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&outside), 0o600, "the strictest target wins");
        assert!(findings[..4].iter().all(|f| f.fixed));
        assert!(!findings[4].fixed);
        assert!(
            findings[0].note.as_deref().unwrap().contains("(was 0644)"),
            "{:?}",
            findings[0].note
        );
        let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        assert!(manifest.contains("\"oldMode\": \"0755\""), "{manifest}");

        // Nothing left to do: no new backup directory.
        assert_eq!(apply(&mut findings, &state, 43).unwrap(), None);
        let mut again = vec![Finding::error("a", "file").repair(&file, 0o600, false)];
        assert_eq!(
            apply(&mut again, &state, 42).unwrap().unwrap(),
            state.join("backups/doctor-42-1"),
            "same millisecond: a fresh directory"
        );
    }

    #[test]
    fn a_failed_backup_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let unreadable = state.join("gone.json");
        let present = state.join("here.json");
        std::fs::write(&present, "x").unwrap();
        std::fs::set_permissions(&present, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut findings = vec![
            Finding::error("a", "here").repair(&present, 0o600, false),
            Finding::error("b", "gone").repair(&unreadable, 0o600, false),
        ];
        let e = apply(&mut findings, &state, 1).unwrap_err();
        assert!(e.contains("gone.json"), "{e}");
        assert_eq!(mode(&present), 0o644);
        assert!(findings.iter().all(|f| !f.fixed));
    }
}
