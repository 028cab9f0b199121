//! `remoteclaw import openclaw` with the real binary against a sample OpenClaw home (JSON5
//! with comments, unquoted keys and trailing commas; two agents with api_key, token and
//! oauth profiles; unknown keys): `--dry-run` writes nothing and shows no secret, the
//! real run writes the documented files (0600) with `.bak`/`.bak.1` backups, lists what
//! it could not carry over, and `models list/status --json` read the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::home::{TestHome, stderr, stdout};

const OPENCLAW_JSON: &str = r#"// Written by `openclaw onboard`, then edited by hand.
{
  meta: { lastTouchedVersion: "2026.1.5" },
  agents: {
    defaults: {
      model: {
        primary: "anthropic/claude-sonnet-4-5",
        fallbacks: ["openai/gpt-4o-mini", "zai/glm-4.7",], // zai is not configured here
      },
      models: {
        "anthropic/claude-opus-4-5": { alias: "opus" },
        "anthropic/claude-sonnet-4-5": { alias: "sonnet", params: { temperature: 0.2 } },
        'openai/gpt-4o-mini': { alias: "mini", },
      },
      workspace: "~/.openclaw/workspace",
      sandbox: { mode: "non-main" },
    },
    list: [
      { id: "main", default: true },
      { id: "work", workspace: "~/work" },
    ],
  },
  /* Which credentials to try first. */
  auth: {
    profiles: {
      "anthropic:work": { provider: "anthropic", mode: "api_key" },
      "anthropic:manual": { provider: "anthropic", mode: "token", email: "me@example.com" },
    },
    order: { anthropic: ["anthropic:work", "anthropic:manual"] },
  },
  commands: { native: "auto", ownerAllowFrom: ["telegram:123", "discord:222"] },
  channels: {
    telegram: {
      enabled: true,
      botToken: "123456:CANARY-telegram-token",
      dmPolicy: "allowlist",
      allowFrom: ["123", "456", 789, "@someone"],
      groups: {
        "-1001234567890": { requireMention: true, systemPrompt: "You answer build questions." },
      },
      streamMode: "partial",
      linkPreview: false,
    },
    discord: {
      token: "CANARY-discord-token",
      dm: { policy: "pairing", allowFrom: ["222", "discord:333"] },
      guilds: {
        "111": {
          users: ["222"],
          channels: { "444": { allow: true, requireMention: false, systemPrompt: "You review pull requests." } },
        },
      },
    },
    whatsapp: { allowFrom: ["+15555550123"] },
  },
  gateway: { port: 18790, mode: "local" },
  messages: { ackReaction: "eyes" },
}
"#;

/// Far in the future (2100), so the token is healthy whenever the test runs.
const FAR: i64 = 4_102_444_800_000;

fn main_profiles() -> String {
    format!(
        r#"{{
  "version": 1,
  "profiles": {{
    "anthropic:work": {{ "type": "api_key", "provider": "anthropic", "key": "sk-ant-api03-CANARY-work" }},
    "anthropic:manual": {{ "type": "token", "provider": "anthropic", "token": "sk-ant-oat01-CANARY-manual", "expires": {FAR} }},
    "openai-codex:default": {{ "type": "oauth", "provider": "openai-codex", "access": "CANARY-access", "refresh": "CANARY-refresh", "expires": {FAR}, "accountId": "acc-1" }}
  }},
  "order": {{ "anthropic": ["anthropic:manual", "anthropic:work"] }},
  "usageStats": {{ "anthropic:work": {{ "lastUsed": 1700000000000, "errorCount": 1 }} }},
  "lastGood": {{ "anthropic": "anthropic:work" }}
}}"#
    )
}

const WORK_PROFILES: &str = r#"{
  "version": 1,
  "profiles": {
    "openai:team": { "type": "api_key", "provider": "openai", "key": "sk-CANARY-team" },
    "aws:default": { "type": "aws-sdk", "provider": "amazon-bedrock" }
  }
}"#;

/// A RemoteClaw home (with a config of its own) and an OpenClaw home at ~/.openclaw.
fn sample() -> (TestHome, PathBuf) {
    let home = TestHome::new("# hand-written\n[gateway]\nport = 1234\n");
    let oc = home.dir.path().join(".openclaw");
    for (rel, text) in [
        ("openclaw.json", OPENCLAW_JSON.to_string()),
        ("agents/main/agent/auth-profiles.json", main_profiles()),
        ("agents/work/agent/auth-profiles.json", WORK_PROFILES.into()),
        ("agents/work/sessions/sessions.json", "{}".into()),
    ] {
        let p = oc.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    (home, oc)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains("CANARY"), "a secret was printed:\n{text}");
}

fn profiles_path(home: &TestHome, agent: &str) -> PathBuf {
    home.state_dir()
        .join(format!("agents/{agent}/agent/auth-profiles.json"))
}

const EXPECTED_TOML: &str = r#"[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "opus"

[agents.defaults.models."anthropic/claude-sonnet-4-5"]
alias = "sonnet"

[agents.defaults.models."openai/gpt-4o-mini"]
alias = "mini"

[agents.defaults.model]
primary = "anthropic/claude-sonnet-4-5"
fallbacks = ["openai/gpt-4o-mini"]

[auth.profiles."anthropic:manual"]
provider = "anthropic"
mode = "token"

[auth.profiles."anthropic:work"]
provider = "anthropic"
mode = "api_key"

[auth.order]
anthropic = ["anthropic:work", "anthropic:manual"]

[channels.telegram]
enabled = true
botToken = "123456:CANARY-telegram-token"
dmPolicy = "allowlist"
streaming = "edit"
allowFrom = [123, 456, 789]
owners = [123]
groups = [-1001234567890]
requireMention = true

[channels.telegram.groupPrompts]
-1001234567890 = "You answer build questions."

[channels.discord]
enabled = true
token = "CANARY-discord-token"
dmPolicy = "pairing"
allowFrom = ["222", "333"]
owners = ["222"]
guilds = ["111"]
groupAllowFrom = ["222"]
channels = ["444"]

[channels.discord.channelPrompts]
444 = "You review pull requests."

[gateway]
port = 18790
"#;

const NOT_CARRIED: [&str; 15] = [
    "meta.lastTouchedVersion",
    "agents.defaults.models.\"anthropic/claude-sonnet-4-5\".params.temperature",
    "agents.defaults.model.fallbacks[1]",
    "agents.defaults.workspace",
    "agents.defaults.sandbox.mode",
    "agents.list[1].workspace",
    "auth.profiles.\"anthropic:manual\".email",
    "commands.native",
    "channels.telegram.allowFrom[3]",
    "channels.telegram.linkPreview",
    "channels.whatsapp.allowFrom",
    "gateway.mode",
    "channels.discord.guilds.111.channels.444.allow",
    "messages.ackReaction",
    "agents/work/agent/auth-profiles.json: profiles.\"aws:default\"",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_redacted_files_and_writes_nothing() {
    let (home, _oc) = sample();
    let before = std::fs::read_to_string(home.config_path()).unwrap();
    let out = home.run(&["import", "openclaw", "--dry-run"]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert_no_secret(&text);
    assert_no_secret(&stderr(&out));
    assert!(text.contains("Nothing was written"), "{text}");
    assert!(text.contains("shown as <redacted>"), "{text}");
    assert!(text.contains("botToken = \"<redacted>\""), "{text}");
    assert!(text.contains("\"key\": \"<redacted>\""), "{text}");
    assert!(text.contains("\"accountId\": \"acc-1\""), "{text}");
    let config = home.config_path();
    assert!(
        text.contains(&format!(
            "Would back up {} to {}.bak",
            config.display(),
            config.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "--- would write {} ---",
            profiles_path(&home, "work").display()
        )),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    for key in NOT_CARRIED {
        assert!(lines.contains(&key), "{key} not listed:\n{text}");
    }
    // Nothing changed on disk.
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert!(!home.state_dir().join("agents").exists());
    assert!(!home.state_dir().join("remoteclaw.toml.bak").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_writes_files_with_backups_and_the_cli_reads_them() {
    let (home, oc) = sample();
    let old_profiles = "{\"version\":1,\"profiles\":{}}";
    home.write("agents/main/agent/auth-profiles.json", old_profiles);
    let from = oc.display().to_string();

    let out = home.run(&["import", "openclaw", "--from", &from]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert_no_secret(&text);
    assert_no_secret(&stderr(&out));
    let config = home.config_path();
    let main = profiles_path(&home, "main");
    let work = profiles_path(&home, "work");
    for line in [
        format!("Wrote {}.", config.display()),
        format!(
            "Backed up the previous {} to {}.bak.",
            config.display(),
            config.display()
        ),
        format!("Wrote {} (3 profiles).", main.display()),
        format!(
            "Backed up the previous {} to {}.bak.",
            main.display(),
            main.display()
        ),
        format!("Wrote {} (1 profile).", work.display()),
        "Not carried over:".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let lines: Vec<&str> = text.lines().collect();
    for key in NOT_CARRIED {
        assert!(lines.contains(&key), "{key} not listed:\n{text}");
    }

    // The files: the documented config, backups of what was there, private modes.
    assert_eq!(std::fs::read_to_string(&config).unwrap(), EXPECTED_TOML);
    assert_eq!(
        std::fs::read_to_string(home.state_dir().join("remoteclaw.toml.bak")).unwrap(),
        "# hand-written\n[gateway]\nport = 1234\n"
    );
    assert_eq!(
        std::fs::read_to_string(main.with_file_name("auth-profiles.json.bak")).unwrap(),
        old_profiles
    );
    for p in [&config, &main, &work] {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    assert_eq!(
        mode(work.parent().unwrap()),
        0o700,
        "a new agent directory is private"
    );
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&main).unwrap()).unwrap();
    assert_eq!(
        stored["profiles"]["anthropic:work"]["key"],
        "sk-ant-api03-CANARY-work"
    );
    assert_eq!(
        stored["profiles"]["openai-codex:default"]["refresh"],
        "CANARY-refresh"
    );
    assert_eq!(stored["usageStats"]["anthropic:work"]["errorCount"], 1);
    assert_eq!(stored["lastGood"]["anthropic"], "anthropic:work");
    let work_doc: Value = serde_json::from_str(&std::fs::read_to_string(&work).unwrap()).unwrap();
    assert_eq!(
        work_doc["profiles"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["openai:team"]
    );

    // The CLI reads the imported config: aliases, default model, fallbacks.
    let out = home.run(&["models", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["defaultModel"], "anthropic/claude-sonnet-4-5");
    assert_eq!(list["fallbacks"], serde_json::json!(["openai/gpt-4o-mini"]));
    let aliases: Vec<(String, String)> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            Some((
                m["alias"].as_str()?.to_string(),
                m["model"].as_str()?.to_string(),
            ))
        })
        .collect();
    for (alias, model) in [
        ("opus", "anthropic/claude-opus-4-5"),
        ("sonnet", "anthropic/claude-sonnet-4-5"),
        ("mini", "openai/gpt-4o-mini"),
    ] {
        assert!(
            aliases.contains(&(alias.to_string(), model.to_string())),
            "{aliases:?}"
        );
    }

    // ... and the credentials: the order of the imported file, from its profiles.
    let out = home.run(&["models", "status", "--json"]).await;
    let status_text = stdout(&out);
    assert_no_secret(&status_text);
    let status: Value = serde_json::from_str(&status_text).unwrap();
    assert_eq!(status["agentId"], "main");
    assert_eq!(status["defaultModel"], "anthropic/claude-sonnet-4-5");
    let anthropic = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "anthropic")
        .expect("anthropic in use");
    let candidates: Vec<(&str, &str, &str)> = anthropic["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        candidates,
        vec![
            ("anthropic:manual", "token", "profile"),
            ("anthropic:work", "api_key", "profile")
        ]
    );
    let out = home
        .run(&["models", "status", "--json", "--agent", "work"])
        .await;
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let openai = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "openai")
        .expect("openai in use (fallback)");
    assert_eq!(openai["candidates"][0]["id"], "openai:team");

    // A second run keeps the first backups and takes the next names.
    let out = home.run(&["import", "openclaw", "--from", &from]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for line in [
        format!(
            "Backed up the previous {} to {}.bak.1.",
            config.display(),
            config.display()
        ),
        format!(
            "Backed up the previous {} to {}.bak.1.",
            main.display(),
            main.display()
        ),
        format!(
            "Backed up the previous {} to {}.bak.",
            work.display(),
            work.display()
        ),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(home.state_dir().join("remoteclaw.toml.bak.1")).unwrap(),
        EXPECTED_TOML
    );
    assert_eq!(
        std::fs::read_to_string(home.state_dir().join("remoteclaw.toml.bak")).unwrap(),
        "# hand-written\n[gateway]\nport = 1234\n"
    );
    assert_eq!(
        mode(&main.with_file_name("auth-profiles.json.bak.1")),
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_are_errors_naming_the_path_and_nothing_is_written() {
    let home = TestHome::new("");
    let missing = home.dir.path().join("nowhere");
    let out = home
        .run(&[
            "import",
            "openclaw",
            "--from",
            &missing.display().to_string(),
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&missing.display().to_string()),
        "{}",
        stderr(&out)
    );

    let empty = home.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = home
        .run(&["import", "openclaw", "--from", &empty.display().to_string()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let json_path = empty.join("openclaw.json");
    assert!(
        stderr(&out).contains(&json_path.display().to_string()),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        &json_path,
        "{\n  channels: {\n    telegram: { botToken: \"CANARY-tg\" enabled: true },\n  },\n}\n",
    )
    .unwrap();
    let out = home
        .run(&["import", "openclaw", "--from", &empty.display().to_string()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3:", json_path.display())),
        "{err}"
    );
    assert!(err.contains("line 3, column"), "{err}");
    assert_no_secret(&err);
    assert!(!home.config_path().exists());
    assert!(!home.state_dir().join("agents").exists());
}
