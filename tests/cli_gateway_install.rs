//! `remoteclaw gateway install | uninstall | status [--dry-run]` (DESIGN §11 "Service",
//! issue 14), through the real binary with `XDG_CONFIG_HOME` in a temp dir. The real user
//! systemd is never touched: `REMOTECLAW_SYSTEMCTL` (test-only) names either a program
//! that does not exist (no user systemd: enabling is skipped) or a fake `systemctl` that
//! records its arguments and says `active`.
#![cfg(not(target_os = "macos"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::{Path, PathBuf};
use support::home::{TestHome, stdout};

const UNITS: [&str; 3] = [
    "remoteclaw-gateway.service",
    "remoteclaw-auth-check.service",
    "remoteclaw-auth-check.timer",
];

fn bin() -> String {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_remoteclaw"))
        .unwrap()
        .display()
        .to_string()
}

/// A home whose `XDG_CONFIG_HOME` is `<home>/xdg` and whose systemctl is `systemctl`.
fn home(systemctl: &str) -> TestHome {
    let mut h = TestHome::new("");
    let xdg = h.dir.path().join("xdg").display().to_string();
    h.set("XDG_CONFIG_HOME", &xdg);
    h.set("REMOTECLAW_SYSTEMCTL", systemctl);
    h
}

fn unit_dir(h: &TestHome) -> PathBuf {
    h.dir.path().join("xdg/systemd/user")
}

/// A program that does not exist: "no user systemd".
fn missing_systemctl(h: &TestHome) -> String {
    h.dir.path().join("no-such-systemctl").display().to_string()
}

/// A fake `systemctl` at `<home>/fake-systemctl` that appends its arguments to
/// `<home>/systemctl.log`, prints `active` for `is-active` and exits `code`. Written by a
/// child shell so this process never holds the script open for writing (ETXTBSY when a
/// concurrent test forks at that moment).
fn fake_systemctl(dir: &Path, code: u8) -> (String, PathBuf) {
    let script = dir.join("fake-systemctl");
    let log = dir.join("systemctl.log");
    let body = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nif [ \"$2\" = is-active ]; then echo active; fi\nexit {code}\n",
        log.display()
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("cat > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(status.success());
    (script.display().to_string(), log)
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Output with the binary path and the temp home replaced by stable names.
fn normalized(h: &TestHome, text: &str) -> String {
    text.replace(&bin(), "[BIN]")
        .replace(&h.dir.path().display().to_string(), "[HOME]")
}

/// The sections of a dry run: (target path, content).
fn dry_run_sections(text: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    for chunk in text.split("==> ").skip(1) {
        let (header, body) = chunk.split_once(" <==\n").unwrap();
        let body = body
            .strip_suffix("dry run: nothing written\n")
            .unwrap_or(body);
        // Each file is followed by one blank line.
        sections.push((header.to_string(), body.strip_suffix('\n').unwrap().into()));
    }
    sections
}

#[tokio::test]
async fn a_config_file_named_by_the_operator_goes_into_the_units() {
    // `REMOTECLAW_CONFIG_PATH=etc/rc.toml remoteclaw gateway install`: the service and the
    // hourly check must read that file too, not <state>/remoteclaw.toml.
    let mut h = home("");
    let missing = missing_systemctl(&h);
    h.set("REMOTECLAW_SYSTEMCTL", &missing);
    let config = h.dir.path().join("etc/rc.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "").unwrap();
    h.set("REMOTECLAW_CONFIG_PATH", &config.display().to_string());
    let out = h.run(&["gateway", "install", "--dry-run"]).await;
    assert!(out.status.success(), "{out:?}");
    let sections = dry_run_sections(&stdout(&out));
    let line = format!(
        "\nEnvironment=REMOTECLAW_CONFIG_PATH={}\n",
        config.display()
    );
    assert!(sections[0].1.contains(&line), "{}", sections[0].1);
    assert!(sections[1].1.contains(&line), "{}", sections[1].1);
}

#[tokio::test]
async fn dry_run_prints_the_units_and_writes_nothing() {
    let h = home("");
    let (fake, log) = fake_systemctl(h.dir.path(), 0);
    let mut h = h;
    h.set("REMOTECLAW_SYSTEMCTL", &fake);

    let out = h.run(&["gateway", "install", "--dry-run"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    insta::assert_snapshot!("gateway_install_dry_run", normalized(&h, &text));

    // Nothing written, systemctl never run.
    assert!(!h.dir.path().join("xdg").exists());
    assert!(!log.exists(), "{:?}", log_lines(&log));
    let sections = dry_run_sections(&text);
    let dir = unit_dir(&h);
    let targets: Vec<_> = sections.iter().map(|(p, _)| p.clone()).collect();
    let expected: Vec<_> = UNITS
        .iter()
        .map(|u| dir.join(u).display().to_string())
        .collect();
    assert_eq!(targets, expected);
    let state = h.state_dir().display().to_string();
    let gateway = &sections[0].1;
    assert!(
        gateway.contains(&format!("\nExecStart={} gateway\n", bin())),
        "{gateway}"
    );
    assert!(gateway.contains(&format!("\nEnvironment=REMOTECLAW_STATE_DIR={state}\n")));
    assert!(gateway.contains(&format!("\nEnvironmentFile=-{state}/.env\n")));
    assert!(
        sections[1]
            .1
            .contains(&format!("\nExecStart={} models status --check\n", bin()))
    );
    assert!(sections[2].1.contains("\nOnCalendar=hourly\n"));
}

#[tokio::test]
async fn install_status_uninstall_without_user_systemd() {
    let mut h = home("");
    let missing = missing_systemctl(&h);
    h.set("REMOTECLAW_SYSTEMCTL", &missing);
    let dir = unit_dir(&h);

    let out = h.run(&["gateway", "status"]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "not installed\n");

    let dry = stdout(&h.run(&["gateway", "install", "--dry-run"]).await);
    let out = h.run(&["gateway", "install"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for unit in UNITS {
        assert!(
            text.contains(&format!("wrote {}\n", dir.join(unit).display())),
            "{text}"
        );
    }
    assert!(text.contains("enabling skipped"), "{text}");
    assert!(
        text.contains(
            "systemctl --user daemon-reload && systemctl --user enable --now remoteclaw-gateway.service remoteclaw-auth-check.timer"
        ),
        "{text}"
    );
    assert!(text.contains("loginctl enable-linger $USER"), "{text}");

    // The files hold exactly what the dry run showed.
    for (path, content) in dry_run_sections(&dry) {
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "{path}");
    }
    let unit = std::fs::read_to_string(dir.join(UNITS[0])).unwrap();
    let state = h.state_dir().display().to_string();
    assert!(unit.contains(&format!("\nExecStart={} gateway\n", bin())));
    assert!(unit.contains(&format!("\nEnvironment=REMOTECLAW_STATE_DIR={state}\n")));
    assert!(unit.contains(&format!("\nEnvironmentFile=-{state}/.env\n")));

    let out = h.run(&["gateway", "status"]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "installed, not running\n");
    let out = h.run(&["gateway", "status", "--dry-run", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["state"], "installed, not running");
    assert_eq!(v["installed"], true);
    assert_eq!(v["running"], false);
    assert_eq!(v["unit"], dir.join(UNITS[0]).display().to_string());

    // Again: nothing to rewrite. A file edited by hand is put back.
    std::fs::write(dir.join(UNITS[2]), "[Timer]\nOnCalendar=daily\n").unwrap();
    let text = stdout(&h.run(&["gateway", "install"]).await);
    assert!(text.contains(&format!("unchanged {}\n", dir.join(UNITS[0]).display())));
    assert!(text.contains(&format!("unchanged {}\n", dir.join(UNITS[1]).display())));
    assert!(
        text.contains(&format!("wrote {}\n", dir.join(UNITS[2]).display())),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(dir.join(UNITS[2]))
            .unwrap()
            .contains("OnCalendar=hourly")
    );

    let out = h.run(&["gateway", "uninstall", "--dry-run"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for unit in UNITS {
        assert!(dir.join(unit).exists());
        assert!(text.contains(&format!("would remove {}\n", dir.join(unit).display())));
    }

    let out = h.run(&["gateway", "uninstall"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for unit in UNITS {
        assert!(!dir.join(unit).exists());
        assert!(
            text.contains(&format!("removed {}\n", dir.join(unit).display())),
            "{text}"
        );
    }

    let out = h.run(&["gateway", "status"]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "not installed\n");

    let out = h.run(&["gateway", "uninstall"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("nothing to remove"), "{out:?}");
}

#[tokio::test]
async fn a_systemctl_that_fails_counts_as_no_user_systemd() {
    let mut h = home("");
    let (fake, log) = fake_systemctl(h.dir.path(), 1);
    h.set("REMOTECLAW_SYSTEMCTL", &fake);

    let out = h.run(&["gateway", "install"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("enabling skipped"));
    // Only the probe ran.
    assert_eq!(log_lines(&log), ["--user show-environment"]);
    assert!(unit_dir(&h).join(UNITS[0]).exists());

    // `is-active` exits 0 only for an active unit: a failing one is not running, whatever
    // it printed.
    let out = h.run(&["gateway", "status"]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "installed, not running\n");
}

#[tokio::test]
async fn install_enables_and_uninstall_disables_through_user_systemd() {
    let mut h = home("");
    let (fake, log) = fake_systemctl(h.dir.path(), 0);
    h.set("REMOTECLAW_SYSTEMCTL", &fake);
    let dir = unit_dir(&h);

    let out = h.run(&["gateway", "install"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains(
            "enabled and started remoteclaw-gateway.service and remoteclaw-auth-check.timer"
        ),
        "{text}"
    );
    assert!(!text.contains("skipped"), "{text}");
    assert_eq!(
        log_lines(&log),
        [
            "--user show-environment",
            "--user daemon-reload",
            "--user enable --now remoteclaw-gateway.service remoteclaw-auth-check.timer",
        ]
    );
    // The units were in place before systemd was told to load them.
    for unit in UNITS {
        assert!(dir.join(unit).exists());
    }

    let out = h.run(&["gateway", "status"]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out), "running\n");
    assert_eq!(
        log_lines(&log).last().map(String::as_str),
        Some("--user is-active remoteclaw-gateway.service")
    );

    std::fs::remove_file(&log).unwrap();
    let out = h.run(&["gateway", "uninstall"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        log_lines(&log),
        [
            "--user show-environment",
            "--user disable --now remoteclaw-gateway.service remoteclaw-auth-check.timer",
            "--user daemon-reload",
        ]
    );
    for unit in UNITS {
        assert!(!dir.join(unit).exists());
    }
    let out = h.run(&["gateway", "status"]).await;
    assert_eq!(stdout(&out), "not installed\n");
}

#[tokio::test]
async fn gateway_flags_do_not_mix_with_subcommands() {
    let h = home("/nonexistent-systemctl");
    let out = h.run(&["gateway", "--port", "0", "install"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!h.dir.path().join("xdg").exists());
}

/// `remoteclaw gateway install --dry-run | head -1`: the reader leaving early is no
/// error worth a message.
#[tokio::test]
async fn a_reader_that_leaves_early_gets_no_broken_pipe_error() {
    let mut h = home("");
    let none = missing_systemctl(&h);
    h.set("REMOTECLAW_SYSTEMCTL", &none);
    let mut child = h
        .command(&["gateway", "install", "--dry-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("Broken pipe"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
