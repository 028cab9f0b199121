//! Resolving a turn's candidates and deciding the next one (no network): 50 stored
//! profiles, 20 environment keys, a few cooldowns. Target ≤ 10 µs. Then the same with
//! OAuth profiles whose tokens are fresh, each checked by the refresher as a turn does (it
//! must cost nothing measurable), and one OAuth refresh against the loopback fake OAuth
//! server (token request, locked re-read and atomic write of auth-profiles.json).
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

#[path = "../tests/support/fake_oauth/mod.rs"]
#[allow(dead_code)]
mod fake_oauth;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// 50 profiles; with `oauth`, every fifth is an OAuth sign-in whose token is fresh.
fn setup(dir: &std::path::Path, oauth: bool) -> CredentialResolver {
    let fresh = now_ms() + 3_600_000;
    let profiles: Vec<String> = (0..50)
        .map(|i| {
            if oauth && i % 5 == 0 {
                return format!(
                    r#""anthropic:p{i:02}":{{"type":"oauth","access":"sk-ant-oat01-profile-{i:02}","refresh":"r{i}","expires":{fresh},"provider":"anthropic"}}"#
                );
            }
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
    let now = now_ms();
    let rl = classify(
        "anthropic",
        Some(429),
        None,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..5 {
        let secret = remoteclaw::secret::Secret::new(format!("sk-ant-api03-profile-{i:02}"));
        rt.block_on(book.record_failure(
            &format!("anthropic:p{i:02}"),
            secret.fingerprint(),
            "anthropic/claude-sonnet-4-5",
            &rl,
            now,
        ))
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
    let resolver = setup(dir.path(), false);
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

/// The same list with 10 fresh OAuth sign-ins among the profiles (first in the order),
/// and the refresher's check of the credential the turn tries first, as a turn does.
fn bench_fresh_oauth(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let resolver = setup(dir.path(), true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    c.bench_function("resolve_with_10_fresh_oauth_profiles_checked", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = resolver
                    .attempt_list("anthropic", "anthropic/claude-sonnet-4-5", None)
                    .await
                    .unwrap();
                let first = res.attempt_order().next().unwrap();
                assert!(
                    resolver
                        .refresher
                        .before_use(first)
                        .await
                        .unwrap()
                        .is_none()
                );
                res.attempt_order().count()
            })
        })
    });
}

/// One refresh against the loopback fake OAuth server: the lock, the re-read, the token
/// request and the atomic write of the new tokens.
fn bench_refresh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let oauth = rt.block_on(fake_oauth::FakeOAuth::start());
    let dir = tempfile::tempdir().unwrap();
    let tokens = oauth.mint_tokens();
    let path = dir.path().join("auth-profiles.json");
    std::fs::write(
        &path,
        serde_json::json!({"version": 1, "profiles": {"corp:me": {
            "type": "oauth", "provider": "corp", "access": tokens.access_token,
            "refresh": tokens.refresh_token, "expires": now_ms() - 1}}})
        .to_string(),
    )
    .unwrap();
    let config = remoteclaw::config::parse(
        std::path::Path::new("bench.toml"),
        &format!(
            "[models.providers.corp]\nbaseUrl = \"http://127.0.0.1:9/v1\"\napi = \"openai-completions\"\n[models.providers.corp.oauth]\ntokenUrl = \"{}\"\nclientId = \"{}\"\n",
            oauth.token_url(),
            oauth.client_id()
        ),
    )
    .unwrap();
    let config = Arc::new(config);
    let db = StateDb::open(&dir.path().join("state.db")).unwrap();
    let book = Arc::new(CooldownBook::new(db, config.auth.cooldowns.clone()));
    let resolver = CredentialResolver::new(
        config,
        Arc::new(EnvMap::from_pairs(Vec::<(String, String)>::new())),
        path,
        Arc::new(SystemClock),
        book,
    );
    let mut cred = rt
        .block_on(resolver.attempt_list("corp", "corp/m", None))
        .unwrap()
        .attempt_order()
        .next()
        .unwrap()
        .clone();
    c.bench_function("oauth_refresh_against_loopback_fake", |b| {
        b.iter(|| {
            // As after a 401: the token in hand is the file's, so each round refreshes.
            cred = rt
                .block_on(resolver.refresher.after_unauthorized(&cred))
                .unwrap();
        })
    });
    assert!(oauth.refresh_requests() > 0);
}

criterion_group!(benches, bench, bench_fresh_oauth, bench_refresh);
criterion_main!(benches);
