//! Self-test of the fake OAuth server in `tests/support/fake_oauth`: each
//! endpoint driven with plain reqwest (redirects off), asserting the protocol.
//! Authorization code + PKCE and tokens here; refresh, device grant, revoke and
//! userinfo in `fake_oauth_selftest/grants.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fake_oauth_selftest/grants.rs"]
mod grants;
use crate::support;

use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::Value;
use support::fake_oauth::*;

/// RFC 7636 Appendix B verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:1455/auth/callback";

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The query of a well-formed authorization request, as (name, value) pairs.
fn authorize_query(f: &FakeOAuth) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", f.client_id()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid email offline_access".into()),
        ("state", "st-1 &=?".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

async fn get_authorize(f: &FakeOAuth, query: &[(&str, String)]) -> reqwest::Response {
    client()
        .get(f.authorize_url())
        .query(query)
        .send()
        .await
        .unwrap()
}

/// Runs `/authorize` as a signed-in user would and returns the code.
pub async fn login_code(f: &FakeOAuth) -> String {
    let r = get_authorize(f, &authorize_query(f)).await;
    assert_eq!(r.status(), 302);
    let location = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// POSTs a form to `url`; returns the status and the JSON body (Null if none).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn exchange(f: &FakeOAuth, code: &str, verifier: &str) -> (u16, Value) {
    let client_id = f.client_id();
    post_form(
        &f.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", &client_id),
        ],
    )
    .await
}

/// Logs in through `/authorize` + code exchange and returns the token body.
pub async fn login(f: &FakeOAuth) -> Value {
    let code = login_code(f).await;
    let (status, body) = exchange(f, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

#[test]
fn s256_matches_rfc7636_appendix_b() {
    assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
}

#[tokio::test]
async fn authorize_redirects_to_the_callback_with_a_code_and_the_state_echoed() {
    let f = FakeOAuth::start().await;
    let r = get_authorize(&f, &authorize_query(&f)).await;
    assert_eq!(r.status(), 302);
    let location = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            location.scheme(),
            location.authority(),
            location.path()
        ),
        REDIRECT
    );
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs[1], ("state".into(), "st-1 &=?".into()));
    assert_eq!(pairs[0].0, "code");
    assert!(pairs[0].1.starts_with("CANARYCODE"));
    assert_eq!(f.codes_issued(), vec![pairs[0].1.clone()]);
    let recorded = &f.requests_to("/authorize")[0];
    assert_eq!(recorded.field("code_challenge"), Some(CHALLENGE));
    assert_eq!(recorded.field("state"), Some("st-1 &=?"));
}

#[tokio::test]
async fn authorize_answers_400_without_a_redirect_on_bad_input() {
    let f = FakeOAuth::start().await;
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("client_id", Some("someone-else")),
        ("client_id", None),
        ("code_challenge_method", Some("plain")),
        ("code_challenge_method", None),
        ("code_challenge", None),
        ("code_challenge", Some("too-short")),
        ("state", None),
        ("state", Some("")),
        ("response_type", Some("token")),
        ("redirect_uri", Some("https://evil.example/callback")),
        (
            "redirect_uri",
            Some("http://192.168.1.5:1455/auth/callback"),
        ),
        ("redirect_uri", None),
    ];
    for (name, value) in cases {
        let mut q = authorize_query(&f);
        q.retain(|(k, _)| *k != name);
        if let Some(v) = value {
            q.push((name, v.to_string()));
        }
        let r = get_authorize(&f, &q).await;
        assert_eq!(r.status(), 400, "{name}={value:?}");
        assert!(r.headers().get("location").is_none(), "{name}={value:?}");
        assert!(r.text().await.unwrap().starts_with("fake oauth: "));
    }
    let mut q = authorize_query(&f);
    q.push(("state", "second".into()));
    assert_eq!(get_authorize(&f, &q).await.status(), 400, "duplicate state");
    assert!(f.codes_issued().is_empty());
}

#[tokio::test]
async fn a_registered_redirect_uri_is_the_only_one_accepted() {
    let f = FakeOAuth::start().await;
    f.set_redirect_uri(Some("http://localhost:1455/auth/callback"));
    assert_eq!(get_authorize(&f, &authorize_query(&f)).await.status(), 400);
    let mut q = authorize_query(&f);
    q.retain(|(k, _)| *k != "redirect_uri");
    q.push(("redirect_uri", "http://localhost:1455/auth/callback".into()));
    let r = get_authorize(&f, &q).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("http://localhost:1455/auth/callback?code=CANARYCODE"));
}

#[tokio::test]
async fn code_exchange_returns_jwt_shaped_tokens_with_the_account_claims() {
    let f = FakeOAuth::start().await;
    let body = login(&f).await;
    assert_eq!(s(&body, "token_type"), "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(s(&body, "scope"), "openid email offline_access");
    let (access, refresh) = (s(&body, "access_token"), s(&body, "refresh_token"));
    assert!(access.contains("CANARYACCESS") && refresh.starts_with("CANARYREFRESH"));
    assert!(s(&body, "id_token").contains("CANARYIDTOKEN"));

    let id = jwt_claims(&s(&body, "id_token")).unwrap();
    assert_eq!(id["email"], DEFAULT_EMAIL);
    assert_eq!(id["sub"], format!("user-{DEFAULT_ACCOUNT_ID}"));
    assert_eq!(id[ACCOUNT_CLAIM]["chatgpt_account_id"], DEFAULT_ACCOUNT_ID);
    let claims = jwt_claims(&access).unwrap();
    assert_eq!(
        claims[ACCOUNT_CLAIM]["chatgpt_account_id"],
        DEFAULT_ACCOUNT_ID
    );
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);

    assert!(f.is_current_access(&access) && f.is_current_refresh(&refresh));
    assert_eq!(f.access_tokens_issued(), vec![access]);
    assert_eq!(f.refresh_tokens_issued(), vec![refresh]);
    assert_eq!(f.grant_count("authorization_code"), 1);
}

#[tokio::test]
async fn token_responses_are_not_cacheable() {
    let f = FakeOAuth::start().await;
    let code = login_code(&f).await;
    let client_id = f.client_id();
    let r = client()
        .post(f.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_wrong_verifier_fails_the_s256_check_and_uses_up_the_code() {
    let f = FakeOAuth::start().await;
    let code = login_code(&f).await;
    let wrong = "x".repeat(43);
    let (status, body) = exchange(&f, &code, &wrong).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
    assert!(s(&body, "error_description").contains("does not match"));
    let (status, body) = exchange(&f, &code, VERIFIER).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));

    let code = login_code(&f).await;
    let (status, body) = exchange(&f, &code, "short").await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
    assert!(f.access_tokens_issued().is_empty());
}

#[tokio::test]
async fn an_authorization_code_is_single_use() {
    let f = FakeOAuth::start().await;
    let code = login_code(&f).await;
    assert_eq!(exchange(&f, &code, VERIFIER).await.0, 200);
    let (status, body) = exchange(&f, &code, VERIFIER).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
    assert_eq!(f.access_tokens_issued().len(), 1);
    let (status, body) = exchange(&f, "CANARYCODE999999", VERIFIER).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));
}

#[tokio::test]
async fn code_exchange_checks_redirect_uri_and_client_id() {
    let f = FakeOAuth::start().await;
    let code = login_code(&f).await;
    let client_id = f.client_id();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9999/other"),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let (status, body) = post_form(&f.token_url(), &form).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant".into()));

    let code = login_code(&f).await;
    form[1].1 = &code;
    form[2].1 = REDIRECT;
    form[4].1 = "someone-else";
    let (status, body) = post_form(&f.token_url(), &form).await;
    assert_eq!((status, s(&body, "error")), (401, "invalid_client".into()));
    form.pop();
    // client_id only in an Authorization header does not count: it goes in the body.
    let r = client()
        .post(f.token_url())
        .basic_auth(&client_id, None::<&str>)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(s(&body, "error"), "invalid_request");
    assert!(s(&body, "error_description").contains("client_id"));
}

#[tokio::test]
async fn the_token_endpoint_takes_only_well_formed_forms() {
    let f = FakeOAuth::start().await;
    let json = serde_json::json!({"grant_type": "refresh_token", "client_id": f.client_id()});
    let r = client()
        .post(f.token_url())
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s(&r.json().await.unwrap(), "error"), "invalid_request");

    let id = f.client_id();
    let dup = [
        ("grant_type", "refresh_token"),
        ("grant_type", "password"),
        ("client_id", &id),
    ];
    let (status, body) = post_form(&f.token_url(), &dup).await;
    assert_eq!((status, s(&body, "error")), (400, "invalid_request".into()));

    let (status, body) = post_form(
        &f.token_url(),
        &[("grant_type", "password"), ("client_id", &id)],
    )
    .await;
    assert_eq!(
        (status, s(&body, "error")),
        (400, "unsupported_grant_type".into())
    );
    let (status, _) = post_form(&format!("{}/nope", f.url()), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(f.requests().len(), 4, "every request is recorded");
    assert_eq!(
        f.refresh_requests(),
        1,
        "the duplicated form counts; the JSON body has no form fields"
    );
}
