//! SecretRef resolution (DESIGN §5): env, file and exec providers, their safety checks,
//! exec batching, the TTL cache — and that no error, log-facing label or `Debug` output
//! ever carries a secret value (a canary is planted in every source).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::secrets::{RefError, SecretResolver, ref_label};
use remoteclaw::config::env::EnvMap;
use remoteclaw::config::{self, SecretInput, SecretRef, SecretSource};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CANARY: &str = "CANARY-3b9f1e";
/// A secret that is a JSON number (for the "not a string" paths).
const CANARY_NUMBER: &str = "31337424242";

fn resolver(toml: &str, env: &[(&str, &str)]) -> SecretResolver {
    let config = config::parse(Path::new("t.toml"), toml).unwrap();
    SecretResolver::new(
        Arc::new(config),
        Arc::new(EnvMap::from_pairs(env.iter().copied())),
    )
}

fn sref(source: SecretSource, provider: &str, id: &str) -> SecretRef {
    SecretRef {
        source,
        provider: provider.into(),
        id: id.into(),
    }
}

fn env_ref(provider: &str, id: &str) -> SecretRef {
    sref(SecretSource::Env, provider, id)
}
fn file_ref(provider: &str, id: &str) -> SecretRef {
    sref(SecretSource::File, provider, id)
}
fn exec_ref(provider: &str, id: &str) -> SecretRef {
    sref(SecretSource::Exec, provider, id)
}

fn write_file(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A `#!/bin/sh` script, mode 0700.
fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    write_file(dir, name, &format!("#!/bin/sh\n{body}\n"), 0o700)
}

fn file_provider(name: &str, path: &Path, extra: &str) -> String {
    format!(
        "[secrets.providers.{name}]\nsource = \"file\"\npath = \"{}\"\n{extra}\n",
        path.display()
    )
}

fn exec_provider(name: &str, command: &Path, extra: &str) -> String {
    format!(
        "[secrets.providers.{name}]\nsource = \"exec\"\ncommand = \"{}\"\n{extra}\n",
        command.display()
    )
}

/// No formatting of the error carries the canary (nor the numeric one).
#[track_caller]
fn assert_clean(e: &RefError) {
    for text in [e.to_string(), format!("{e:?}"), e.message.clone()] {
        assert!(!text.contains(CANARY), "leaked: {text}");
        assert!(!text.contains(CANARY_NUMBER), "leaked: {text}");
    }
}

#[track_caller]
fn assert_resolver_clean(r: &SecretResolver) {
    let dbg = format!("{r:?}");
    assert!(
        !dbg.contains(CANARY) && !dbg.contains(CANARY_NUMBER),
        "{dbg}"
    );
}

async fn fails(r: &SecretResolver, rf: &SecretRef) -> RefError {
    let e = r.resolve(rf).await.unwrap_err();
    assert_clean(&e);
    assert_eq!(e.reference, ref_label(rf));
    assert!(e.to_string().contains(&ref_label(rf)), "{e}");
    e
}

// ---------------------------------------------------------------- env

#[tokio::test]
async fn env_set_value_is_trimmed() {
    let r = resolver("", &[("OPENAI_KEY", &format!("  {CANARY}\n"))]);
    let s = r.resolve(&env_ref("default", "OPENAI_KEY")).await.unwrap();
    assert_eq!(s.expose(), CANARY);
    assert!(!format!("{s:?} {s}").contains(CANARY));
    assert_resolver_clean(&r);
}

#[tokio::test]
async fn env_unset_and_blank_fail() {
    let r = resolver("", &[("BLANK", "   "), ("OTHER", CANARY)]);
    let e = fails(&r, &env_ref("default", "MISSING")).await;
    assert!(e.message.contains("MISSING is not set"), "{e}");
    let e = fails(&r, &env_ref("default", "BLANK")).await;
    assert!(e.message.contains("BLANK is empty"), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "secret ref env:default:BLANK could not be resolved: {}",
            e.message
        )
    );
}

#[tokio::test]
async fn env_allowlist() {
    let r = resolver(
        "[secrets.providers.team]\nsource = \"env\"\nallowlist = [\"TEAM_KEY\"]\n",
        &[("TEAM_KEY", "team-secret"), ("HOME_SECRET", CANARY)],
    );
    assert_eq!(
        r.resolve(&env_ref("team", "TEAM_KEY"))
            .await
            .unwrap()
            .expose(),
        "team-secret"
    );
    let e = fails(&r, &env_ref("team", "HOME_SECRET")).await;
    assert!(e.message.contains("not in the allowlist"), "{e}");
    assert!(e.message.contains("[secrets.providers.team]"), "{e}");
    // The implicit default provider has no allowlist.
    assert_eq!(
        r.resolve(&env_ref("default", "HOME_SECRET"))
            .await
            .unwrap()
            .expose(),
        CANARY
    );
}

#[tokio::test]
async fn unconfigured_and_mismatched_providers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", "{}", 0o600);
    let r = resolver(&file_provider("files", &path, ""), &[("X", CANARY)]);
    let e = fails(&r, &env_ref("elsewhere", "X")).await;
    assert!(e.message.contains("[secrets.providers.elsewhere]"), "{e}");
    let e = fails(&r, &file_ref("default", "/x")).await;
    assert!(e.message.contains("[secrets.providers.default]"), "{e}");
    let e = fails(&r, &exec_ref("files", "x")).await;
    assert!(
        e.message
            .contains("provider files is a file provider, but the ref says exec"),
        "{e}"
    );
    let e = fails(&r, &env_ref("files", "X")).await;
    assert!(e.message.contains("but the ref says env"), "{e}");
}

// ---------------------------------------------------------------- file

fn secrets_json() -> String {
    format!(
        r#"{{"providers":{{"openai":{{"apiKey":"{CANARY}-openai"}}}},"number":{CANARY_NUMBER},"obj":{{"k":"{CANARY}"}},"blank":" "}}"#
    )
}

#[tokio::test]
async fn file_json_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "secrets.json", &secrets_json(), 0o600);
    let r = resolver(&file_provider("files", &path, "mode = \"json\""), &[]);
    let s = r
        .resolve(&file_ref("files", "/providers/openai/apiKey"))
        .await
        .unwrap();
    assert_eq!(s.expose(), format!("{CANARY}-openai"));
    assert_resolver_clean(&r);
}

#[tokio::test]
async fn file_json_bad_pointers_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "secrets.json", &secrets_json(), 0o600);
    let shown = path.display().to_string();
    let r = resolver(&file_provider("files", &path, ""), &[]);

    let e = fails(&r, &file_ref("files", "/providers/anthropic/apiKey")).await;
    assert!(e.message.contains("/providers/anthropic/apiKey"), "{e}");
    assert!(e.message.contains(&shown), "{e}");

    let e = fails(&r, &file_ref("files", "/number")).await;
    assert!(
        e.message.contains("/number") && e.message.contains("a number"),
        "{e}"
    );

    let e = fails(&r, &file_ref("files", "/obj")).await;
    assert!(e.message.contains("an object, not a string"), "{e}");

    let e = fails(&r, &file_ref("files", "/blank")).await;
    assert!(e.message.contains("empty"), "{e}");

    let e = fails(&r, &file_ref("files", "providers/openai/apiKey")).await;
    assert!(e.message.contains("not a JSON pointer"), "{e}");
}

#[tokio::test]
async fn file_invalid_json_does_not_quote_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "secrets.json",
        &format!("{{\"k\": {CANARY}}}"),
        0o600,
    );
    let r = resolver(&file_provider("files", &path, ""), &[]);
    let e = fails(&r, &file_ref("files", "/k")).await;
    assert!(e.message.contains("not valid JSON"), "{e}");
}

#[tokio::test]
async fn file_single_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "token", &format!("\n {CANARY} \n"), 0o400);
    let r = resolver(&file_provider("tok", &path, "mode = \"singleValue\""), &[]);
    assert_eq!(
        r.resolve(&file_ref("tok", "value")).await.unwrap().expose(),
        CANARY
    );
    let e = fails(&r, &file_ref("tok", "/value")).await;
    assert!(e.message.contains("must be \"value\""), "{e}");

    let empty = write_file(dir.path(), "empty", " \n", 0o600);
    let r = resolver(&file_provider("tok", &empty, "mode = \"singleValue\""), &[]);
    let e = fails(&r, &file_ref("tok", "value")).await;
    assert!(e.message.contains("is empty"), "{e}");
}

#[tokio::test]
async fn file_permissions_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, want) in [
        (0o640, "readable by group/others (0640)"),
        (0o604, "readable by group/others (0604)"),
        (0o602, "writable by group/others (0602)"),
        (0o620, "writable by group/others (0620)"),
        (0o610, "grants permissions to group/others (0610)"),
    ] {
        let path = write_file(
            dir.path(),
            &format!("s{mode:o}.json"),
            &secrets_json(),
            mode,
        );
        let r = resolver(&file_provider("files", &path, ""), &[]);
        let e = fails(&r, &file_ref("files", "/providers/openai/apiKey")).await;
        assert!(e.message.contains(want), "{mode:o}: {e}");
        assert!(
            e.message.contains(&format!("chmod 600 {}", path.display())),
            "{e}"
        );
    }
}

#[tokio::test]
async fn file_owned_by_someone_else_is_refused() {
    if !rustix::process::geteuid().is_root() {
        return; // only root can give a file away
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let r = resolver(&file_provider("files", &path, ""), &[]);
    let e = fails(&r, &file_ref("files", "/providers/openai/apiKey")).await;
    assert!(e.message.contains("owned by uid 65534"), "{e}");
}

#[tokio::test]
async fn file_symlink_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let real = write_file(dir.path(), "real.json", &secrets_json(), 0o600);
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let rf = file_ref("files", "/providers/openai/apiKey");

    let r = resolver(&file_provider("files", &link, ""), &[]);
    let e = fails(&r, &rf).await;
    assert!(e.message.contains("is a symlink"), "{e}");
    assert!(e.message.contains("allowSymlink = true"), "{e}");

    let r = resolver(&file_provider("files", &link, "allowSymlink = true"), &[]);
    assert_eq!(
        r.resolve(&rf).await.unwrap().expose(),
        format!("{CANARY}-openai")
    );

    // Following the link still checks the target.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = resolver(&file_provider("files", &link, "allowSymlink = true"), &[]);
    let e = fails(&r, &rf).await;
    assert!(e.message.contains("readable by group/others"), "{e}");
}

#[tokio::test]
async fn file_too_large_missing_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    let r = resolver(&file_provider("files", &path, "maxBytes = 10"), &[]);
    let e = fails(&r, &file_ref("files", "/providers/openai/apiKey")).await;
    assert!(e.message.contains("maxBytes = 10"), "{e}");

    let r = resolver(
        &file_provider("files", &dir.path().join("absent.json"), ""),
        &[],
    );
    let e = fails(&r, &file_ref("files", "/x")).await;
    assert!(e.message.contains("absent.json"), "{e}");

    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = resolver(&file_provider("files", &sub, ""), &[]);
    let e = fails(&r, &file_ref("files", "/x")).await;
    assert!(e.message.contains("directory"), "{e}");
}

#[test]
fn relative_paths_are_refused_by_config_validation() {
    let e = config::parse(
        Path::new("t.toml"),
        "[secrets.providers.files]\nsource = \"file\"\npath = \"secrets.json\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("secrets.providers.files.path"), "{e}");
    let e = config::parse(
        Path::new("t.toml"),
        "[secrets.providers.vault]\nsource = \"exec\"\ncommand = \"resolve-secret\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key(), Some("secrets.providers.vault.command"), "{e}");
}

// ---------------------------------------------------------------- exec

#[tokio::test]
async fn exec_fixed_reply_and_request_shape() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("request.json");
    let script = write_script(
        dir.path(),
        "resolve",
        &format!(
            "IFS= read -r req\nprintf '%s' \"$req\" > {}\nprintf '%s' '{{\"protocolVersion\":1,\"values\":{{\"openai/key\":\"{CANARY}\"}}}}'",
            req.display()
        ),
    );
    let r = resolver(&exec_provider("vault", &script, ""), &[]);
    let rf = exec_ref("vault", "openai/key");
    assert_eq!(r.resolve(&rf).await.unwrap().expose(), CANARY);
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&req).unwrap()).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"protocolVersion": 1, "provider": "vault", "ids": ["openai/key"]})
    );
    assert_resolver_clean(&r);
}

#[tokio::test]
async fn exec_gets_only_pass_env_and_env_table() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env.txt");
    let script = write_script(
        dir.path(),
        "resolve",
        &format!(
            "export -p > {}\nprintf '%s' '{{\"protocolVersion\":1,\"values\":{{\"k\":\"v\"}}}}'",
            dump.display()
        ),
    );
    let r = resolver(
        &exec_provider(
            "vault",
            &script,
            "passEnv = [\"VAULT_ADDR\", \"NOT_SET_ANYWHERE\"]\nenv = { FROM_TABLE = \"table-value\" }",
        ),
        &[("VAULT_ADDR", "https://vault.test"), ("NOT_PASSED", CANARY)],
    );
    assert_eq!(
        r.resolve(&exec_ref("vault", "k")).await.unwrap().expose(),
        "v"
    );
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        env.contains("VAULT_ADDR") && env.contains("https://vault.test"),
        "{env}"
    );
    assert!(
        env.contains("FROM_TABLE") && env.contains("table-value"),
        "{env}"
    );
    assert!(
        !env.contains("NOT_PASSED") && !env.contains(CANARY),
        "{env}"
    );
    assert!(!env.contains("NOT_SET_ANYWHERE"), "{env}");
    // The test process's own environment (cargo sets CARGO_*) is not inherited.
    assert!(!env.contains("CARGO"), "{env}");
}

#[tokio::test]
async fn exec_timeout_kills_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleep.pid");
    let script = write_script(
        dir.path(),
        "slow",
        &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
    );
    let r = resolver(
        &exec_provider(
            "vault",
            &script,
            // Long enough for bash to start `sleep` and write its pid first.
            "timeoutMs = 1500\nenv = { PATH = \"/usr/bin:/bin\" }",
        ),
        &[],
    );
    let started = Instant::now();
    let e = fails(&r, &exec_ref("vault", "k")).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(e.message.contains("did not answer within 1500 ms"), "{e}");
    assert!(e.message.contains("timeoutMs"), "{e}");

    // The whole process group died, including the background `sleep`.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(&stat)
            .map(|s| {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                !state.starts_with('Z') && !state.starts_with('X')
            })
            .unwrap_or(false);
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "sleep {pid} still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn exec_output_cap() {
    let dir = tempfile::tempdir().unwrap();
    // Never stops on its own: only the kill ends it.
    let script = write_script(
        dir.path(),
        "chatty",
        &format!(
            "while :; do printf '{{\"protocolVersion\":1,\"values\":{{\"k\":\"{CANARY}\"}}}}'; done"
        ),
    );
    let r = resolver(
        &exec_provider("vault", &script, "maxOutputBytes = 1000"),
        &[],
    );
    let e = fails(&r, &exec_ref("vault", "k")).await;
    assert!(e.message.contains("output exceeded 1000 bytes"), "{e}");
}

#[tokio::test]
async fn exec_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "fail",
        &format!(
            "printf '%s' '{{\"protocolVersion\":1,\"values\":{{\"k\":\"{CANARY}\"}}}}'\necho 'token {CANARY} rejected' >&2\nexit 3"
        ),
    );
    let r = resolver(&exec_provider("vault", &script, ""), &[]);
    let e = fails(&r, &exec_ref("vault", "k")).await;
    assert!(e.message.contains("exited with status 3"), "{e}");
}

#[tokio::test]
async fn exec_invalid_json_and_wrong_protocol() {
    let dir = tempfile::tempdir().unwrap();
    for (name, reply) in [
        (
            "truncated",
            format!("{{\"protocolVersion\":1,\"values\":{{\"k\":\"{CANARY}\""),
        ),
        ("bare", CANARY.to_string()),
        (
            "v2",
            format!("{{\"protocolVersion\":2,\"values\":{{\"k\":\"{CANARY}\"}}}}"),
        ),
    ] {
        let script = write_script(dir.path(), name, &format!("printf '%s' '{reply}'"));
        let r = resolver(&exec_provider("vault", &script, ""), &[]);
        let e = fails(&r, &exec_ref("vault", "k")).await;
        assert!(
            e.message.contains("replied with invalid JSON"),
            "{name}: {e}"
        );
    }
}

#[tokio::test]
async fn exec_non_string_value() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "num",
        &format!(
            "printf '%s' '{{\"protocolVersion\":1,\"values\":{{\"k\":{CANARY_NUMBER},\"e\":\"\"}}}}'"
        ),
    );
    let r = resolver(&exec_provider("vault", &script, ""), &[]);
    let e = fails(&r, &exec_ref("vault", "k")).await;
    assert!(e.message.contains("not a string"), "{e}");
    let e = fails(&r, &exec_ref("vault", "e")).await;
    assert!(e.message.contains("empty"), "{e}");
}

#[tokio::test]
async fn exec_batch_runs_once_with_per_id_results() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let req = dir.path().join("request.json");
    let long = "x".repeat(500);
    let script = write_script(
        dir.path(),
        "vault",
        &format!(
            "echo run >> {}\nIFS= read -r req\nprintf '%s' \"$req\" > {}\nprintf '%s' '{{\"protocolVersion\":1,\"values\":{{\"a\":\"{CANARY}-a\",\"unasked\":\"z\"}},\"errors\":{{\"b\":{{\"message\":\"no such secret in vault\"}},\"long\":{{\"message\":\"{long}\"}}}}}}'",
            counter.display(),
            req.display()
        ),
    );
    let secrets = write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    let toml = format!(
        "{}{}",
        exec_provider("vault", &script, ""),
        file_provider("files", &secrets, "")
    );
    let r = resolver(&toml, &[("ENV_KEY", "from-env")]);
    let refs = [
        exec_ref("vault", "a"),
        exec_ref("vault", "b"),
        exec_ref("vault", "c"),
        exec_ref("vault", "long"),
        exec_ref("vault", "a"), // duplicates collapse
        env_ref("default", "ENV_KEY"),
        env_ref("default", "UNSET"),
        file_ref("files", "/providers/openai/apiKey"),
        file_ref("files", "/number"),
    ];
    let results = r.resolve_many(&refs).await;
    assert_eq!(results.len(), 8);
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1,
        "one process for the whole batch"
    );
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&req).unwrap()).unwrap();
    assert_eq!(sent["ids"], serde_json::json!(["a", "b", "c", "long"]));

    let ok = |rf: &SecretRef| results[rf].as_ref().unwrap().expose().to_string();
    let err = |rf: &SecretRef| {
        let e = results[rf].as_ref().unwrap_err().clone();
        assert_clean(&e);
        assert_eq!(e.reference, ref_label(rf));
        e.message
    };
    assert_eq!(ok(&exec_ref("vault", "a")), format!("{CANARY}-a"));
    assert!(err(&exec_ref("vault", "b")).contains("no such secret in vault"));
    assert!(err(&exec_ref("vault", "c")).contains("no value returned"));
    let long_msg = err(&exec_ref("vault", "long"));
    assert!(long_msg.contains(&"x".repeat(200)));
    assert!(!long_msg.contains(&"x".repeat(201)), "{long_msg}");
    assert_eq!(ok(&env_ref("default", "ENV_KEY")), "from-env");
    assert!(err(&env_ref("default", "UNSET")).contains("not set"));
    assert_eq!(
        ok(&file_ref("files", "/providers/openai/apiKey")),
        format!("{CANARY}-openai")
    );
    assert!(err(&file_ref("files", "/number")).contains("not a string"));

    // Successes are cached: a second round runs nothing for them.
    let again = r
        .resolve_many(&[exec_ref("vault", "a"), env_ref("default", "ENV_KEY")])
        .await;
    assert!(again.values().all(Result::is_ok));
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1
    );
    assert_resolver_clean(&r);
}

#[tokio::test]
async fn exec_failing_batch_does_not_affect_other_refs() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "broken", "exit 1");
    let r = resolver(&exec_provider("vault", &script, ""), &[("K", "v")]);
    let results = r
        .resolve_many(&[
            exec_ref("vault", "a"),
            exec_ref("vault", "b"),
            env_ref("default", "K"),
        ])
        .await;
    assert!(results[&exec_ref("vault", "a")].is_err());
    assert!(results[&exec_ref("vault", "b")].is_err());
    assert_eq!(
        results[&env_ref("default", "K")].as_ref().unwrap().expose(),
        "v"
    );
}

#[tokio::test]
async fn exec_command_checks() {
    let dir = tempfile::tempdir().unwrap();
    let body = "printf '%s' '{\"protocolVersion\":1,\"values\":{\"k\":\"v\"}}'";
    let rf = exec_ref("vault", "k");

    let script = write_script(dir.path(), "ok", body);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&script, &link).unwrap();
    let r = resolver(&exec_provider("vault", &link, ""), &[]);
    let e = fails(&r, &rf).await;
    assert!(
        e.message.contains("is a symlink") && e.message.contains("allowSymlink"),
        "{e}"
    );
    let r = resolver(&exec_provider("vault", &link, "allowSymlink = true"), &[]);
    assert_eq!(r.resolve(&rf).await.unwrap().expose(), "v");

    for (name, mode, want) in [
        ("gw", 0o770, "writable by group/others (0770): chmod go-w"),
        ("ww", 0o707, "writable by group/others (0707): chmod go-w"),
        ("noexec", 0o600, "not executable"),
    ] {
        let script = write_script(dir.path(), name, body);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = resolver(&exec_provider("vault", &script, ""), &[]);
        let e = fails(&r, &rf).await;
        assert!(e.message.contains(want), "{name}: {e}");
    }

    let r = resolver(&exec_provider("vault", &dir.path().join("absent"), ""), &[]);
    let e = fails(&r, &rf).await;
    assert!(e.message.contains("absent"), "{e}");
}

// ---------------------------------------------------------------- cache

#[tokio::test]
async fn cache_serves_within_ttl_and_zero_ttl_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    let toml = file_provider("files", &path, "");
    let rf = file_ref("files", "/providers/openai/apiKey");
    let want = format!("{CANARY}-openai");

    let r = resolver(&toml, &[]);
    assert!(r.cached(&rf).is_none());
    assert_eq!(r.resolve(&rf).await.unwrap().expose(), want);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(r.resolve(&rf).await.unwrap().expose(), want);
    assert_eq!(r.cached(&rf).unwrap().expose(), want);
    assert_resolver_clean(&r);

    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    let r = resolver(&toml, &[]).with_ttl(Duration::ZERO);
    assert_eq!(r.resolve(&rf).await.unwrap().expose(), want);
    assert!(r.cached(&rf).is_none());
    std::fs::remove_file(&path).unwrap();
    let e = fails(&r, &rf).await;
    assert!(e.message.contains("s.json"), "{e}");
}

#[tokio::test]
async fn a_fixed_ref_works_once_its_failure_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let config = config::parse(Path::new("t.toml"), &file_provider("files", &path, "")).unwrap();
    let clock = remoteclaw::clock::ManualClock::new(0);
    let r = SecretResolver::new(Arc::new(config), Arc::new(EnvMap::from_pairs([("A", "b")])))
        .with_clock(clock.clone());
    let rf = file_ref("files", "/providers/openai/apiKey");
    fails(&r, &rf).await;
    assert!(r.cached(&rf).is_none());
    write_file(dir.path(), "s.json", &secrets_json(), 0o600);
    assert!(r.resolve(&rf).await.is_err(), "still remembered as failed");
    clock.advance_ms(i64::try_from(remoteclaw::auth::secrets::FAILURE_TTL.as_millis()).unwrap());
    assert!(r.resolve(&rf).await.is_ok());
    assert!(r.cached(&rf).is_some());
}

#[tokio::test]
async fn resolve_input_plain_and_ref() {
    let r = resolver("", &[("K", CANARY)]);
    let plain = SecretInput::Plain("inline-secret".into());
    assert_eq!(
        r.resolve_input(&plain).await.unwrap().expose(),
        "inline-secret"
    );
    let by_ref = SecretInput::Ref(env_ref("default", "K"));
    assert_eq!(r.resolve_input(&by_ref).await.unwrap().expose(), CANARY);
    let missing = SecretInput::Ref(env_ref("default", "NOPE"));
    assert_clean(&r.resolve_input(&missing).await.unwrap_err());
    assert_resolver_clean(&r);
}

#[test]
fn labels() {
    assert_eq!(
        ref_label(&env_ref("default", "OPENAI_KEY")),
        "env:default:OPENAI_KEY"
    );
    assert_eq!(ref_label(&file_ref("files", "/a/b")), "file:files:/a/b");
    assert_eq!(ref_label(&exec_ref("vault", "k")), "exec:vault:k");
}

// ---------------------------------------------------------------- hardening (DESIGN §8)

/// Lines in the counter file an exec script appends to on every run.
fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// An exec script that records each run in `count`, waits `pause` (so concurrent
/// callers overlap) and then fails, or answers every id with `CANARY`.
fn counting_script(dir: &Path, fail: bool, pause: &str) -> (PathBuf, PathBuf) {
    let counter = dir.join("count");
    let reply = if fail {
        "echo 'vault is sealed' >&2; exit 3".to_string()
    } else {
        format!(
            "printf '%s' '{{\"protocolVersion\":1,\"values\":{{\"k\":\"{CANARY}\",\"anthropic\":\"{CANARY}\"}}}}'"
        )
    };
    let script = write_script(
        dir,
        if fail { "failing" } else { "vault" },
        &format!("echo run >> {}\nsleep {pause}\n{reply}", counter.display()),
    );
    (script, counter)
}

#[tokio::test]
async fn failing_ref_is_fetched_once_per_failure_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (script, counter) = counting_script(dir.path(), true, "0");
    let r = resolver(&exec_provider("vault", &script, ""), &[]);
    let rf = exec_ref("vault", "k");
    let first = fails(&r, &rf).await;
    for _ in 0..5 {
        let again = fails(&r, &rf).await;
        assert_eq!(again, first, "the remembered failure, reason included");
        let many = r.resolve_many(std::slice::from_ref(&rf)).await;
        assert!(many[&rf].is_err());
    }
    assert_eq!(
        runs(&counter),
        1,
        "one process for the failure, not one per call"
    );
}

#[tokio::test]
async fn failure_is_forgotten_after_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (script, counter) = counting_script(dir.path(), true, "0");
    let config = config::parse(Path::new("t.toml"), &exec_provider("vault", &script, "")).unwrap();
    let clock = remoteclaw::clock::ManualClock::new(1_000_000);
    let r = SecretResolver::new(Arc::new(config), Arc::new(EnvMap::from_pairs([("A", "b")])))
        .with_clock(clock.clone());
    let rf = exec_ref("vault", "k");
    fails(&r, &rf).await;
    let ttl = remoteclaw::auth::secrets::FAILURE_TTL;
    clock.advance_ms(i64::try_from(ttl.as_millis()).unwrap() - 1);
    fails(&r, &rf).await;
    assert_eq!(runs(&counter), 1);
    clock.advance_ms(1);
    fails(&r, &rf).await;
    assert_eq!(runs(&counter), 2, "after the TTL the ref is tried again");
}

#[tokio::test]
async fn concurrent_lookups_start_one_exec_process() {
    for fail in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (script, counter) = counting_script(dir.path(), fail, "0.3");
        let r = resolver(&exec_provider("vault", &script, ""), &[]);
        let rf = exec_ref("vault", "k");
        let lookups = (0..8).map(|i| {
            let (r, rf) = (&r, rf.clone());
            async move {
                if i % 2 == 0 {
                    r.resolve(&rf).await
                } else {
                    r.resolve_many(&[rf.clone(), env_ref("default", "X")])
                        .await
                        .remove(&rf)
                        .unwrap()
                }
            }
        });
        let results = futures_util::future::join_all(lookups).await;
        assert!(results.iter().all(|x| x.is_ok() != fail), "{results:?}");
        assert_eq!(runs(&counter), 1, "fail={fail}: one process for 8 lookups");
    }
}

#[tokio::test]
async fn world_readable_file_message_has_the_design_shape() {
    // DESIGN §8: `file /x is readable by group/others (0644): chmod 600 /x`
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o644);
    let r = resolver(&file_provider("files", &path, ""), &[]);
    let e = fails(&r, &file_ref("files", "/providers/openai/apiKey")).await;
    let p = path.display();
    let want = format!("file {p} is readable by group/others (0644): chmod 600 {p}");
    assert!(e.message.contains(&want), "{e}");
    assert!(e.to_string().contains(&want), "{e}");
}

/// A home whose only anthropic profile, `anthropic:vault`, takes its key from `key_ref`
/// (JSON) through the secret provider declared in `providers` (TOML); the anthropic
/// endpoint is the fake.
fn ref_home(
    fake: &support::fake_provider::FakeProvider,
    providers: &str,
    key_ref: &str,
) -> support::home::TestHome {
    let home = support::home::TestHome::new(&format!(
        "[agents.defaults.model]\nprimary = \"anthropic/m\"\n[models.providers.anthropic]\nbaseUrl = \"{}\"\n{providers}",
        fake.anthropic_base()
    ));
    let profiles = format!(
        r#"{{"profiles":{{"anthropic:vault":{{"type":"api_key","provider":"anthropic","keyRef":{key_ref}}}}}}}"#
    );
    let path = home.write("agents/main/agent/auth-profiles.json", &profiles);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    home
}

fn turn() -> remoteclaw::engine::TurnInput {
    remoteclaw::engine::TurnInput {
        model: None,
        pin: None,
        messages: vec![remoteclaw::providers::ChatMessage::user("hi")],
        agent: None,
        system: None,
    }
}

#[tokio::test]
async fn failing_exec_ref_costs_one_process_across_concurrent_and_repeated_turns() {
    let fake = support::fake_provider::FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (script, counter) = counting_script(dir.path(), true, "0.3");
    let mut home = ref_home(
        &fake,
        &exec_provider("vault", &script, ""),
        r#"{"source":"exec","provider":"vault","id":"anthropic"}"#,
    );
    home.set("ANTHROPIC_API_KEY", "k-env-answers");
    let app = home.app().await;
    let turns = (0..6).map(|_| app.engine.run_turn(turn(), None));
    for result in futures_util::future::join_all(turns).await {
        assert!(result.error.is_none(), "{:?}", result.error);
        assert_eq!(result.credential.as_deref(), Some("env:ANTHROPIC_API_KEY"));
    }
    assert_eq!(runs(&counter), 1, "six concurrent turns, one process");
    for _ in 0..5 {
        let result = app.engine.run_turn(turn(), None).await;
        assert!(result.error.is_none(), "{:?}", result.error);
    }
    assert_eq!(
        runs(&counter),
        1,
        "no process per turn within the failure TTL"
    );
    assert_eq!(fake.request_count(), 11);
}

#[tokio::test]
async fn world_readable_secret_file_reason_is_in_every_message() {
    let fake = support::fake_provider::FakeProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.json", &secrets_json(), 0o644);
    let home = ref_home(
        &fake,
        &file_provider("files", &path, ""),
        r#"{"source":"file","provider":"files","id":"/providers/openai/apiKey"}"#,
    );
    let p = path.display();
    let want = format!("file {p} is readable by group/others (0644): chmod 600 {p}");
    let app = home.app().await;
    let resolver = &app.engine.resolver;

    let res = resolver
        .resolve("anthropic", "anthropic/m", None)
        .await
        .unwrap();
    let c = &res.candidates[0];
    assert_eq!(c.reason, Some("unresolved_ref"));
    let detail = c.detail.as_deref().unwrap_or_default();
    assert!(detail.contains(&want), "candidate detail: {detail}");

    let pinned = resolver
        .attempt_list("anthropic", "anthropic/m", Some("anthropic:vault"))
        .await
        .unwrap_err()
        .to_string();
    assert!(pinned.contains(&want), "pinned-profile error: {pinned}");

    let unpinned = resolver
        .attempt_list("anthropic", "anthropic/m", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unpinned.contains(&want),
        "no usable credentials: {unpinned}"
    );

    let result = app.engine.run_turn(turn(), None).await;
    let error = result.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains(&want), "turn error: {error}");

    let out = home.run(&["models", "status"]).await;
    let text = support::home::stdout(&out);
    assert!(text.contains(&want), "models status: {text}");
    for text in [detail, &pinned, &unpinned, &error, &text] {
        assert!(!text.contains(CANARY), "{text}");
    }
}
