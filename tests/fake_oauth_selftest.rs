//! Self-test of the fake OAuth server in `tests/support/fake_oauth`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::fake_oauth::*;

#[tokio::test]
async fn smoke() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    assert!(f.is_current_access(&t.access_token));
}
