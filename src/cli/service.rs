//! `remoteclaw gateway install | uninstall | status` (DESIGN §11 "Service"): a systemd user
//! unit (Linux) or a launchd agent (macOS) that runs `<this binary> gateway` with
//! `REMOTECLAW_STATE_DIR` set, plus an hourly credential check (`models status --check`).
//!
//! The templates live in `config/` and are compiled in; `{{BIN}}` and `{{STATE_DIR}}` are
//! replaced with the paths escaped for the file they go into (systemd quoting and `%`
//! specifiers, XML for the plists). Everything here is blocking (files, `systemctl`), so
//! `run` moves it to the blocking pool.
//!
//! `REMOTECLAW_SYSTEMCTL` / `REMOTECLAW_LAUNCHCTL` name the program used instead of
//! `systemctl` / `launchctl`. They exist for the tests (a fake that records its arguments,
//! or a missing program for "no user systemd"); operators have no reason to set them.

use crate::config::edit::write_atomic;
use crate::config::env::EnvMap;
use crate::config::paths::{Paths, ensure_private_dir};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

/// Test-only override of the `systemctl` program (see the module docs).
pub const SYSTEMCTL_ENV: &str = "REMOTECLAW_SYSTEMCTL";
/// Test-only override of the `launchctl` program (see the module docs).
pub const LAUNCHCTL_ENV: &str = "REMOTECLAW_LAUNCHCTL";

const GATEWAY_UNIT: &str = "remoteclaw-gateway.service";
const CHECK_UNIT: &str = "remoteclaw-auth-check.service";
const CHECK_TIMER: &str = "remoteclaw-auth-check.timer";
const GATEWAY_LABEL: &str = "ai.remoteclaw.gateway";
const CHECK_LABEL: &str = "ai.remoteclaw.auth-check";

const GATEWAY_UNIT_TEMPLATE: &str = include_str!("../../config/remoteclaw-gateway.service");
const CHECK_UNIT_TEMPLATE: &str = include_str!("../../config/remoteclaw-auth-check.service");
const CHECK_TIMER_TEMPLATE: &str = include_str!("../../config/remoteclaw-auth-check.timer");
const GATEWAY_PLIST_TEMPLATE: &str = include_str!("../../config/ai.remoteclaw.gateway.plist");
const CHECK_PLIST_TEMPLATE: &str = include_str!("../../config/ai.remoteclaw.auth-check.plist");

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write and enable the gateway service and the hourly credential check (systemd user
    /// units on Linux, launchd agents on macOS).
    Install(DryRunArgs),
    /// Stop, disable and remove what `install` wrote.
    Uninstall(DryRunArgs),
    /// Print `not installed`, `running` or `installed, not running`.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Accepted like install's and uninstall's: status changes nothing either way.
    #[arg(long)]
    pub dry_run: bool,
    /// `{"state": …, "installed": bool, "running": bool, "unit": "<path>"}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// Print what would be written or removed; write nothing and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which service manager the files are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    pub fn current() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// One file `install` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// The unit name (systemd) or label (launchd).
    pub name: &'static str,
    pub path: PathBuf,
    pub content: String,
}

/// What `install` writes, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub manager: Manager,
    pub dir: PathBuf,
    /// The gateway's file first.
    pub files: Vec<UnitFile>,
}

/// A path as UTF-8 text without control characters (neither a unit file nor a plist can
/// carry those).
fn path_text<'a>(what: &str, p: &'a Path) -> anyhow::Result<&'a str> {
    let s = p
        .to_str()
        .with_context(|| format!("the {what} {} is not valid UTF-8", p.display()))?;
    if s.chars().any(char::is_control) {
        anyhow::bail!(
            "the {what} {} contains a control character (such as a newline); a service file cannot name it. Move it to a plain path.",
            p.display()
        );
    }
    Ok(s)
}

/// `s` as one word of a systemd unit setting: `\` and `"` escaped, `%` doubled (specifiers),
/// quoted when it holds whitespace or quotes. (`$` needs no escaping: systemd expands
/// variables neither in `Environment=` nor in the executable's path.)
fn systemd_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        format!("\"{out}\"")
    } else {
        out
    }
}

/// A systemd unit from its template, line by line: in `ExecStart=` `{{BIN}}` becomes one
/// (quoted when needed) word; an `Environment=` assignment is one word; elsewhere (e.g.
/// `EnvironmentFile=`, which takes the rest of the line as a path) only `%` is escaped.
/// With `config` (the operator named the config file with `REMOTECLAW_CONFIG_PATH`), an
/// `Environment=REMOTECLAW_CONFIG_PATH=…` line follows the state directory's, so the
/// service reads the same file as the command that installed it.
pub fn render_systemd(template: &str, bin: &str, state_dir: &str, config: Option<&str>) -> String {
    let plain_state = state_dir.replace('%', "%%");
    let mut out = String::with_capacity(template.len() + 2 * bin.len());
    for line in template.lines() {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            out.push_str("ExecStart=");
            out.push_str(&cmd.replace("{{BIN}}", &systemd_word(bin)));
        } else if let Some(assignment) = line.strip_prefix("Environment=") {
            out.push_str("Environment=");
            out.push_str(&systemd_word(
                &assignment.replace("{{STATE_DIR}}", state_dir),
            ));
            if let Some(config) = config.filter(|_| assignment.starts_with("REMOTECLAW_STATE_DIR="))
            {
                out.push_str("\nEnvironment=");
                out.push_str(&systemd_word(&format!("REMOTECLAW_CONFIG_PATH={config}")));
            }
        } else {
            out.push_str(&line.replace("{{STATE_DIR}}", &plain_state));
        }
        out.push('\n');
    }
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A launchd plist from its template: the paths XML-escaped; with `config`, a
/// `REMOTECLAW_CONFIG_PATH` entry after `REMOTECLAW_STATE_DIR` in `EnvironmentVariables`.
pub fn render_plist(template: &str, bin: &str, state_dir: &str, config: Option<&str>) -> String {
    const STATE_ENTRY: &str =
        "<key>REMOTECLAW_STATE_DIR</key>\n    <string>{{STATE_DIR}}</string>\n";
    let with_config = match config {
        Some(config) => template.replace(
            STATE_ENTRY,
            &format!(
                "{STATE_ENTRY}    <key>REMOTECLAW_CONFIG_PATH</key>\n    <string>{}</string>\n",
                xml_escape(config)
            ),
        ),
        None => template.to_string(),
    };
    with_config
        .replace("{{BIN}}", &xml_escape(bin))
        .replace("{{STATE_DIR}}", &xml_escape(state_dir))
}

/// Where the service files go: `$XDG_CONFIG_HOME/systemd/user` (default
/// `~/.config/systemd/user`) or `~/Library/LaunchAgents`.
pub fn unit_dir(manager: Manager, env: &EnvMap) -> anyhow::Result<PathBuf> {
    let home = || {
        env.get_nonblank("HOME").map(PathBuf::from).context(
            "HOME is not set: cannot tell where the user's service files go. Set HOME and run it again.",
        )
    };
    Ok(match manager {
        Manager::Systemd => {
            let config = match env
                .get_nonblank("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
            {
                Some(dir) => dir,
                None => home()?.join(".config"),
            };
            config.join("systemd").join("user")
        }
        Manager::Launchd => home()?.join("Library").join("LaunchAgents"),
    })
}

/// A service file: unit name (systemd) or label (launchd), file name, template.
struct Spec {
    name: &'static str,
    file_name: &'static str,
    template: &'static str,
}

/// The files of each manager, the gateway's first.
fn specs(manager: Manager) -> &'static [Spec] {
    const SYSTEMD: &[Spec] = &[
        Spec {
            name: GATEWAY_UNIT,
            file_name: GATEWAY_UNIT,
            template: GATEWAY_UNIT_TEMPLATE,
        },
        Spec {
            name: CHECK_UNIT,
            file_name: CHECK_UNIT,
            template: CHECK_UNIT_TEMPLATE,
        },
        Spec {
            name: CHECK_TIMER,
            file_name: CHECK_TIMER,
            template: CHECK_TIMER_TEMPLATE,
        },
    ];
    const LAUNCHD: &[Spec] = &[
        Spec {
            name: GATEWAY_LABEL,
            file_name: "ai.remoteclaw.gateway.plist",
            template: GATEWAY_PLIST_TEMPLATE,
        },
        Spec {
            name: CHECK_LABEL,
            file_name: "ai.remoteclaw.auth-check.plist",
            template: CHECK_PLIST_TEMPLATE,
        },
    ];
    match manager {
        Manager::Systemd => SYSTEMD,
        Manager::Launchd => LAUNCHD,
    }
}

/// The files for `bin` (absolute) and `state_dir` (absolute) in `dir`; `config` (absolute)
/// when the operator named the config file.
pub fn plan(
    manager: Manager,
    dir: &Path,
    bin: &Path,
    state_dir: &Path,
    config: Option<&Path>,
) -> anyhow::Result<Plan> {
    let bin = path_text("binary path", bin)?;
    let state = path_text("state directory", state_dir)?;
    let config = config.map(|c| path_text("config file", c)).transpose()?;
    if manager == Manager::Systemd && bin.contains(['"', '\'', '\\']) {
        anyhow::bail!(
            "systemd cannot run a program whose path contains a quote or a backslash: {bin}. Move the binary to a plain path and run `gateway install` from there."
        );
    }
    let files = specs(manager)
        .iter()
        .map(|spec| UnitFile {
            name: spec.name,
            path: dir.join(spec.file_name),
            content: match manager {
                Manager::Systemd => render_systemd(spec.template, bin, state, config),
                Manager::Launchd => render_plist(spec.template, bin, state, config),
            },
        })
        .collect();
    Ok(Plan {
        manager,
        dir: dir.to_path_buf(),
        files,
    })
}

/// The names and paths of the files `install` writes to `dir`.
fn installed_paths(manager: Manager, dir: &Path) -> Vec<(&'static str, PathBuf)> {
    specs(manager)
        .iter()
        .map(|spec| (spec.name, dir.join(spec.file_name)))
        .collect()
}

/// The service manager's command-line tool (`systemctl --user …` or `launchctl …`).
struct Ctl {
    program: OsString,
    manager: Manager,
}

struct CtlOutput {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ctl {
    fn new(manager: Manager, env: &EnvMap) -> Ctl {
        let (var, default) = match manager {
            Manager::Systemd => (SYSTEMCTL_ENV, "systemctl"),
            Manager::Launchd => (LAUNCHCTL_ENV, "launchctl"),
        };
        Ctl {
            program: env.get_nonblank(var).unwrap_or(default).into(),
            manager,
        }
    }

    fn name(&self) -> &'static str {
        match self.manager {
            Manager::Systemd => "systemctl --user",
            Manager::Launchd => "launchctl",
        }
    }

    /// Run with `args` (after `--user` for systemctl); `None` when it cannot be started.
    fn run(&self, args: &[&str]) -> Option<CtlOutput> {
        let mut cmd = std::process::Command::new(&self.program);
        if self.manager == Manager::Systemd {
            cmd.arg("--user");
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .ok()?;
        Some(CtlOutput {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Run and fail with the tool's own message.
    fn must(&self, args: &[&str]) -> anyhow::Result<()> {
        let shown = format!("{} {}", self.name(), args.join(" "));
        match self.run(args) {
            None => anyhow::bail!("cannot run `{shown}`"),
            Some(o) if !o.ok => anyhow::bail!("`{shown}` failed: {}", o.stderr),
            Some(_) => Ok(()),
        }
    }

    /// Whether the user's service manager answers (a user systemd instance, or a launchd
    /// GUI domain).
    fn reachable(&self) -> bool {
        let probe: Vec<String> = match self.manager {
            Manager::Systemd => vec!["show-environment".into()],
            Manager::Launchd => vec!["print".into(), gui_domain()],
        };
        let args: Vec<&str> = probe.iter().map(String::as_str).collect();
        self.run(&args).is_some_and(|o| o.ok)
    }
}

fn gui_domain() -> String {
    format!("gui/{}", rustix::process::getuid().as_raw())
}

/// What the operator types to enable the service when `install` could not.
fn enable_hint(plan: &Plan) -> String {
    match plan.manager {
        Manager::Systemd => format!(
            "  systemctl --user daemon-reload && systemctl --user enable --now {GATEWAY_UNIT} {CHECK_TIMER}\n\
             and, to keep it running when you are not logged in:\n  loginctl enable-linger $USER"
        ),
        Manager::Launchd => plan
            .files
            .iter()
            .map(|f| format!("  launchctl bootstrap gui/$(id -u) {}", f.path.display()))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The absolute, canonical path of the running binary.
fn current_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell the path of the running binary")?;
    std::fs::canonicalize(&exe)
        .with_context(|| format!("cannot resolve the binary path {}", exe.display()))
}

/// The plan for this platform, and the (absolute) state dir it names.
fn plan_from_env(env: &EnvMap) -> anyhow::Result<(Plan, PathBuf)> {
    let manager = Manager::current();
    let paths = Paths::from_env(env)?;
    let state_dir = std::path::absolute(&paths.state_dir).with_context(|| {
        format!(
            "cannot make the state directory {} absolute",
            paths.state_dir.display()
        )
    })?;
    // A config file named with REMOTECLAW_CONFIG_PATH goes into the service's environment
    // (absolute: the service does not start in this directory).
    let config = match paths.config_explicit {
        true => Some(std::path::absolute(&paths.config_path).with_context(|| {
            format!(
                "cannot make the config path {} absolute",
                paths.config_path.display()
            )
        })?),
        false => None,
    };
    let dir = unit_dir(manager, env)?;
    let plan = plan(
        manager,
        &dir,
        &current_binary()?,
        &state_dir,
        config.as_deref(),
    )?;
    Ok((plan, state_dir))
}

pub async fn run(command: ServiceCommand) -> anyhow::Result<ExitCode> {
    let env = EnvMap::from_process();
    tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match command {
            ServiceCommand::Install(a) => install(&env, a.dry_run, &mut out),
            ServiceCommand::Uninstall(a) => uninstall(&env, a.dry_run, &mut out),
            ServiceCommand::Status(a) => status(&env, a.json, &mut out),
        }
    })
    .await
    .context("the service command stopped unexpectedly")?
}

fn install(env: &EnvMap, dry_run: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (plan, state_dir) = plan_from_env(env)?;
    if dry_run {
        for f in &plan.files {
            writeln!(out, "==> {} <==", f.path.display())?;
            writeln!(out, "{}", f.content)?;
        }
        writeln!(out, "dry run: nothing written")?;
        return Ok(ExitCode::SUCCESS);
    }
    if plan.manager == Manager::Launchd {
        // launchd opens the log files under the state dir before the gateway creates it.
        ensure_private_dir(&state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
    }
    std::fs::create_dir_all(&plan.dir)
        .with_context(|| format!("cannot create {}", plan.dir.display()))?;
    let mut changed_existing = false;
    for f in &plan.files {
        let old = match std::fs::read(&f.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", f.path.display())),
        };
        if old.as_deref() == Some(f.content.as_bytes()) {
            writeln!(out, "unchanged {}", f.path.display())?;
            continue;
        }
        write_atomic(&f.path, f.content.as_bytes())
            .with_context(|| format!("cannot write {}", f.path.display()))?;
        writeln!(out, "wrote {}", f.path.display())?;
        changed_existing |= old.is_some();
    }
    let ctl = Ctl::new(plan.manager, env);
    if !ctl.reachable() {
        let what = match plan.manager {
            Manager::Systemd => {
                "no user systemd is reachable (`systemctl --user show-environment` failed)"
            }
            Manager::Launchd => {
                "no launchd GUI session is reachable (`launchctl print gui/<uid>` failed)"
            }
        };
        writeln!(
            out,
            "{what}: enabling skipped. To enable and start it:\n{}",
            enable_hint(&plan)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    match plan.manager {
        Manager::Systemd => {
            ctl.must(&["daemon-reload"])?;
            ctl.must(&["enable", "--now", GATEWAY_UNIT, CHECK_TIMER])?;
            writeln!(out, "enabled and started {GATEWAY_UNIT} and {CHECK_TIMER}")?;
            if changed_existing {
                writeln!(
                    out,
                    "a running gateway keeps its old settings until restarted: systemctl --user restart {GATEWAY_UNIT}"
                )?;
            }
        }
        Manager::Launchd => {
            let domain = gui_domain();
            for f in &plan.files {
                // Reload: bootstrap refuses a label that is already loaded.
                let _ = ctl.run(&["bootout", &format!("{domain}/{}", f.name)]);
                let path = f.path.to_string_lossy();
                ctl.must(&["bootstrap", &domain, &path])?;
                writeln!(out, "loaded {}", f.name)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn uninstall(env: &EnvMap, dry_run: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let manager = Manager::current();
    let dir = unit_dir(manager, env)?;
    let present: Vec<(&str, PathBuf)> = installed_paths(manager, &dir)
        .into_iter()
        .filter(|(_, path)| path.exists())
        .collect();
    if present.is_empty() {
        writeln!(
            out,
            "nothing to remove: the gateway service is not installed (no files in {})",
            dir.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if dry_run {
        for (_, path) in &present {
            writeln!(out, "would remove {}", path.display())?;
        }
        writeln!(out, "dry run: nothing removed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let ctl = Ctl::new(manager, env);
    let reachable = ctl.reachable();
    if reachable {
        match manager {
            Manager::Systemd => {
                let units: Vec<&str> = present
                    .iter()
                    .map(|(name, _)| *name)
                    .filter(|n| *n == GATEWAY_UNIT || *n == CHECK_TIMER)
                    .collect();
                if !units.is_empty() {
                    let mut args = vec!["disable", "--now"];
                    args.extend(&units);
                    match ctl.must(&args) {
                        Ok(()) => writeln!(out, "stopped and disabled {}", units.join(" and "))?,
                        Err(e) => writeln!(out, "warning: {e}; removing the files anyway")?,
                    }
                }
            }
            Manager::Launchd => {
                let domain = gui_domain();
                for (name, _) in &present {
                    if ctl
                        .run(&["bootout", &format!("{domain}/{name}")])
                        .is_some_and(|o| o.ok)
                    {
                        writeln!(out, "unloaded {name}")?;
                    }
                }
            }
        }
    }
    for (_, path) in &present {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            // Gone meanwhile: what uninstall wanted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        writeln!(out, "removed {}", path.display())?;
    }
    if reachable
        && manager == Manager::Systemd
        && let Err(e) = ctl.must(&["daemon-reload"])
    {
        writeln!(out, "warning: {e}")?;
    }
    if !reachable && manager == Manager::Systemd {
        writeln!(
            out,
            "no user systemd is reachable: nothing to stop (a gateway started by hand keeps running)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status(env: &EnvMap, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let manager = Manager::current();
    let dir = unit_dir(manager, env)?;
    let Some((_, gateway)) = installed_paths(manager, &dir).into_iter().next() else {
        anyhow::bail!("no gateway service file is known for this platform");
    };
    let installed = gateway.exists();
    let text = if !installed {
        "not installed"
    } else {
        let ctl = Ctl::new(manager, env);
        let running = match manager {
            Manager::Systemd => ctl
                .run(&["is-active", GATEWAY_UNIT])
                .is_some_and(|o| o.ok && o.stdout.trim() == "active"),
            Manager::Launchd => ctl
                .run(&["print", &format!("{}/{GATEWAY_LABEL}", gui_domain())])
                .is_some_and(|o| o.ok && o.stdout.contains("state = running")),
        };
        if running {
            "running"
        } else {
            "installed, not running"
        }
    };
    if json {
        let v = serde_json::json!({
            "state": text,
            "installed": installed,
            "running": text == "running",
            "unit": gateway.display().to_string(),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_unit_plain_paths() {
        let p = plan(
            Manager::Systemd,
            Path::new("/home/u/.config/systemd/user"),
            Path::new("/opt/rc/bin/remoteclaw"),
            Path::new("/home/u/.remoteclaw"),
            None,
        )
        .unwrap();
        let names: Vec<_> = p
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "/home/u/.config/systemd/user/remoteclaw-gateway.service",
                "/home/u/.config/systemd/user/remoteclaw-auth-check.service",
                "/home/u/.config/systemd/user/remoteclaw-auth-check.timer",
            ]
        );
        let unit = &p.files[0].content;
        assert!(unit.contains("\nExecStart=/opt/rc/bin/remoteclaw gateway\n"));
        assert!(unit.contains("\nEnvironment=REMOTECLAW_STATE_DIR=/home/u/.remoteclaw\n"));
        assert!(unit.contains("\nEnvironmentFile=-/home/u/.remoteclaw/.env\n"));
        assert!(unit.contains("\nRestart=on-failure\nRestartSec=5\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
        assert!(!unit.contains("{{"));
        let check = &p.files[1].content;
        assert!(check.contains("\nType=oneshot\n"));
        assert!(check.contains("\nExecStart=/opt/rc/bin/remoteclaw models status --check\n"));
        assert!(check.contains("\nEnvironment=REMOTECLAW_STATE_DIR=/home/u/.remoteclaw\n"));
        let timer = &p.files[2].content;
        assert!(timer.contains("\nOnCalendar=hourly\nPersistent=true\n"));
    }

    #[test]
    fn systemd_quoting_of_awkward_paths() {
        let unit = render_systemd(
            GATEWAY_UNIT_TEMPLATE,
            "/home/u/my apps/100%/$HOME/remoteclaw",
            "/home/u/state dir/50%/\"q\"",
            None,
        );
        assert!(
            unit.contains("\nExecStart=\"/home/u/my apps/100%%/$HOME/remoteclaw\" gateway\n"),
            "{unit}"
        );
        assert!(
            unit.contains(
                "\nEnvironment=\"REMOTECLAW_STATE_DIR=/home/u/state dir/50%%/\\\"q\\\"\"\n"
            ),
            "{unit}"
        );
        assert!(
            unit.contains("\nEnvironmentFile=-/home/u/state dir/50%%/\"q\"/.env\n"),
            "{unit}"
        );
        // A backslash is escaped even where no quotes are needed.
        assert_eq!(systemd_word("/a\\b"), "/a\\\\b");
        assert_eq!(systemd_word("/a'b"), "\"/a'b\"");
        // systemd refuses such an executable path outright: say so instead of writing it.
        let err = plan(
            Manager::Systemd,
            Path::new("/u"),
            Path::new("/opt/it's/remoteclaw"),
            Path::new("/s"),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("quote or a backslash"), "{err}");
    }

    #[test]
    fn a_named_config_file_goes_into_every_service_environment() {
        let p = plan(
            Manager::Systemd,
            Path::new("/u"),
            Path::new("/opt/remoteclaw"),
            Path::new("/home/u/.remoteclaw"),
            Some(Path::new("/etc/remote claw/rc.toml")),
        )
        .unwrap();
        for f in &p.files[..2] {
            assert!(
                f.content.contains(
                    "\nEnvironment=REMOTECLAW_STATE_DIR=/home/u/.remoteclaw\n\
                     Environment=\"REMOTECLAW_CONFIG_PATH=/etc/remote claw/rc.toml\"\n"
                ),
                "{}",
                f.content
            );
        }
        let p = plan(
            Manager::Launchd,
            Path::new("/u"),
            Path::new("/opt/remoteclaw"),
            Path::new("/Users/u/.remoteclaw"),
            Some(Path::new("/etc/R&D/rc.toml")),
        )
        .unwrap();
        for f in &p.files {
            assert!(
                f.content.contains(
                    "<key>REMOTECLAW_STATE_DIR</key>\n    <string>/Users/u/.remoteclaw</string>\n    \
                     <key>REMOTECLAW_CONFIG_PATH</key>\n    <string>/etc/R&amp;D/rc.toml</string>\n  </dict>"
                ),
                "{}",
                f.content
            );
        }
        // Without one, the units stay as DESIGN §11 shows them.
        let p = plan(
            Manager::Systemd,
            Path::new("/u"),
            Path::new("/opt/remoteclaw"),
            Path::new("/s"),
            None,
        )
        .unwrap();
        assert!(!p.files[0].content.contains("REMOTECLAW_CONFIG_PATH"));
    }

    #[test]
    fn plist_is_xml_escaped() {
        let p = plan(
            Manager::Launchd,
            Path::new("/Users/u/Library/LaunchAgents"),
            Path::new("/Apps/R&D <x>/remoteclaw"),
            Path::new("/Users/u/.remoteclaw"),
            None,
        )
        .unwrap();
        assert_eq!(
            p.files[0].path,
            Path::new("/Users/u/Library/LaunchAgents/ai.remoteclaw.gateway.plist")
        );
        let plist = &p.files[0].content;
        assert!(plist.contains(
            "<string>/Apps/R&amp;D &lt;x&gt;/remoteclaw</string>\n    <string>gateway</string>"
        ));
        assert!(plist.contains(
            "<key>REMOTECLAW_STATE_DIR</key>\n    <string>/Users/u/.remoteclaw</string>"
        ));
        assert!(plist.contains("<key>Label</key>\n  <string>ai.remoteclaw.gateway</string>"));
        assert!(plist.contains("<string>/Users/u/.remoteclaw/gateway.err.log</string>"));
        assert!(p.files[1].content.contains("<string>--check</string>"));
    }

    #[test]
    fn control_characters_are_refused() {
        let err = plan(
            Manager::Systemd,
            Path::new("/u"),
            Path::new("/bin/remote\nclaw"),
            Path::new("/s"),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn unit_dirs() {
        let env = EnvMap::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            unit_dir(Manager::Systemd, &env).unwrap(),
            Path::new("/home/u/.config/systemd/user")
        );
        assert_eq!(
            unit_dir(Manager::Launchd, &env).unwrap(),
            Path::new("/home/u/Library/LaunchAgents")
        );
        let env = EnvMap::from_pairs([("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            unit_dir(Manager::Systemd, &env).unwrap(),
            Path::new("/cfg/systemd/user")
        );
        // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
        let env = EnvMap::from_pairs([("HOME", "/home/u"), ("XDG_CONFIG_HOME", "cfg")]);
        assert_eq!(
            unit_dir(Manager::Systemd, &env).unwrap(),
            Path::new("/home/u/.config/systemd/user")
        );
        assert!(unit_dir(Manager::Systemd, &EnvMap::default()).is_err());
    }
}
