//! Self-test of the fake OAuth server, part two: refresh rotation and its
//! script, the device grant, revocation, userinfo and accounts.

use std::time::Duration;

use serde_json::Value;

use super::support::fake_oauth::*;
use super::{VERIFIER, client, login, post_form, s};

async fn refresh(f: &FakeOAuth, token: &str) -> (u16, Value) {
    let id = f.client_id();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", &id),
    ];
    post_form(&f.token_url(), &form).await
}

async fn userinfo(f: &FakeOAuth, access: &str) -> (u16, Value) {
    let r = client()
        .get(f.userinfo_url())
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_is_invalid_grant() {
    let f = FakeOAuth::start().await;
    let first = f.mint_tokens();
    let (status, body) = refresh(&f, &first.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let (access, rotated) = (s(&body, "access_token"), s(&body, "refresh_token"));
    assert_ne!(rotated, first.refresh_token);
    assert!(rotated.starts_with("CANARYREFRESH") && access.contains("CANARYACCESS"));
    assert!(f.is_current_access(&access) && !f.is_current_access(&first.access_token));
    assert!(!f.is_current_refresh(&first.refresh_token));

    let (status, body) = refresh(&f, &first.refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_grant", "error_description": "refresh token reused"})
    );
    let (status, _) = refresh(&f, "CANARYREFRESH424242").await;
    assert_eq!(status, 400, "unknown refresh token");
    assert_eq!(
        refresh(&f, &rotated).await.0,
        200,
        "the rotated one still works"
    );
    assert_eq!(f.refresh_requests(), 4);
    assert_eq!(
        f.requests_to("/token")[0].field("refresh_token"),
        Some(first.refresh_token.as_str())
    );
}

#[tokio::test]
async fn scripted_refresh_failures_answer_the_next_refreshes_in_order() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    f.script_refresh([
        RefreshBehavior::ServerError(500),
        RefreshBehavior::InvalidGrant,
        RefreshBehavior::Unauthorized401,
        RefreshBehavior::ServerError(503),
    ]);
    super::login(&f).await; // a code exchange does not consume the refresh script
    assert_eq!(f.pending_refresh_script(), 4);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (status, body) = refresh(&f, &t.refresh_token).await;
        seen.push((status, s(&body, "error")));
    }
    let expected = [
        (500, "server_error"),
        (400, "invalid_grant"),
        (401, "invalid_client"),
        (503, "server_error"),
        (200, ""),
    ];
    let expected: Vec<(u16, String)> = expected.iter().map(|(c, e)| (*c, e.to_string())).collect();
    assert_eq!(seen, expected, "failures leave the refresh token valid");
    assert_eq!((f.refresh_requests(), f.pending_refresh_script()), (5, 0));
}

#[tokio::test]
async fn a_stalled_refresh_never_answers_until_the_server_is_dropped() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    f.script_refresh([RefreshBehavior::Stall]);
    let (url, id) = (f.token_url(), f.client_id());
    let pending = tokio::spawn(async move {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", t.refresh_token.as_str()),
            ("client_id", &id),
        ];
        client().post(url).form(&form).send().await
    });
    while f.refresh_requests() == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!pending.is_finished());
    drop(f);
    let res = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_err(), "the stalled request is cut, not answered");
}

async fn device_code(f: &FakeOAuth, challenge: Option<&str>) -> Value {
    let id = f.client_id();
    let mut form = vec![
        ("client_id", id.as_str()),
        ("scope", "openid offline_access"),
    ];
    if let Some(c) = challenge {
        form.extend([("code_challenge", c), ("code_challenge_method", "S256")]);
    }
    let (status, body) = post_form(&f.device_authorization_url(), &form).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(f: &FakeOAuth, device_code: &str, verifier: Option<&str>) -> (u16, Value) {
    let id = f.client_id();
    let mut form = vec![
        ("grant_type", DEVICE_GRANT),
        ("device_code", device_code),
        ("client_id", &id),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    post_form(&f.token_url(), &form).await
}

#[tokio::test(start_paused = true)]
async fn device_flow_goes_pending_slow_down_pending_then_tokens() {
    let f = FakeOAuth::start().await;
    f.script_device(vec![
        DeviceStep::Pending,
        DeviceStep::SlowDown,
        DeviceStep::Pending,
        DeviceStep::Approve,
    ]);
    let body = device_code(&f, Some(&s256_challenge(VERIFIER))).await;
    let code = s(&body, "device_code");
    assert!(code.starts_with("CANARYDEVICE"));
    assert_eq!(s(&body, "verification_uri"), f.verification_uri());
    assert!(
        s(&body, "verification_uri_complete")
            .ends_with(&format!("?user_code={}", s(&body, "user_code")))
    );
    assert_eq!(
        (body["interval"].as_u64(), body["expires_in"].as_u64()),
        (Some(5), Some(900))
    );

    f.set_account("bob@example.com", "acct-bob"); // approval binds the account signed in then
    let mut interval = Duration::from_secs(5);
    let mut errors = Vec::new();
    let tokens = loop {
        tokio::time::sleep(interval).await;
        let (status, body) = poll(&f, &code, Some(VERIFIER)).await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 400);
        if s(&body, "error") == "slow_down" {
            interval += Duration::from_secs(5);
        }
        errors.push(s(&body, "error"));
    };
    assert_eq!(
        errors,
        [
            "authorization_pending",
            "slow_down",
            "authorization_pending"
        ]
    );
    let claims = jwt_claims(&s(&tokens, "id_token")).unwrap();
    assert_eq!(claims["email"], "bob@example.com");
    let polls = f.device_polls();
    let gaps: Vec<u64> = polls.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!((f.device_poll_count(), gaps), (4, vec![5, 10, 10]));
    assert_eq!(f.grant_count(DEVICE_GRANT), 4);
    let (status, body) = poll(&f, &code, Some(VERIFIER)).await;
    assert_eq!(
        (status, s(&body, "error")),
        (400, "invalid_grant".into()),
        "a device code is single-use"
    );
}

#[tokio::test]
async fn a_device_code_with_a_challenge_needs_the_verifier() {
    let f = FakeOAuth::start().await;
    let code = s(
        &device_code(&f, Some(&s256_challenge(VERIFIER))).await,
        "device_code",
    );
    let (status, body) = poll(&f, &code, None).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
    let code = s(&device_code(&f, None).await, "device_code");
    assert_eq!(
        poll(&f, &code, None).await.0,
        200,
        "no challenge, no verifier needed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_device_code_expires_after_expires_in_and_a_denial_sticks() {
    let f = FakeOAuth::start().await;
    f.set_device_expires_in(30);
    f.set_device_interval(2);
    let body = device_code(&f, None).await;
    assert_eq!(
        (body["interval"].as_u64(), body["expires_in"].as_u64()),
        (Some(2), Some(30))
    );
    f.script_device([DeviceStep::Pending, DeviceStep::Pending]);
    assert_eq!(
        s(&poll(&f, &s(&body, "device_code"), None).await.1, "error"),
        "authorization_pending"
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let (status, err) = poll(&f, &s(&body, "device_code"), None).await;
    assert_eq!((status, s(&err, "error")), (400, "expired_token".into()));
    assert_eq!(
        f.pending_device_script(),
        1,
        "an expired poll consumes no step"
    );

    f.script_device([DeviceStep::Deny]);
    let code = s(&device_code(&f, None).await, "device_code");
    assert_eq!(
        s(&poll(&f, &code, None).await.1, "error"),
        "authorization_pending"
    );
    assert_eq!(s(&poll(&f, &code, None).await.1, "error"), "access_denied");
    assert_eq!(s(&poll(&f, &code, None).await.1, "error"), "access_denied");
}

async fn revoke(f: &FakeOAuth, token: &str, hint: &str) -> u16 {
    let id = f.client_id();
    let form = [
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", &id),
    ];
    post_form(&f.revoke_url(), &form).await.0
}

#[tokio::test]
async fn a_revoked_refresh_token_ends_its_grant() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    assert_eq!(revoke(&f, &t.refresh_token, "refresh_token").await, 200);
    let (status, body) = refresh(&f, &t.refresh_token).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
    assert!(!f.is_current_access(&t.access_token));
    assert_eq!(userinfo(&f, &t.access_token).await.0, 401);
    assert_eq!(
        revoke(&f, "CANARYREFRESH777777", "refresh_token").await,
        200,
        "RFC 7009: unknown tokens too"
    );
    let revoked = f.revocations();
    assert_eq!(
        (revoked[0].token.as_str(), revoked[0].known),
        (t.refresh_token.as_str(), true)
    );
    assert_eq!(revoked[0].token_type_hint.as_deref(), Some("refresh_token"));
    assert!(!revoked[1].known);
    let (status, _) = post_form(&f.revoke_url(), &[("token", t.refresh_token.as_str())]).await;
    assert_eq!(status, 400, "client_id is required");
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    assert_eq!(revoke(&f, &t.access_token, "access_token").await, 200);
    assert!(!f.is_current_access(&t.access_token));
    assert_eq!(userinfo(&f, &t.access_token).await.0, 401);
    assert_eq!(refresh(&f, &t.refresh_token).await.0, 200);
}

#[tokio::test]
async fn userinfo_answers_for_current_access_tokens_only() {
    let f = FakeOAuth::start().await;
    let t = f.mint_tokens();
    let (status, body) = userinfo(&f, &t.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"email": DEFAULT_EMAIL, "sub": t.account.sub})
    );
    let r = client()
        .get(f.userinfo_url())
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(
        client()
            .get(f.userinfo_url())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    f.expire_access_tokens();
    assert_eq!(userinfo(&f, &t.access_token).await.0, 401);
    assert!(f.is_current_refresh(&t.refresh_token));
}

#[tokio::test(start_paused = true)]
async fn expires_in_is_configurable_and_access_tokens_expire_in_tokio_time() {
    let f = FakeOAuth::start().await;
    f.set_expires_in(120);
    let body = login(&f).await;
    assert_eq!(body["expires_in"], 120);
    let access = s(&body, "access_token");
    let claims = jwt_claims(&access).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(f.is_current_access(&access));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!f.is_current_access(&access));
}

#[tokio::test]
async fn two_accounts_sign_in_as_two_users() {
    let f = FakeOAuth::start().await;
    let alice = login(&f).await;
    f.set_account("bob@example.com", "acct-bob");
    let bob = login(&f).await;
    let claims = |v: &Value, k: &str| jwt_claims(&s(v, k)).unwrap();
    assert_eq!(claims(&alice, "id_token")["email"], DEFAULT_EMAIL);
    assert_eq!(claims(&bob, "id_token")["email"], "bob@example.com");
    assert_eq!(
        claims(&bob, "access_token")[ACCOUNT_CLAIM]["chatgpt_account_id"],
        "acct-bob"
    );
    // A refresh keeps the grant's own account, whoever is signed in now.
    let (_, renewed) = refresh(&f, &s(&alice, "refresh_token")).await;
    assert_eq!(
        claims(&renewed, "access_token")[ACCOUNT_CLAIM]["chatgpt_account_id"],
        DEFAULT_ACCOUNT_ID
    );
    assert_eq!(f.account(), Account::new("bob@example.com", "acct-bob"));
}
