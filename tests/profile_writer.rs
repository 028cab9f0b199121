//! `auth::profile_writer` across processes: two processes each applying 500 updates to one
//! auth-profiles.json → valid JSON, all 1,000 updates present, mode 0600, no temp files left;
//! and unknown keys surviving repeated writes.
//!
//! The second process is this test binary itself, re-run with `--exact profile_writer::child_writer
//! --ignored`: `child_writer` does nothing unless `RC_WRITER_PATH` and `RC_WRITER_ID` are set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use remoteclaw::auth::profile_writer::{put_profile, remove_profile, set_order};
use remoteclaw::auth::profiles::{ProfileCredential, ProfileStore};
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const PER_CHILD: usize = 500;

#[test]
#[ignore = "helper process for concurrent_writers"]
fn child_writer() {
    let (Ok(path), Ok(id)) = (
        std::env::var("RC_WRITER_PATH"),
        std::env::var("RC_WRITER_ID"),
    ) else {
        return;
    };
    let path = Path::new(&path);
    let start = epoch_ms();
    for n in 0..PER_CHILD {
        put_profile(
            path,
            &format!("{id}:{n}"),
            json!({ "type": "api_key", "provider": "p", "key": format!("k-{id}-{n}") }),
        )
        .unwrap_or_else(|e| panic!("child {id}, update {n}: {e}"));
    }
    println!(
        "child {id} wrote {PER_CHILD} profiles from {start} to {}",
        epoch_ms()
    );
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// `(start, end)` in epoch ms from a child's report line.
fn window(stdout: &str, id: &str) -> (u128, u128) {
    let prefix = format!("child {id} wrote {PER_CHILD} profiles from ");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("child {id} did not run the writer:\n{stdout}"));
    let (start, end) = line.split_once(" to ").unwrap();
    (start.parse().unwrap(), end.parse().unwrap())
}

#[test]
fn concurrent_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agents/main/agent");
    let path = dir.join("auth-profiles.json");
    let exe = std::env::current_exe().unwrap();

    let started = Instant::now();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            let child = Command::new(&exe)
                .args([
                    "--exact",
                    "profile_writer::child_writer",
                    "--ignored",
                    "--nocapture",
                ])
                .env("RC_WRITER_PATH", &path)
                .env("RC_WRITER_ID", id)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (id, child)
        })
        .collect();
    let mut windows = Vec::new();
    for (id, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child {id} failed: {}\n{stdout}\n{stderr}",
            out.status
        );
        // Also guards against a filter that matched no test (which would exit 0 too).
        windows.push(window(&stdout, id));
    }
    // The two writers really ran at the same time.
    let (a, b) = (windows[0], windows[1]);
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "the children did not overlap: {a:?} {b:?}"
    );
    let elapsed = started.elapsed();
    println!(
        "concurrent_writers: 2 processes x {PER_CHILD} updates in {:.2?}",
        elapsed
    );

    let text = std::fs::read_to_string(&path).unwrap();
    let store = ProfileStore::parse(&path, &text).unwrap();
    assert!(store.warnings.is_empty(), "{:?}", store.warnings);
    assert_eq!(store.profiles.len(), 2 * PER_CHILD);
    for id in ["a", "b"] {
        for n in 0..PER_CHILD {
            let pid = format!("{id}:{n}");
            let profile = store
                .profiles
                .get(&pid)
                .unwrap_or_else(|| panic!("{pid} lost"));
            assert_eq!(profile.provider, "p");
            let ProfileCredential::ApiKey { key: Some(key), .. } = &profile.credential else {
                panic!("{pid} is not an api_key profile with a key");
            };
            assert_eq!(key.expose(), format!("k-{id}-{n}"));
        }
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["version"], json!(1));

    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auth-profiles.json",
            "auth-profiles.json.bak",
            "auth-profiles.json.lock"
        ],
        "unexpected files (temp files left behind?)"
    );
    // The backup is the version before the last write: one profile fewer.
    let bak = ProfileStore::load(&dir.join("auth-profiles.json.bak")).unwrap();
    assert_eq!(bak.profiles.len(), 2 * PER_CHILD - 1);
}

#[test]
fn unknown_keys_survive_repeated_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("auth-profiles.json");
    let usage = json!({
        "anthropic:work": { "lastUsed": 1767225600000u64, "errorCount": 2, "cooldownUntil": 0 },
        "notes": ["kept", { "as": "is" }]
    });
    let legacy = json!({
        "type": "oauth", "provider": "openai", "access": "acc", "refresh": "ref",
        "expires": 1767225600000u64, "accountId": "acct-1", "scopes": ["a", "b"]
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({
            "version": 1,
            "profiles": { "openai:oauth": legacy },
            "usageStats": usage,
            "lastGood": { "openai": "openai:oauth" }
        }))
        .unwrap(),
    )
    .unwrap();

    for n in 0..10 {
        match n % 3 {
            0 => put_profile(
                &path,
                &format!("anthropic:{n}"),
                json!({ "type": "token", "provider": "anthropic", "token": format!("t{n}"), "expires": 0 }),
            )
            .unwrap(),
            1 => set_order(
                &path,
                "anthropic",
                Some(vec![format!("anthropic:{}", n - 1)]),
            )
            .unwrap(),
            _ => {
                assert!(remove_profile(&path, &format!("anthropic:{}", n - 2)).unwrap());
            }
        }
    }

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["usageStats"], usage);
    assert_eq!(doc["lastGood"], json!({ "openai": "openai:oauth" }));
    assert_eq!(doc["profiles"]["openai:oauth"], legacy);
    assert_eq!(doc["profiles"]["anthropic:9"]["token"], json!("t9"));
    ProfileStore::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
}
