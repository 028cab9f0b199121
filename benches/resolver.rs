//! Resolving a turn's candidates and deciding the next one (no network): 50 stored
//! profiles, 20 environment keys, a few cooldowns. Target ≤ 10 µs.
//!
//! Run: `cargo bench --bench resolver`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use remoteclaw::auth::CredentialResolver;
use remoteclaw::auth::cooldown::CooldownBook;
use remoteclaw::clock::SystemClock;
use remoteclaw::config::env::EnvMap;
use remoteclaw::providers::error::classify;
use remoteclaw::state::StateDb;
use std::sync::Arc;

fn setup(dir: &std::path::Path) -> CredentialResolver {
    let profiles: Vec<String> = (0..50)
        .map(|i| {
            let kind = if i % 5 == 0 { r#""type":"token","token""# } else { r#""type":"api_key","key""# };
            format!(r#""anthropic:p{i:02}":{{{kind}:"sk-ant-api03-profile-{i:02}","provider":"anthropic"}}"#)
        })
        .collect();
    let path = dir.join("auth-profiles.json");
    std::fs::write(
        &path,
        format!(r#"{{"version":1,"profiles":{{{}}}}}"#, profiles.join(",")),
    )
    .unwrap();
    let mut env: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("ANTHROPIC_API_KEY_{i:02}"),
                format!("sk-ant-api03-env-{i:02}"),
            )
        })
        .collect();
    env.push(("PATH".into(), "/usr/bin".into()));
    let config = Arc::new(remoteclaw::config::Config::default());
    let db = StateDb::open(&dir.join("state.db")).unwrap();
    let book = Arc::new(CooldownBook::new(db, config.auth.cooldowns.clone()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let rl = classify(
        "anthropic",
        Some(429),
        None,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
    );
    for i in 0..5 {
        let secret = remoteclaw::secret::Secret::new(format!("sk-ant-api03-profile-{i:02}"));
        book.record_failure(
            &format!("anthropic:p{i:02}"),
            secret.fingerprint(),
            "anthropic/claude-sonnet-4-5",
            &rl,
            now,
        )
        .unwrap();
    }
    CredentialResolver::new(
        config,
        Arc::new(EnvMap::from_pairs(env)),
        path,
        Arc::new(SystemClock),
        book,
    )
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let resolver = setup(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let res = rt
        .block_on(resolver.attempt_list("anthropic", "anthropic/claude-sonnet-4-5", None))
        .unwrap();
    let list: Vec<_> = res.attempt_order().collect();
    assert_eq!(res.candidates.len(), 70);
    assert_eq!(list.len(), 70);
    assert_eq!(
        &*list[0].id, "anthropic:p05",
        "tokens first, cooling ones at the back"
    );
    c.bench_function("resolve_50_profiles_20_env_keys", |b| {
        b.iter(|| {
            rt.block_on(resolver.attempt_list("anthropic", "anthropic/claude-sonnet-4-5", None))
                .map(|r| r.attempt_order().count())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
