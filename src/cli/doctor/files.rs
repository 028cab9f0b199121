//! Files and permissions: the state dir, `.env`, the config, the agent's credentials
//! file and directory, and state.db. Fixable findings carry the chmod `--fix` applies.

use super::Finding;
use super::checks::{euid, one_line, plain_secret_keys, plural, redact_values, stat};
use crate::auth::profiles::{ProfileStore, ProfileStoreError};
use crate::config::Config;
use crate::config::env::{EnvMap, load_env_file};
use crate::config::paths::Paths;
use crate::state::StateDb;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn state_dir(dir: &Path, r: &mut Vec<Finding>) {
    let shown = dir.display();
    match stat(dir) {
        Ok(None) => r.push(Finding::info(
            "state_dir_missing",
            format!("state dir {shown} does not exist yet; it is created (0700) on first run"),
        )),
        Err(e) => r.push(
            Finding::error(
                "state_dir_unreadable",
                format!("cannot inspect state dir {shown}: {e}"),
            )
            .fix("check the path (REMOTECLAW_STATE_DIR) and the permissions of its parents"),
        ),
        Ok(Some(st)) if !st.dir => r.push(
            Finding::error(
                "state_dir_not_dir",
                format!("state dir {shown} is not a directory"),
            )
            .fix("move the file away, or point REMOTECLAW_STATE_DIR at a directory"),
        ),
        Ok(Some(st)) => {
            let me = euid();
            let mut fine = true;
            if st.uid != me {
                fine = false;
                r.push(
                    Finding::error(
                        "state_dir_owner",
                        format!(
                            "state dir {shown} belongs to uid {}, but RemoteClaw runs as uid {me}: that user controls your credential files",
                            st.uid
                        ),
                    )
                    .fix(format!("chown -R {me} {shown}, or use a state dir of your own (REMOTECLAW_STATE_DIR)")),
                );
            }
            if st.mode & 0o077 != 0 {
                fine = false;
                r.push(
                    Finding::warning(
                        "state_dir_permissions",
                        format!(
                            "state dir {shown} is open to group or others (mode {:04o}); expected 0700",
                            st.mode
                        ),
                    )
                    .fix(format!("chmod 700 {shown}"))
                    .repair(dir, 0o700, true),
                );
            }
            if fine {
                r.push(Finding::ok(
                    "state_dir_ok",
                    format!("state dir {shown} is yours and private (0700)"),
                ));
            }
        }
    }
}

pub(super) fn env_file(path: &Path, env: &mut EnvMap, r: &mut Vec<Finding>) {
    let shown = path.display();
    let st = match stat(path) {
        Ok(None) => return,
        Ok(Some(st)) => st,
        Err(e) => {
            r.push(Finding::error(
                "env_file_unreadable",
                format!("cannot inspect {shown}: {e}"),
            ));
            return;
        }
    };
    let mut fine = true;
    if st.mode & 0o077 != 0 {
        fine = false;
        r.push(
            Finding::error(
                "env_file_permissions",
                format!(
                    "{shown} may hold API keys and is open to group or others (mode {:04o})",
                    st.mode
                ),
            )
            .fix(format!("chmod 600 {shown}"))
            .repair(path, 0o600, false),
        );
    }
    match load_env_file(path, env) {
        Ok(n) => {
            if fine {
                r.push(Finding::ok(
                    "env_file_ok",
                    format!(
                        "{shown}: {} loaded (variables already set in the environment win); mode {:04o}",
                        plural(n, "variable", "variables"),
                        st.mode
                    ),
                ));
            }
        }
        Err(e) => r.push(
            Finding::error("env_file_invalid", e.to_string()).fix(format!(
                "fix or remove the line in {shown}; every command refuses to start until it loads"
            )),
        ),
    }
}

pub(super) fn config_file(
    paths: &Paths,
    raw: Option<&toml::Table>,
    r: &mut Vec<Finding>,
) -> Option<Config> {
    let path = &paths.config_path;
    let shown = path.display();
    let config = match crate::config::load(path, paths.config_explicit) {
        Ok(loaded) if !loaded.exists => {
            r.push(
                Finding::info(
                    "config_missing",
                    format!(
                        "no config file at {shown}: defaults in use (model {})",
                        crate::catalog::DEFAULT_MODEL
                    ),
                )
                .fix(format!(
                    "`remoteclaw onboard` writes one; {}",
                    crate::config::EXAMPLE_HINT
                )),
            );
            return Some(loaded.config);
        }
        Ok(loaded) => {
            r.push(Finding::ok("config_ok", format!("config {shown} loads")));
            Some(loaded.config)
        }
        Err(e) => {
            let refuse = "a running gateway keeps its last valid config (and shows this as configError on /health); every other command refuses to start until it loads";
            let f = match e {
                crate::config::ConfigError::Invalid {
                    path,
                    line,
                    key,
                    message,
                    hint,
                } => {
                    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
                    let key = if key.is_empty() {
                        String::new()
                    } else {
                        format!(" (key `{key}`)")
                    };
                    let message = one_line(&redact_values(&message));
                    Finding::error(
                        "config_invalid",
                        format!("{}{at}: {message}{key}", path.display()),
                    )
                    .fix(format!("{hint}; {refuse}"))
                }
                e @ crate::config::ConfigError::Read { .. } => {
                    Finding::error("config_invalid", redact_values(&e.to_string())).fix(format!(
                        "make {shown} readable, or fix REMOTECLAW_CONFIG_PATH; {refuse}"
                    ))
                }
            };
            r.push(f);
            None
        }
    };
    match stat(path) {
        Ok(Some(st)) if !st.dir => {
            let secrets = raw.map(plain_secret_keys).unwrap_or_default();
            if st.mode & 0o022 != 0 {
                r.push(
                    Finding::warning(
                        "config_writable",
                        format!(
                            "config {shown} is writable by group or others (mode {:04o}): they could point RemoteClaw elsewhere",
                            st.mode
                        ),
                    )
                    .fix(format!("chmod go-w {shown}"))
                    .repair(path, st.mode & !0o022, false),
                );
            }
            if st.mode & 0o044 != 0 && !secrets.is_empty() {
                r.push(
                    Finding::error(
                        "config_secret_readable",
                        format!(
                            "config {shown} holds a secret ({}) and is readable by group or others (mode {:04o})",
                            secrets.join(", "),
                            st.mode
                        ),
                    )
                    .fix(format!(
                        "chmod 600 {shown}, or move the secret to {} or a SecretRef",
                        paths.env_file().display()
                    ))
                    .repair(path, 0o600, false),
                );
            }
        }
        _ => {}
    }
    config
}

/// Check the agent's credentials file and its directory; the parsed store, unless the
/// file cannot be read (a missing file is an empty store).
pub(super) fn auth_files(paths: &Paths, agent: &str, r: &mut Vec<Finding>) -> Option<ProfileStore> {
    let dir = paths.agent_dir(agent);
    let path = paths.auth_profiles(agent);
    let shown = path.display();
    let me = euid();
    if let Ok(Some(st)) = stat(&dir)
        && st.dir
        && st.mode & 0o077 != 0
    {
        let writable = st.mode & 0o022 != 0;
        let message = format!(
            "credentials directory {} is {} by group or others (mode {:04o}); expected 0700",
            dir.display(),
            if writable { "writable" } else { "readable" },
            st.mode
        );
        let f = if writable {
            Finding::error("auth_dir_permissions", message)
        } else {
            Finding::warning("auth_dir_permissions", message)
        };
        r.push(
            f.fix(format!("chmod 700 {}", dir.display()))
                .repair(&dir, 0o700, true),
        );
    }
    let st = match stat(&path) {
        Ok(None) => {
            r.push(
                Finding::info(
                    "auth_profiles_missing",
                    format!("no credentials file for agent {agent} ({shown}): environment keys and config only"),
                )
                .fix("`remoteclaw models auth paste-token --provider P` or `remoteclaw onboard` creates it"),
            );
            return Some(ProfileStore::default());
        }
        Ok(Some(st)) => st,
        Err(e) => {
            r.push(Finding::error(
                "auth_profiles_unreadable",
                format!("cannot inspect {shown}: {e}"),
            ));
            return None;
        }
    };
    let loaded = ProfileStore::load(&path);
    let corrupt = matches!(loaded, Err(ProfileStoreError::Corrupt { .. }));
    let mut fine = true;
    if st.uid != me {
        fine = false;
        r.push(
            Finding::error(
                "auth_profiles_owner",
                format!(
                    "{shown} belongs to uid {}, but RemoteClaw runs as uid {me}",
                    st.uid
                ),
            )
            .fix(format!("chown {me} {shown}")),
        );
    }
    if st.mode & 0o077 != 0 {
        fine = false;
        let f = Finding::error(
            "auth_profiles_permissions",
            format!(
                "{shown} holds credentials and is open to group or others (mode {:04o}); expected 0600",
                st.mode
            ),
        );
        r.push(if corrupt {
            f.fix(format!(
                "chmod 600 {shown} (--fix leaves a corrupt credentials file alone)"
            ))
        } else {
            f.fix(format!("chmod 600 {shown}"))
                .repair(&path, 0o600, false)
        });
    }
    let backup = PathBuf::from(format!("{}.bak", path.display()));
    if let Ok(Some(b)) = stat(&backup)
        && !b.dir
        && b.mode & 0o077 != 0
    {
        r.push(
            Finding::error(
                "auth_profiles_backup_permissions",
                format!(
                    "{} (the previous credentials) is open to group or others (mode {:04o})",
                    backup.display(),
                    b.mode
                ),
            )
            .fix(format!("chmod 600 {}", backup.display()))
            .repair(&backup, 0o600, false),
        );
    }
    match loaded {
        Ok(store) => {
            for w in &store.warnings {
                let fix = if w.starts_with("order.") {
                    "write each entry of the order as a profile id, or set it again: remoteclaw models auth order set --provider <provider> <profile-id>…"
                } else {
                    "fix the entry (type api_key | token | oauth, and a provider) or remove it; it is not used"
                };
                r.push(
                    Finding::warning(
                        "auth_profiles_dropped",
                        format!("{shown}: {}", redact_values(w)),
                    )
                    .fix(fix),
                );
            }
            for m in &store.malformed_order {
                r.push(
                    Finding::warning("auth_profiles_order_malformed", m.problem(&path))
                        .fix(m.fix()),
                );
            }
            if fine {
                r.push(Finding::ok(
                    "auth_profiles_ok",
                    format!(
                        "{shown}: {}, mode 0600",
                        plural(store.profiles.len(), "profile", "profiles")
                    ),
                ));
            }
            Some(store)
        }
        Err(e @ ProfileStoreError::Corrupt { .. }) => {
            r.push(
                Finding::error("auth_profiles_corrupt", redact_values(&e.to_string())).fix(format!(
                    "fix the JSON by hand, or restore {}.bak if it is good; RemoteClaw (and doctor --fix) never overwrite it",
                    shown
                )),
            );
            None
        }
        Err(e) => {
            r.push(Finding::error(
                "auth_profiles_unreadable",
                redact_values(&e.to_string()),
            ));
            None
        }
    }
}

/// Open the state database when it exists (an in-memory one otherwise, so the read-only
/// doctor does not create files).
pub(super) fn state_db(path: &Path, r: &mut Vec<Finding>) -> Option<Arc<StateDb>> {
    let shown = path.display();
    let memory = || StateDb::open(Path::new(":memory:")).ok();
    let st = match stat(path) {
        Ok(None) => {
            r.push(Finding::info(
                "state_db_missing",
                format!("{shown} does not exist yet; it is created (0600) on first run"),
            ));
            return memory();
        }
        Ok(Some(st)) => st,
        Err(e) => {
            r.push(Finding::error(
                "state_db_error",
                format!("cannot inspect {shown}: {e}"),
            ));
            return memory();
        }
    };
    let mut fine = true;
    if st.mode & 0o077 != 0 {
        fine = false;
        let mut f = Finding::warning(
            "state_db_permissions",
            format!(
                "{shown} (sessions, conversation history) is open to group or others (mode {:04o}); expected 0600",
                st.mode
            ),
        )
        .fix(format!("chmod 600 {shown}"))
        .repair(path, 0o600, false);
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(Some(s)) = stat(&side)
                && s.mode & 0o077 != 0
            {
                f = f.repair(&side, 0o600, false);
            }
        }
        r.push(f);
    }
    match StateDb::open(path) {
        Ok(db) => {
            if fine {
                let version = db.schema_version().unwrap_or_default();
                r.push(Finding::ok(
                    "state_db_ok",
                    format!("{shown} opens (schema version {version}), mode 0600"),
                ));
            }
            Some(db)
        }
        Err(e) => {
            r.push(
                Finding::error("state_db_error", e.to_string()).fix(format!(
                    "if the file is damaged, move it aside (mv {shown} {shown}.broken); a new one is created on the next start (sessions, pins and cooldowns start over)"
                )),
            );
            memory()
        }
    }
}
