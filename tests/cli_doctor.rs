//! `remoteclaw doctor` (and `completions`) end to end with the real binary (DESIGN §6, §8):
//! exit codes, findings and their fixes, `--fix` backups and permission repairs that never
//! change a file's content, a corrupt credentials file left alone, and no secret in any
//! output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::home::{TestHome, stderr, stdout};

const PROFILES: &str = "agents/main/agent/auth-profiles.json";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Make the home's state dir and credentials dir private, as RemoteClaw creates them.
fn tidy(h: &TestHome) {
    chmod(&h.state_dir(), 0o700);
    let agent = h.state_dir().join("agents/main/agent");
    if agent.exists() {
        chmod(&agent, 0o700);
    }
}

/// Write auth-profiles.json with `mode`.
fn profiles(h: &TestHome, doc: &Value, m: u32) -> PathBuf {
    let p = h.write(PROFILES, &serde_json::to_string_pretty(doc).unwrap());
    chmod(&p, m);
    p
}

async fn doctor(h: &TestHome, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = h.run(&args).await;
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {printed}"));
    (out.status.code().unwrap(), v, printed)
}

fn find<'a>(v: &'a Value, id: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

fn one<'a>(v: &'a Value, id: &str) -> &'a Value {
    let all = find(v, id);
    assert_eq!(all.len(), 1, "expected one {id}: {v:#}");
    all[0]
}

fn errors(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error" && f["fixed"] == false)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn api_key(key: &str) -> Value {
    json!({ "type": "api_key", "provider": "anthropic", "key": key })
}

#[tokio::test]
async fn clean_home_with_an_env_key_passes_and_writes_nothing() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
    tidy(&h);
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "{printed}");
    assert_eq!(v["ok"], true);
    assert!(errors(&v).is_empty(), "{v:#}");
    assert_eq!(one(&v, "config_missing")["severity"], "info");
    let cred = one(&v, "provider_credentials");
    assert_eq!(cred["severity"], "ok");
    assert!(
        cred["message"]
            .as_str()
            .unwrap()
            .contains("env:ANTHROPIC_API_KEY")
    );
    assert!(
        !h.state_dir().join("state.db").exists(),
        "the report is read-only"
    );

    let out = h.run(&["doctor"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("✓ anthropic: 1 usable credential"), "{text}");
    assert!(text.contains("No problems found."), "{text}");
    assert!(text.contains("Next:"), "{text}");
}

#[tokio::test]
async fn no_credential_for_the_default_provider_is_an_error() {
    let h = TestHome::new("");
    tidy(&h);
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(v["ok"], false);
    let f = one(&v, "provider_no_credentials");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("anthropic"));
    let fix = f["fix"].as_str().unwrap();
    assert!(
        fix.contains("ANTHROPIC_API_KEY") && fix.contains("remoteclaw onboard"),
        "{fix}"
    );
    let out = h.run(&["doctor"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("✗ no usable credential for anthropic"));
}

#[tokio::test]
async fn open_credentials_file_is_an_error_that_fix_repairs_after_a_backup() {
    let h = TestHome::new("");
    let path = profiles(
        &h,
        &json!({ "version": 1, "profiles": { "anthropic:work": api_key("sk-ant-api03-work") } }),
        0o644,
    );
    let original = std::fs::read(&path).unwrap();
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    let f = one(&v, "auth_profiles_permissions");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["fixable"], true);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&path.display().to_string())
    );
    assert!(f["fix"].as_str().unwrap().contains("chmod 600"));
    assert_eq!(
        one(&v, "state_dir_permissions")["severity"],
        "warning",
        "the test home is 0755"
    );
    assert_eq!(mode(&path), 0o644, "without --fix nothing changes");
    assert!(!h.state_dir().join("backups").exists());

    let out = h.run(&["doctor", "--fix"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "every error was repaired: {}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("fixed: chmod 600"), "{text}");
    assert!(text.contains("backups/doctor-"), "{text}");

    // The backup holds the file as it was, privately.
    let backups: Vec<PathBuf> = std::fs::read_dir(h.state_dir().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let name = backups[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("doctor-"), "{name}");
    let copy = backups[0].join(PROFILES);
    assert_eq!(std::fs::read(&copy).unwrap(), original);
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(mode(&backups[0]), 0o700);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backups[0].join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["oldMode"] == "0644" && c["newMode"] == "0600")
    );

    // Permissions repaired, content byte for byte the same.
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&h.state_dir()), 0o700);
    assert_eq!(mode(&h.state_dir().join("agents/main/agent")), 0o700);
    assert_eq!(std::fs::read(&path).unwrap(), original);

    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "{printed}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["fixable"] == false),
        "{v:#}"
    );
    assert_eq!(one(&v, "auth_profiles_ok")["severity"], "ok");

    // Nothing left to repair: --fix makes no new backup.
    let out = h.run(&["doctor", "--fix"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_dir(h.state_dir().join("backups"))
            .unwrap()
            .count(),
        1
    );
}

#[tokio::test]
async fn corrupt_credentials_file_is_reported_and_never_touched() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
    let content = "{\n  \"profiles\": {,\n  \"key\": \"sk-ant-CANARY\"\n}";
    let path = h.write(PROFILES, content);
    chmod(&path, 0o644);
    let (code, v, printed) = doctor(&h, &["--fix"]).await;
    assert_eq!(code, 1, "{printed}");
    let f = one(&v, "auth_profiles_corrupt");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["fixed"], false);
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{}:2", path.display())),
        "path and line: {msg}"
    );
    let perm = one(&v, "auth_profiles_permissions");
    assert_eq!(perm["fixable"], false, "a corrupt file is left alone");
    assert_eq!(perm["fixed"], false);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    assert_eq!(mode(&path), 0o644);
    assert!(!printed.contains("CANARY"), "{printed}");
    // Other checks still ran; the directories were tightened.
    assert_eq!(mode(&h.state_dir()), 0o700);
    let backups = h.state_dir().join("backups");
    for entry in std::fs::read_dir(&backups).unwrap() {
        assert!(
            !entry.unwrap().path().join(PROFILES).exists(),
            "nothing to back up: the file is not touched"
        );
    }
}

#[tokio::test]
async fn expired_and_expiring_tokens() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    profiles(
        &h,
        &json!({ "version": 1, "profiles": {
            "anthropic:old": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-old", "expires": now - 3_600_000 },
            "anthropic:soon": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-soon", "expires": now + 2 * 3_600_000 },
            "anthropic:later": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-later", "expires": now + 30 * 86_400_000i64 }
        } }),
        0o600,
    );
    tidy(&h);
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 1, "{printed}");
    assert_eq!(errors(&v), ["profile_expired"], "{v:#}");
    let f = one(&v, "profile_expired");
    assert!(
        f["message"].as_str().unwrap().contains("anthropic:old"),
        "{f}"
    );
    assert!(
        f["fix"].as_str().unwrap().contains(
            "remoteclaw models auth paste-token --provider anthropic --profile-id anthropic:old"
        ),
        "{f}"
    );
    let w = one(&v, "profile_expiring");
    assert_eq!(w["severity"], "warning");
    assert!(w["message"].as_str().unwrap().contains("anthropic:soon"));
    assert!(
        w["fix"]
            .as_str()
            .unwrap()
            .contains("--profile-id anthropic:soon")
    );
}

#[tokio::test]
async fn secret_refs_and_missing_profiles() {
    let mut h = TestHome::new(
        "[auth.order]\nanthropic = [\"anthropic:work\", \"anthropic:ghost\"]\n[auth.profiles.\"anthropic:decl\"]\nprovider = \"anthropic\"\nmode = \"api_key\"\n",
    );
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    profiles(
        &h,
        &json!({ "version": 1, "profiles": {
            "anthropic:work": { "type": "api_key", "provider": "anthropic",
                                "keyRef": { "source": "env", "provider": "default", "id": "WORK_KEY_UNSET" } }
        } }),
        0o600,
    );
    tidy(&h);
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 1, "{printed}");
    let f = one(&v, "unresolved_ref");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("env:default:WORK_KEY_UNSET"),
        "{f}"
    );
    let missing: Vec<&str> = find(&v, "profile_missing")
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing.iter().any(|m| m.contains("anthropic:ghost")));
    assert!(missing.iter().any(|m| m.contains("anthropic:decl")));
    assert!(
        find(&v, "profile_missing")
            .iter()
            .all(|f| f["severity"] == "warning")
    );
}

#[tokio::test]
async fn non_loopback_bind_needs_a_gateway_token() {
    let mut h = TestHome::new("[gateway]\nbind = \"0.0.0.0\"\n");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    tidy(&h);
    chmod(&h.config_path(), 0o600);
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(errors(&v), ["gateway_no_token"]);
    let f = one(&v, "gateway_no_token");
    assert!(f["message"].as_str().unwrap().contains("0.0.0.0"));
    assert!(f["fix"].as_str().unwrap().contains("[gateway.auth] token"));

    std::fs::write(
        h.config_path(),
        "[gateway]\nbind = \"0.0.0.0\"\n[gateway.auth]\ntoken = \"a-long-random-gateway-token\"\n",
    )
    .unwrap();
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "{printed}");
    assert_eq!(one(&v, "gateway_ok")["severity"], "ok");
}

#[tokio::test]
async fn channels_tokens_owners_and_open_dms() {
    let mut h = TestHome::new(
        "[channels.telegram]\nenabled = true\ndmPolicy = \"open\"\n[channels.discord]\nenabled = true\nowners = [\"222\"]\n",
    );
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env")
        .set("DISCORD_BOT_TOKEN", "discord-token");
    tidy(&h);
    chmod(&h.config_path(), 0o600);
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(errors(&v), ["telegram_token_missing"]);
    assert!(
        one(&v, "telegram_token_missing")["fix"]
            .as_str()
            .unwrap()
            .contains("TELEGRAM_BOT_TOKEN")
    );
    assert!(
        one(&v, "telegram_no_owners")["message"]
            .as_str()
            .unwrap()
            .contains("nobody can pin profiles")
    );
    assert!(
        one(&v, "telegram_dm_open")["message"]
            .as_str()
            .unwrap()
            .contains("anyone")
    );
    assert!(find(&v, "discord_no_owners").is_empty());
    assert!(find(&v, "discord_token_missing").is_empty());
}

#[tokio::test]
async fn invalid_config_is_reported_and_other_checks_still_run() {
    let h = TestHome::new("[gateway]\nprot = 1\n");
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 1, "{printed}");
    let f = one(&v, "config_invalid");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(&h.config_path().display().to_string()) && msg.contains("prot"),
        "{msg}"
    );
    assert!(f["fix"].as_str().unwrap().contains("port"), "{f}");
    assert_eq!(one(&v, "state_dir_permissions")["severity"], "warning");
    assert_eq!(one(&v, "auth_profiles_missing")["severity"], "info");
    assert!(!find(&v, "checks_skipped").is_empty());
}

#[tokio::test]
async fn no_secret_in_any_output() {
    let mut h = TestHome::new(
        "[channels.telegram]\nenabled = true\nbotToken = \"123:CANARY-telegram\"\n[gateway]\nbind = \"0.0.0.0\"\n[gateway.auth]\ntoken = \"CANARY-gateway\"\n",
    );
    chmod(&h.config_path(), 0o644);
    let env = h.write(".env", "OPENAI_API_KEY=sk-CANARY-dotenv\n");
    chmod(&env, 0o644);
    h.set("GEMINI_API_KEY", "CANARY-process-env");
    profiles(
        &h,
        &json!({ "version": 1, "profiles": {
            "anthropic:work": api_key("sk-ant-api03-CANARY-profile"),
            "anthropic:old": { "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-CANARY-expired", "expires": 1000 }
        } }),
        0o644,
    );
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    assert!(!printed.contains("CANARY"), "{printed}");
    assert_eq!(
        one(&v, "config_secret_readable")["severity"],
        "error",
        "{v:#}"
    );
    assert!(
        one(&v, "config_secret_readable")["message"]
            .as_str()
            .unwrap()
            .contains("channels.telegram.botToken")
    );
    assert_eq!(one(&v, "env_file_permissions")["severity"], "error");
    let text = h.run(&["doctor"]).await;
    let all = format!("{}{}", stdout(&text), stderr(&text));
    assert!(!all.contains("CANARY"), "{all}");
    let (_, v, printed) = doctor(&h, &["--fix"]).await;
    assert!(!printed.contains("CANARY"), "{printed}");
    assert_eq!(one(&v, "env_file_permissions")["fixed"], true);
    assert_eq!(one(&v, "config_secret_readable")["fixed"], true);
    assert_eq!(mode(&env), 0o600);
    assert_eq!(mode(&h.config_path()), 0o600);
}

#[tokio::test]
async fn bad_agent_id_is_an_error() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    let (code, v, _) = doctor(&h, &["--agent", "../etc"]).await;
    assert_eq!(code, 1);
    assert_eq!(one(&v, "agent_invalid")["severity"], "error");
}

#[tokio::test]
async fn completions_print_a_script() {
    let h = TestHome::new("");
    for shell in ["bash", "zsh", "fish"] {
        let out = h.run(&["completions", shell]).await;
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains("remoteclaw"), "{shell}");
        assert!(
            script.contains("doctor") && script.contains("pairing"),
            "{shell}"
        );
    }
    let out = h.run(&["completions", "tcsh"]).await;
    assert_ne!(out.status.code(), Some(0));
}

#[tokio::test]
async fn state_db_opens_and_open_modes_are_fixed() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    tidy(&h);
    // Any command creates state.db (0600); loosen it as a careless copy would.
    let out = h.run(&["pairing", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = h.state_dir().join("state.db");
    assert_eq!(mode(&db), 0o600);
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 0);
    assert_eq!(one(&v, "state_db_ok")["severity"], "ok");

    chmod(&db, 0o644);
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "a warning only");
    let f = one(&v, "state_db_permissions");
    assert_eq!(
        (f["severity"].as_str(), f["fixable"].as_bool()),
        (Some("warning"), Some(true))
    );
    let (code, v, _) = doctor(&h, &["--fix"]).await;
    assert_eq!(code, 0);
    assert_eq!(one(&v, "state_db_permissions")["fixed"], true);
    assert_eq!(mode(&db), 0o600);

    std::fs::write(&db, "not a database, definitely not").unwrap();
    let (code, v, _) = doctor(&h, &[]).await;
    assert_eq!(code, 1);
    let f = one(&v, "state_db_error");
    assert!(f["fix"].as_str().unwrap().contains(".broken"), "{f}");
}

/// With `session.store = "redis"` doctor checks the Redis store (not state.db): it
/// answers, or an error names the store and the fix — never the URL's password.
#[tokio::test]
async fn doctor_checks_the_redis_store_when_it_is_the_store() {
    let mut server = support::redis::RedisServer::start();
    let url = server
        .url()
        .replace("redis://", "redis://:canary-doctor-pw@");
    // The private server wants no password: AUTH with one fails, which must not leak it;
    // use the plain URL for the working case.
    let config = |u: &str| format!("[session]\nstore = \"redis\"\nredisUrl = \"{u}\"\n");
    let mut h = TestHome::new(&config(&server.url()));
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
    tidy(&h);
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "{printed}");
    assert_eq!(one(&v, "state_store_ok")["severity"], "ok");

    server.stop();
    let h = {
        let mut h = TestHome::new(&config(&url));
        h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
        tidy(&h);
        h
    };
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 1, "{printed}");
    let f = one(&v, "state_store_unavailable");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("state store unavailable"),
        "{f}"
    );
    assert!(!printed.contains("canary-doctor-pw"), "{printed}");
}

#[tokio::test]
async fn alerts_targets_need_a_bot_token() {
    let mut h = TestHome::new(
        "[alerts]\ntelegramChat = 123456789\ndiscordChannel = \"333\"\n[channels.telegram]\nenabled = false\nbotToken = \"42:tg-secret-token\"\n",
    );
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
    tidy(&h);
    chmod(&h.config_path(), 0o600);
    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "a missing alert target is a warning: {printed}");
    let ok = one(&v, "alerts_ok");
    assert_eq!(
        ok["message"], "credential alerts go to Telegram chat 123456789",
        "{v:#}"
    );
    let missing = one(&v, "alerts_no_token");
    assert_eq!(missing["severity"], "warning");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("alerts.discordChannel")
    );
    assert!(
        missing["fix"]
            .as_str()
            .unwrap()
            .contains("DISCORD_BOT_TOKEN")
    );
    assert!(!printed.contains("tg-secret-token"), "{printed}");

    h.set("DISCORD_BOT_TOKEN", "discord-secret");
    let (_, v, _) = doctor(&h, &[]).await;
    assert!(find(&v, "alerts_no_token").is_empty(), "{v:#}");
    assert_eq!(
        one(&v, "alerts_ok")["message"],
        "credential alerts go to Telegram chat 123456789 and Discord channel 333"
    );
}

/// Regression (audit s9): `"order": {"anthropic": "anthropic:work"}` (a string, not a
/// list) silently became an empty explicit order and hid every stored profile. It is
/// ignored (the order falls through to the stored profiles), and `models status` and
/// `doctor` name the file, the key and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_order_entry_is_ignored_and_reported() {
    let h = TestHome::new("[agents.defaults.model]\nprimary = \"anthropic/claude-sonnet-4-5\"\n");
    let path = profiles(
        &h,
        &json!({"version": 1,
                "profiles": {"anthropic:work": api_key("sk-ant-1"), "anthropic:home": api_key("sk-ant-2")},
                "order": {"anthropic": "anthropic:work"}}),
        0o600,
    );
    let key = "\"order.anthropic\" is a string, not a list of profile ids";
    let fix = "remoteclaw models auth order clear --provider anthropic";

    let out = h.run(&["models", "status", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ids: Vec<&str> = status["providers"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(status["providers"][0]["provider"], "anthropic");
    assert!(
        ids.contains(&"anthropic:work") && ids.contains(&"anthropic:home"),
        "stored profiles are candidates again: {status:#}"
    );
    let err = stderr(&out);
    assert!(err.contains(key) && err.contains(fix), "{err}");

    let out = h.run(&["models", "status"]).await;
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{}: {key}", path.display())),
        "{text}"
    );
    assert!(text.contains(fix), "{text}");
    assert!(!text.contains("sk-ant-"), "{text}");

    let (code, v, printed) = doctor(&h, &[]).await;
    assert_eq!(code, 0, "a warning: {printed}");
    let f = one(&v, "auth_profiles_order_malformed");
    assert_eq!(f["severity"], "warning");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(key), "{message}");
    assert!(f["fix"].as_str().unwrap().contains(fix), "{f}");
}

/// Regression (audit): two api_key profiles with the same secret and no auth order were
/// reported as "not in the auth order … never tried" with an `order set` fix; the second
/// is in fact dropped as a duplicate of the first (DESIGN §5).
#[tokio::test]
async fn a_profile_with_the_same_secret_as_another_is_named_as_its_duplicate() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-env");
    tidy(&h);
    let secret = "sk-ant-api03-DUPCANARY";
    profiles(
        &h,
        &json!({"version": 1, "profiles": {"anthropic:a": api_key(secret), "anthropic:b": api_key(secret)}}),
        0o600,
    );
    let (_, v, printed) = doctor(&h, &[]).await;
    assert!(find(&v, "profile_unused").is_empty(), "{v:#}");
    let f = one(&v, "profile_duplicate");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "auth profile \"anthropic:b\" (anthropic) holds the same secret as \"anthropic:a\" (fingerprint "
        ),
        "{msg}"
    );
    assert!(
        msg.contains("dropped as a duplicate and never tried"),
        "{msg}"
    );
    let fix = f["fix"].as_str().unwrap();
    assert!(fix.starts_with("remove one of the two from "), "{fix}");
    assert!(
        fix.contains("--profile-id anthropic:b"),
        "or its own key: {fix}"
    );
    assert!(!fix.contains("order set"), "{fix}");
    assert!(!printed.contains("DUPCANARY"), "{printed}");

    // With an order that leaves it out, that is the reason given.
    profiles(
        &h,
        &json!({"version": 1, "profiles": {"anthropic:a": api_key(secret), "anthropic:b": api_key(secret)},
                "order": {"anthropic": ["anthropic:a"]}}),
        0o600,
    );
    let (_, v, _) = doctor(&h, &[]).await;
    assert!(find(&v, "profile_duplicate").is_empty(), "{v:#}");
    assert!(
        one(&v, "profile_unused")["message"]
            .as_str()
            .unwrap()
            .contains("\"anthropic:b\" (anthropic) is not in the auth order")
    );
}

/// Regression (audit): a credentials file whose top level is a list was read as an
/// empty store ("0 profiles"; `[{"old":"data"}]` as schema version `{"old":"data"}`).
#[tokio::test]
async fn a_credentials_file_that_is_a_list_is_reported_as_corrupt() {
    for content in ["[]", "[{\"old\":\"data\"}]"] {
        let mut h = TestHome::new("");
        h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
        tidy(&h);
        let path = h.write(PROFILES, content);
        chmod(&path, 0o600);
        let (code, v, printed) = doctor(&h, &["--fix"]).await;
        assert_eq!(code, 1, "{printed}");
        assert!(find(&v, "auth_profiles_ok").is_empty(), "{content}: {v:#}");
        let msg = one(&v, "auth_profiles_corrupt")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with(&format!(
                "{}:1: not valid JSON (the top level is not a JSON object",
                path.display()
            )),
            "{msg}"
        );
        assert!(!printed.contains("schema version"), "{printed}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);

        let out = h.run(&["models", "status", "--json"]).await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("the top level is not a JSON object"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    }
}

/// Regression (review): the doctor, documented read-only, wrote the credentials file's
/// `usageStats` into state.db (an import marker in `meta`, rows in `credential_state`)
/// when its credential checks read the file.
#[tokio::test]
async fn doctor_leaves_the_usage_stats_of_the_credentials_file_out_of_state_db() {
    let mut h = TestHome::new("");
    h.set("ANTHROPIC_API_KEY", "sk-ant-api03-test");
    // state.db as a command leaves it before the file exists (nothing imported).
    let out = h.run(&["sessions", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let db = h.state_dir().join("state.db");
    assert!(db.exists());
    let until = now_ms() + 3_600_000;
    profiles(
        &h,
        &json!({"version": 1, "profiles": {"anthropic:a": api_key("sk-ant-api03-a")},
            "usageStats": {"anthropic:a": {"cooldownUntil": until, "errorCount": 1}}}),
        0o600,
    );
    tidy(&h);
    let (_, v, printed) = doctor(&h, &[]).await;
    assert!(!v["findings"].as_array().unwrap().is_empty(), "{printed}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let markers: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM meta WHERE key LIKE 'usage_import:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM credential_state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (markers, rows),
        (0, 0),
        "the report is read-only: {printed}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
