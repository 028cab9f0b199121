//! Tests of the cooldown math and the book (blocking and turn paths).

use super::*;
use crate::providers::error::classify;

const BACKOFF: [u64; 4] = [60, 300, 1500, 3600];

#[test]
fn rate_limit_math() {
    assert_eq!(rate_limit_until(0, None, &BACKOFF, 1000), (1, 61_000));
    assert_eq!(rate_limit_until(1, None, &BACKOFF, 0), (2, 300_000));
    assert_eq!(rate_limit_until(2, None, &BACKOFF, 0), (3, 1_500_000));
    assert_eq!(rate_limit_until(3, None, &BACKOFF, 0), (4, 3_600_000));
    assert_eq!(
        rate_limit_until(9, None, &BACKOFF, 0),
        (10, 3_600_000),
        "stays at the last step"
    );
    assert_eq!(
        rate_limit_until(3, Some(Duration::from_millis(1500)), &BACKOFF, 10),
        (4, 1510),
        "retry-after wins"
    );
}

#[test]
fn billing_math() {
    let h = 3_600_000;
    assert_eq!(billing_until(0, 5, 24, 0), (1, 5 * h));
    assert_eq!(billing_until(1, 5, 24, 0), (2, 10 * h));
    assert_eq!(billing_until(2, 5, 24, 0), (3, 20 * h));
    assert_eq!(billing_until(3, 5, 24, 0), (4, 24 * h));
    assert_eq!(billing_until(60, 5, 24, 0), (61, 24 * h));
}

fn book() -> (CooldownBook, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join("state.db")).unwrap();
    (CooldownBook::new(db, CooldownConfig::default()), dir)
}

fn err(status: u16, body: &str, retry: Option<u64>) -> ProviderError {
    classify("p", Some(status), retry.map(Duration::from_secs), body)
}

#[test]
fn rate_limits_are_per_model_and_reset_on_success() {
    let (b, _d) = book();
    let rl = err(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        None,
    );
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 0)
        .unwrap();
    assert_eq!(
        b.standing("env:K", "fp1", "anthropic/a", 1),
        Some(Standing {
            reason: Reason::RateLimit,
            until: 60_000
        })
    );
    assert_eq!(
        b.standing("env:K", "fp1", "anthropic/b", 1),
        None,
        "other models are unaffected"
    );
    assert_eq!(
        b.standing("env:K", "fp2", "anthropic/a", 1),
        None,
        "a new secret starts clean"
    );
    assert_eq!(
        b.standing("env:K", "fp1", "anthropic/a", 60_000),
        None,
        "expires on its own"
    );
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 70_000)
        .unwrap();
    assert_eq!(
        b.standing("env:K", "fp1", "anthropic/a", 70_001)
            .map(|s| s.until),
        Some(370_000),
        "second step is 5 min"
    );
    b.record_success("env:K", "anthropic/a", 80_000).unwrap();
    assert_eq!(b.standing("env:K", "fp1", "anthropic/a", 80_001), None);
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 90_000)
        .unwrap();
    assert_eq!(
        b.standing("env:K", "fp1", "anthropic/a", 90_001)
            .map(|s| s.until),
        Some(150_000),
        "count was reset"
    );
    assert_eq!(b.last_used("env:K"), Some(90_000));
}

#[test]
fn quota_billing_and_auth_disable_the_credential() {
    let (b, _d) = book();
    let quota = err(
        429,
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        None,
    );
    let s = b
        .record_failure("openai:a", "f", "openai/x", &quota, 0)
        .unwrap()
        .unwrap();
    assert_eq!((s.reason, s.until), (Reason::Quota, 5 * 3_600_000));
    assert_eq!(
        b.standing("openai:a", "f", "openai/other", 1)
            .map(|s| s.reason),
        Some(Reason::Quota),
        "credential-wide"
    );
    let billing = err(402, r#"{"error":{"message":"Insufficient credits"}}"#, None);
    assert_eq!(
        b.record_failure("or:b", "f", "m", &billing, 0)
            .unwrap()
            .map(|s| s.reason),
        Some(Reason::Billing)
    );
    let auth = err(
        401,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        None,
    );
    assert_eq!(
        b.record_failure("k", "f", "m", &auth, 0)
            .unwrap()
            .map(|s| s.until),
        Some(FOREVER)
    );
    let fmt = err(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
        None,
    );
    assert_eq!(
        b.record_failure("z", "f", "m", &fmt, 0).unwrap(),
        None,
        "format errors do not set a credential aside"
    );
    assert_eq!(b.list(1).unwrap().len(), 3);
    assert_eq!(b.clear(Some("k")).unwrap(), 1);
    assert_eq!(b.clear(None).unwrap(), 2);
    assert!(b.list(1).unwrap().is_empty());
}

#[test]
fn another_process_sees_the_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = CooldownBook::new(StateDb::open(&path).unwrap(), CooldownConfig::default());
    let b = CooldownBook::new(StateDb::open(&path).unwrap(), CooldownConfig::default());
    assert_eq!(b.standing("k", "f", "m", 1), None);
    a.record_failure("k", "f", "m", &err(429, "{}", Some(30)), 0)
        .unwrap();
    assert_eq!(b.standing("k", "f", "m", 1).map(|s| s.until), Some(30_000));
    b.clear(None).unwrap();
    assert_eq!(a.standing("k", "f", "m", 1), None);
}

#[tokio::test]
async fn a_turn_sees_its_own_records_at_once_and_other_processes_after_a_recheck() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let hour = Duration::from_secs(3600);
    let a = Arc::new(
        CooldownBook::new(StateDb::open(&path).unwrap(), CooldownConfig::default())
            .with_recheck(hour),
    );
    let b = CooldownBook::new(StateDb::open(&path).unwrap(), CooldownConfig::default());
    assert_eq!(a.view_async().await.standing("k", "f", "m", 1), None);
    let rl = err(429, "{}", Some(30));
    a.record_failure_async("k", "f", "m", &rl, 0).await.unwrap();
    assert_eq!(
        a.view_async()
            .await
            .standing("k", "f", "m", 1)
            .map(|s| s.until),
        Some(30_000),
        "own records at once"
    );
    b.record_failure("j", "f", "m", &rl, 0).unwrap();
    assert_eq!(
        a.view_async().await.standing("j", "f", "m", 1),
        None,
        "another process's record waits for the next check"
    );
    let fresh = Arc::new(
        CooldownBook::new(StateDb::open(&path).unwrap(), CooldownConfig::default())
            .with_recheck(Duration::ZERO),
    );
    fresh.view_async().await;
    b.clear(Some("k")).unwrap();
    assert_eq!(
        fresh.view_async().await.standing("k", "f", "m", 1),
        None,
        "a due check reloads"
    );
    a.record_success_async("k", "m", 5).await.unwrap();
    assert_eq!(a.view_async().await.last_used("k"), Some(5));
}

#[tokio::test]
async fn a_quiet_success_with_nothing_to_clear_needs_no_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let book = Arc::new(CooldownBook::new(
        StateDb::open(&path).unwrap(),
        CooldownConfig::default(),
    ));
    let rl = err(429, "{}", Some(30));
    book.record_failure_async("cooled", "f", "m", &rl, 0)
        .await
        .unwrap();
    book.view_async().await;
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // With the write lock taken elsewhere, a write would wait 5 s and then fail.
    book.record_success_quiet_async("env:K", "m").await.unwrap();
    other.execute_batch("COMMIT").unwrap();
    book.record_success_quiet_async("cooled", "m")
        .await
        .unwrap();
    assert_eq!(
        book.view_async().await.standing("cooled", "f", "m", 1),
        None,
        "a cooldown to clear is cleared"
    );
}
