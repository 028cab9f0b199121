//! Ownership and permission checks for secret files and exec commands (DESIGN §5):
//! files and commands must not be group/world writable, secret files must not be
//! group/world readable. The checks are pure functions of a `Stat`, so unit tests can
//! feed owners and modes the test process could not create.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// The effective uid of this process (the user secret files must belong to).
pub(super) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// What the checks look at in a stat result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub len: u64,
}

impl Stat {
    pub fn of(meta: &Metadata) -> Stat {
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        Stat {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            len: meta.len(),
        }
    }
}

/// The message for a symlink that the provider does not accept.
pub(super) fn symlink_refused(alias: &str, path: &str, key: &str) -> String {
    format!(
        "{path} is a symlink; point `{key}` at the real file, or set allowSymlink = true in [secrets.providers.{alias}]"
    )
}

/// A secret file (already opened, `st` from the open handle): a regular file owned by
/// `euid`, no permission bits for group or others, at most `max_bytes` long.
pub(super) fn secret_file(
    alias: &str,
    path: &str,
    st: Stat,
    euid: u32,
    max_bytes: u64,
) -> Result<(), String> {
    match st.kind {
        Kind::File => {}
        Kind::Dir => {
            return Err(format!(
                "{path} is a directory; point path in [secrets.providers.{alias}] at the secrets file"
            ));
        }
        Kind::Symlink => return Err(symlink_refused(alias, path, "path")),
        Kind::Other => {
            return Err(format!(
                "{path} is not a regular file; point path in [secrets.providers.{alias}] at the secrets file"
            ));
        }
    }
    if st.uid != euid {
        return Err(format!(
            "{path} is owned by uid {}, but RemoteClaw runs as uid {euid}; run chown {euid} {path}",
            st.uid
        ));
    }
    // DESIGN §8 wording: `file /x is readable by group/others (0644): chmod 600 /x`.
    let exposure = if st.mode & 0o022 != 0 {
        Some("is writable by")
    } else if st.mode & 0o044 != 0 {
        Some("is readable by")
    } else if st.mode & 0o077 != 0 {
        Some("grants permissions to")
    } else {
        None
    };
    if let Some(what) = exposure {
        return Err(format!(
            "file {path} {what} group/others ({:04o}): chmod 600 {path}",
            st.mode
        ));
    }
    if st.len > max_bytes {
        return Err(too_large(alias, path, st.len, max_bytes));
    }
    Ok(())
}

pub(super) fn too_large(alias: &str, path: &str, len: u64, max_bytes: u64) -> String {
    format!(
        "{path} is {len} bytes, more than maxBytes = {max_bytes}; shrink the file or raise maxBytes in [secrets.providers.{alias}]"
    )
}

/// An exec command: `link` is its `lstat`, `target` its `stat`. Not a symlink unless
/// allowed; a regular, executable file owned by `euid` or root and not writable by
/// group or others.
pub(super) fn command(
    alias: &str,
    path: &str,
    link: Stat,
    target: Stat,
    allow_symlink: bool,
    euid: u32,
) -> Result<(), String> {
    if link.kind == Kind::Symlink && !allow_symlink {
        return Err(symlink_refused(alias, path, "command"));
    }
    if target.kind != Kind::File {
        return Err(format!(
            "{path} is not a regular file; point command in [secrets.providers.{alias}] at the program"
        ));
    }
    if target.uid != euid && target.uid != 0 {
        return Err(format!(
            "{path} is owned by uid {}; it must belong to root or to the user RemoteClaw runs as (uid {euid}); run chown {euid} {path}",
            target.uid
        ));
    }
    if target.mode & 0o022 != 0 {
        return Err(format!(
            "command {path} is writable by group/others ({:04o}): chmod go-w {path}",
            target.mode
        ));
    }
    if target.mode & 0o111 == 0 {
        return Err(format!(
            "{path} is not executable (mode {:04o}); run chmod 700 {path}",
            target.mode
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kind: Kind, mode: u32, uid: u32, len: u64) -> Stat {
        Stat {
            kind,
            mode,
            uid,
            len,
        }
    }

    #[test]
    fn secret_file_modes() {
        let ok = |mode| secret_file("f", "/s.json", st(Kind::File, mode, 1000, 10), 1000, 100);
        assert_eq!(ok(0o600), Ok(()));
        assert_eq!(ok(0o400), Ok(()));
        for bad in [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o666] {
            let e = ok(bad).unwrap_err();
            assert!(e.contains("chmod 600 /s.json"), "{bad:o}: {e}");
        }
        assert_eq!(
            ok(0o644).unwrap_err(),
            "file /s.json is readable by group/others (0644): chmod 600 /s.json"
        );
        assert_eq!(
            ok(0o602).unwrap_err(),
            "file /s.json is writable by group/others (0602): chmod 600 /s.json"
        );
        assert_eq!(
            ok(0o610).unwrap_err(),
            "file /s.json grants permissions to group/others (0610): chmod 600 /s.json"
        );
    }

    #[test]
    fn secret_file_owner_kind_and_size() {
        let e = secret_file("f", "/s", st(Kind::File, 0o600, 0, 1), 1000, 100).unwrap_err();
        assert!(
            e.contains("owned by uid 0") && e.contains("chown 1000 /s"),
            "{e}"
        );
        let e = secret_file("f", "/s", st(Kind::Dir, 0o700, 1000, 1), 1000, 100).unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let e = secret_file("f", "/s", st(Kind::Other, 0o600, 1000, 1), 1000, 100).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = secret_file("f", "/s", st(Kind::File, 0o600, 1000, 101), 1000, 100).unwrap_err();
        assert!(e.contains("maxBytes = 100"), "{e}");
        assert_eq!(
            secret_file("f", "/s", st(Kind::File, 0o600, 1000, 100), 1000, 100),
            Ok(())
        );
    }

    #[test]
    fn command_checks() {
        let file = |mode, uid| st(Kind::File, mode, uid, 1);
        let link = st(Kind::Symlink, 0o777, 1000, 1);
        assert_eq!(
            command("v", "/c", file(0o700, 1000), file(0o700, 1000), false, 1000),
            Ok(())
        );
        // Root-owned tools are fine (package-installed).
        assert_eq!(
            command("v", "/c", file(0o755, 0), file(0o755, 0), false, 1000),
            Ok(())
        );
        let e = command("v", "/c", file(0o755, 7), file(0o755, 7), false, 1000).unwrap_err();
        assert!(e.contains("owned by uid 7"), "{e}");
        let e = command("v", "/c", file(0o775, 0), file(0o775, 0), false, 1000).unwrap_err();
        assert!(e.contains("writable"), "{e}");
        let e = command("v", "/c", file(0o757, 0), file(0o757, 0), false, 1000).unwrap_err();
        assert!(e.contains("writable"), "{e}");
        let e = command("v", "/c", file(0o600, 1000), file(0o600, 1000), false, 1000).unwrap_err();
        assert!(e.contains("not executable"), "{e}");
        let e = command("v", "/c", link, file(0o755, 0), false, 1000).unwrap_err();
        assert!(e.contains("allowSymlink = true"), "{e}");
        assert_eq!(command("v", "/c", link, file(0o755, 0), true, 1000), Ok(()));
        let e = command("v", "/c", link, st(Kind::Dir, 0o755, 0, 1), true, 1000).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
