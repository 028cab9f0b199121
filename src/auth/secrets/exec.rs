//! `exec` SecretRefs: run the operator's resolver command (no shell, cleared
//! environment), send `{"protocolVersion":1,"provider":…,"ids":[…]}` on stdin, read a
//! JSON reply from stdout under a byte cap and a timeout.
//!
//! Nothing the command prints is ever put into a message or a log line, except the
//! per-id `errors[id].message` (written by the operator's tool, truncated): stdout may
//! hold secrets even when it is not valid JSON, and so may stderr.

use super::checks::{self, Stat};
use crate::config::ExecSecretProvider;
use crate::config::env::EnvMap;
use crate::secret::Secret;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub(super) const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// How much of a provider-reported error message is kept.
pub(super) const PROVIDER_MESSAGE_MAX_CHARS: usize = 200;

/// Per-id outcome of one batch.
pub(super) type IdResults = HashMap<String, Result<Secret, String>>;

/// Resolve `ids` with one run of the provider's command. `Err` fails the whole batch.
pub(super) async fn resolve_batch(
    alias: &str,
    p: &ExecSecretProvider,
    env: &EnvMap,
    ids: &[&str],
) -> Result<IdResults, String> {
    let prefix = format!("exec provider \"{alias}\" ({})", p.command);
    check_command(alias, p)
        .await
        .map_err(|m| format!("exec provider \"{alias}\": {m}"))?;
    let started = std::time::Instant::now();
    let stdout = run(alias, p, env, ids)
        .await
        .map_err(|m| format!("{prefix} {m}"))?;
    tracing::debug!(
        provider = alias,
        ids = ids.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        stdout_bytes = stdout.len(),
        "exec secret provider answered"
    );
    parse_reply(&stdout, ids).map_err(|m| format!("{prefix} {m}"))
}

async fn check_command(alias: &str, p: &ExecSecretProvider) -> Result<(), String> {
    let path = p.command.as_str();
    if !Path::new(path).is_absolute() {
        return Err(format!(
            "\"{path}\" is not an absolute path (commands run without a shell); write the full path in [secrets.providers.{alias}].command"
        ));
    }
    let link = tokio::fs::symlink_metadata(path)
        .await
        .map_err(|e| format!("cannot use {path}: {e}"))?;
    let target = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot use {path}: {e}"))?;
    checks::command(
        alias,
        path,
        Stat::of(&link),
        Stat::of(&target),
        p.allow_symlink,
        checks::euid(),
    )
}

enum Failure {
    Overflow,
    Io(std::io::Error),
}

/// Run the command once and return its stdout (exit status 0 only).
async fn run(
    alias: &str,
    p: &ExecSecretProvider,
    env: &EnvMap,
    ids: &[&str],
) -> Result<Vec<u8>, String> {
    let timeout_ms = p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let max = p.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES);
    let request = serde_json::json!({ "protocolVersion": 1, "provider": alias, "ids": ids });
    let request = request.to_string();

    let mut cmd = tokio::process::Command::new(&p.command);
    cmd.args(&p.args).env_clear();
    for name in &p.pass_env {
        if let Some(value) = env.get(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(&p.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout also kills what the command started.
        .process_group(0);
    let mut child = spawn(&mut cmd).await?;
    let pid = child.id();
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill(&mut child, pid).await;
        return Err("could not be started: no pipes".into());
    };

    let io = async {
        let write = async {
            let written = stdin.write_all(request.as_bytes()).await;
            drop(stdin);
            match written {
                // The command may answer without reading its input.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(Failure::Io),
            }
        };
        let read = async {
            let mut out = Vec::new();
            (&mut stdout)
                .take(max.saturating_add(1))
                .read_to_end(&mut out)
                .await
                .map_err(Failure::Io)?;
            if out.len() as u64 > max {
                return Err(Failure::Overflow);
            }
            Ok(out)
        };
        // stderr may hold secrets too: count it, never keep it.
        let drain = async {
            tokio::io::copy(&mut stderr, &mut tokio::io::sink())
                .await
                .map_err(Failure::Io)
        };
        let ((), out, stderr_len) = tokio::try_join!(write, read, drain)?;
        let status = child.wait().await.map_err(Failure::Io)?;
        Ok::<_, Failure>((out, stderr_len, status))
    };
    let outcome = tokio::time::timeout(Duration::from_millis(timeout_ms), io).await;
    match outcome {
        Err(_) => {
            kill(&mut child, pid).await;
            Err(format!(
                "did not answer within {timeout_ms} ms; fix the command or raise timeoutMs in [secrets.providers.{alias}]"
            ))
        }
        Ok(Err(Failure::Overflow)) => {
            kill(&mut child, pid).await;
            Err(format!(
                "output exceeded {max} bytes; fix the command or raise maxOutputBytes in [secrets.providers.{alias}]"
            ))
        }
        Ok(Err(Failure::Io(e))) => {
            kill(&mut child, pid).await;
            Err(format!("could not be talked to: {e}"))
        }
        Ok(Ok((out, stderr_len, status))) => {
            if stderr_len > 0 {
                tracing::debug!(
                    provider = alias,
                    stderr_bytes = stderr_len,
                    "exec secret provider wrote to stderr (not logged: it may hold secrets)"
                );
            }
            if status.success() {
                Ok(out)
            } else {
                Err(format!(
                    "{} (stderr: {stderr_len} bytes, not shown since it may hold secrets); run the command by hand to see why",
                    describe_exit(status)
                ))
            }
        }
    }
}

/// Start the command. "Text file busy" (the file is still open for writing, e.g. during
/// an upgrade of the tool) is retried a few times before it counts as a failure.
async fn spawn(cmd: &mut tokio::process::Command) -> Result<tokio::process::Child, String> {
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return Ok(child),
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                    && attempts < 5 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("could not be started: {e}")),
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("failed ({status})"),
    }
}

/// Kill the command and everything in its process group, then reap it.
async fn kill(child: &mut tokio::process::Child, pid: Option<u32>) {
    let group = pid
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 1)
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        // The child leads its own group (process_group(0)); it is not reaped yet, so
        // the id cannot have been reused.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
}

/// Parse the reply. `Err` (the whole batch failed) never quotes the reply.
pub(super) fn parse_reply(stdout: &[u8], ids: &[&str]) -> Result<IdResults, String> {
    let invalid = || {
        format!(
            "replied with invalid JSON ({} bytes, not shown); it must print {{\"protocolVersion\":1,\"values\":{{\"<id>\":\"<secret>\"}}}}",
            stdout.len()
        )
    };
    let reply: Value = serde_json::from_slice(stdout).map_err(|_| invalid())?;
    let Value::Object(reply) = reply else {
        return Err(invalid());
    };
    if reply.get("protocolVersion").and_then(Value::as_u64) != Some(1) {
        return Err(
            "replied with invalid JSON: protocolVersion is missing or not 1 (RemoteClaw speaks protocol version 1)"
                .into(),
        );
    }
    let empty = serde_json::Map::new();
    let table = |key: &str| match reply.get(key) {
        None | Some(Value::Null) => Ok(&empty),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(invalid()),
    };
    let (values, errors) = (table("values")?, table("errors")?);
    Ok(ids
        .iter()
        .map(|&id| {
            let result = if let Some(err) = errors.get(id) {
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| err.as_str())
                    .map(sanitize_message);
                Err(match message {
                    Some(m) if !m.is_empty() => format!("reported an error: {m}"),
                    _ => "reported an error for this id (without a message)".into(),
                })
            } else {
                match values.get(id) {
                    None => Err("no value returned for this id".into()),
                    Some(Value::String(s)) if s.trim().is_empty() => {
                        Err("an empty value was returned for this id".into())
                    }
                    Some(Value::String(s)) => Ok(Secret::new(s.as_str())),
                    Some(other) => Err(format!(
                        "{} was returned for this id, not a string",
                        super::file::json_kind(other)
                    )),
                }
            };
            (id.to_owned(), result)
        })
        .collect())
}

/// The provider's own error message: control characters flattened, at most
/// `PROVIDER_MESSAGE_MAX_CHARS` characters.
fn sanitize_message(message: &str) -> String {
    let mut out: String = message
        .chars()
        .take(PROVIDER_MESSAGE_MAX_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.chars().count() > PROVIDER_MESSAGE_MAX_CHARS {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-exec-7f3a";

    #[test]
    fn reply_values_errors_and_missing() {
        let reply = serde_json::json!({
            "protocolVersion": 1,
            "values": { "a": CANARY, "n": 123456789, "blank": "  " },
            "errors": { "b": { "message": "not found in vault" }, "c": {} }
        })
        .to_string();
        let r = parse_reply(reply.as_bytes(), &["a", "b", "c", "d", "n", "blank"]).unwrap();
        assert_eq!(r["a"].as_ref().unwrap().expose(), CANARY);
        assert_eq!(
            r["b"].as_ref().unwrap_err(),
            "reported an error: not found in vault"
        );
        assert!(r["c"].as_ref().unwrap_err().contains("without a message"));
        assert!(r["d"].as_ref().unwrap_err().contains("no value returned"));
        let n = r["n"].as_ref().unwrap_err();
        assert!(n.contains("a number") && !n.contains("123456789"), "{n}");
        assert!(r["blank"].as_ref().unwrap_err().contains("empty"));
    }

    #[test]
    fn bad_replies_fail_the_batch_without_quoting() {
        for bad in [
            CANARY.to_string(),
            format!("{{\"protocolVersion\":1,\"values\":{{\"a\":\"{CANARY}\"}}"),
            format!("{{\"protocolVersion\":2,\"values\":{{\"a\":\"{CANARY}\"}}}}"),
            format!("{{\"values\":{{\"a\":\"{CANARY}\"}}}}"),
            format!("[\"{CANARY}\"]"),
            format!("{{\"protocolVersion\":1,\"values\":[\"{CANARY}\"]}}"),
            String::new(),
        ] {
            let e = parse_reply(bad.as_bytes(), &["a"]).unwrap_err();
            assert!(e.contains("invalid JSON"), "{e}");
            assert!(!e.contains("CANARY"), "{e}");
        }
    }

    #[test]
    fn provider_messages_are_truncated_and_flattened() {
        let long = "x".repeat(500);
        let m = sanitize_message(&long);
        assert_eq!(m.chars().count(), PROVIDER_MESSAGE_MAX_CHARS + 1);
        assert!(m.ends_with('…'));
        assert_eq!(sanitize_message("a\nb\tc"), "a b c");
        let multibyte = "é".repeat(300);
        assert_eq!(
            sanitize_message(&multibyte).chars().count(),
            PROVIDER_MESSAGE_MAX_CHARS + 1
        );
    }
}
