//! Tests of the cooldown math, and of the book on `state.db` where SQLite alone matters
//! (the suite over both stores is tests/state_stores.rs).

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

fn err(status: u16, body: &str, retry: Option<u64>) -> ProviderError {
    classify("p", Some(status), retry.map(Duration::from_secs), body)
}

// The book over both stores: tests/state_stores.rs. Below, what only SQLite has.

#[tokio::test]
async fn a_quiet_success_with_nothing_to_clear_needs_no_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let book = Arc::new(CooldownBook::new(
        StateDb::open(&path).unwrap(),
        CooldownConfig::default(),
    ));
    let rl = err(429, "{}", Some(30));
    book.record_failure("cooled", "f", "m", &rl, 0)
        .await
        .unwrap();
    book.view().await;
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // With the write lock taken elsewhere, a write would wait 5 s and then fail.
    book.record_success_quiet("env:K", &["g".to_string()], "m")
        .await
        .unwrap();
    other.execute_batch("COMMIT").unwrap();
    book.record_success_quiet("cooled", &["f".to_string()], "m")
        .await
        .unwrap();
    assert_eq!(
        book.view().await.standing("cooled", "f", "m", 1),
        None,
        "a cooldown to clear is cleared"
    );
}
