//! Where RemoteClaw keeps its files (DESIGN §2): the state dir, the config file, the
//! `.env` file, per-agent credential stores and the runtime database.

use super::env::EnvMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
    /// True when `REMOTECLAW_CONFIG_PATH` named the file (then it must exist).
    pub config_explicit: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot find the RemoteClaw state directory: HOME is not set. Set REMOTECLAW_STATE_DIR (or HOME)."
)]
pub struct NoHome;

impl Paths {
    /// `REMOTECLAW_STATE_DIR` or `~/.remoteclaw`; `REMOTECLAW_CONFIG_PATH` or
    /// `<state>/remoteclaw.toml`. Blank variables count as unset.
    pub fn from_env(env: &EnvMap) -> Result<Paths, NoHome> {
        let state_dir = match env.get_nonblank("REMOTECLAW_STATE_DIR") {
            Some(d) => expand_home(d, env),
            None => PathBuf::from(env.get_nonblank("HOME").ok_or(NoHome)?).join(".remoteclaw"),
        };
        Ok(Self::with_state_dir(state_dir, env))
    }

    fn with_state_dir(state_dir: PathBuf, env: &EnvMap) -> Paths {
        match env.get_nonblank("REMOTECLAW_CONFIG_PATH") {
            Some(p) => Paths {
                config_path: expand_home(p, env),
                state_dir,
                config_explicit: true,
            },
            None => Paths {
                config_path: state_dir.join("remoteclaw.toml"),
                state_dir,
                config_explicit: false,
            },
        }
    }

    /// The same paths after `.env` was loaded (it may set `REMOTECLAW_CONFIG_PATH`).
    pub fn refresh_config_path(&self, env: &EnvMap) -> Paths {
        Self::with_state_dir(self.state_dir.clone(), env)
    }

    pub fn env_file(&self) -> PathBuf {
        self.state_dir.join(".env")
    }

    pub fn agent_dir(&self, agent_id: &str) -> PathBuf {
        self.state_dir.join("agents").join(agent_id).join("agent")
    }

    pub fn auth_profiles(&self, agent_id: &str) -> PathBuf {
        self.agent_dir(agent_id).join("auth-profiles.json")
    }

    pub fn state_db(&self) -> PathBuf {
        self.state_dir.join("state.db")
    }
}

fn expand_home(p: &str, env: &EnvMap) -> PathBuf {
    match (p.strip_prefix("~/"), env.get_nonblank("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Create a directory (and parents) with mode 0700 if it does not exist.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Why a write through a symbolic link cannot go ahead.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The link points at nothing: writing would replace the link with a regular file
    /// (and every other link to the intended file would miss the change).
    #[error(
        "{} is a symbolic link to {}, which does not exist. Create that file (or point the link at the real file, or replace the link with a regular file) and run the command again; nothing was written.",
        link.display(),
        target.display()
    )]
    Dangling { link: PathBuf, target: PathBuf },
    #[error("cannot resolve the symbolic link {}: {source}; nothing was written", link.display())]
    Io {
        link: PathBuf,
        source: std::io::Error,
    },
}

impl From<LinkError> for std::io::Error {
    fn from(e: LinkError) -> std::io::Error {
        let kind = match &e {
            LinkError::Dangling { .. } => std::io::ErrorKind::NotFound,
            LinkError::Io { source, .. } => source.kind(),
        };
        std::io::Error::new(kind, e)
    }
}

/// The file a write to `path` must replace: `path` itself, or — when `path` is a symbolic
/// link — the file it finally points to (`canonicalize`). Writers take their lock
/// (`<target>.lock`) and do the temp + fsync + rename next to the target, so the link
/// survives the write and every link to one file shares one lock (two state dirs whose
/// auth-profiles.json point at one shared file serialize their OAuth refreshes).
pub fn write_target(path: &Path) -> Result<PathBuf, LinkError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) => Ok(target),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let first = std::fs::read_link(path).map_err(|source| LinkError::Io {
                    link: path.to_path_buf(),
                    source,
                })?;
                let target = match path.parent() {
                    Some(dir) if first.is_relative() => dir.join(first),
                    _ => first,
                };
                Err(LinkError::Dangling {
                    link: path.to_path_buf(),
                    target,
                })
            }
            Err(source) => Err(LinkError::Io {
                link: path.to_path_buf(),
                source,
            }),
        },
        // Not a link, missing, or not inspectable: the write itself reports the latter.
        _ => Ok(path.to_path_buf()),
    }
}

/// `<path>.lock`: the file whose `flock` guards `path` across processes.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Open `lock_path` for locking, creating it 0600 when missing (it is never deleted: a
/// lock file that comes and goes lets two processes hold "the" lock at once). The
/// writers of auth-profiles.json and of remoteclaw.toml lock it before they read. `Err`
/// names the step that failed.
pub fn open_lock_file(lock_path: &Path) -> Result<std::fs::File, (&'static str, std::io::Error)> {
    let mut create = std::fs::OpenOptions::new();
    create.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        create.mode(0o600);
    }
    match create.open(lock_path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(lock_path)
            .map_err(|e| ("open lock file", e)),
        Err(e) => Err(("create lock file", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let env = EnvMap::from_pairs([("HOME", "/home/u")]);
        let p = Paths::from_env(&env).expect("home");
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.remoteclaw"));
        assert_eq!(
            p.config_path,
            PathBuf::from("/home/u/.remoteclaw/remoteclaw.toml")
        );
        assert!(!p.config_explicit);
        assert_eq!(
            p.auth_profiles("main"),
            PathBuf::from("/home/u/.remoteclaw/agents/main/agent/auth-profiles.json")
        );

        let env = EnvMap::from_pairs([
            ("HOME", "/home/u"),
            ("REMOTECLAW_STATE_DIR", "/srv/rc"),
            ("REMOTECLAW_CONFIG_PATH", "~/rc.toml"),
        ]);
        let p = Paths::from_env(&env).expect("paths");
        assert_eq!(p.state_dir, PathBuf::from("/srv/rc"));
        assert_eq!(p.config_path, PathBuf::from("/home/u/rc.toml"));
        assert!(p.config_explicit);
        assert_eq!(p.state_db(), PathBuf::from("/srv/rc/state.db"));
    }

    #[test]
    fn write_target_follows_links_to_the_final_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("real.json");
        std::fs::write(&real, "{}").expect("write");
        let hop = tmp.path().join("hop.json");
        std::os::unix::fs::symlink("real.json", &hop).expect("symlink");
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&hop, &link).expect("symlink");
        let canonical = std::fs::canonicalize(&real).expect("canonicalize");
        assert_eq!(write_target(&link).expect("target"), canonical);
        assert_eq!(write_target(&hop).expect("target"), canonical);
        // A regular file and a missing one are their own target.
        assert_eq!(write_target(&real).expect("target"), real);
        let missing = tmp.path().join("missing.json");
        assert_eq!(write_target(&missing).expect("target"), missing);

        let dangling = tmp.path().join("dangling.json");
        std::os::unix::fs::symlink("gone/x.json", &dangling).expect("symlink");
        let err = write_target(&dangling).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LinkError::Dangling { .. }), "{msg}");
        assert!(msg.contains(&dangling.display().to_string()), "{msg}");
        assert!(
            msg.contains(&tmp.path().join("gone/x.json").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("nothing was written"), "{msg}");
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let err = Paths::from_env(&EnvMap::default()).unwrap_err();
        assert!(err.to_string().contains("REMOTECLAW_STATE_DIR"));
    }
}
