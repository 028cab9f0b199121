//! The fake OAuth server's endpoints other than `/token`: `GET /authorize`
//! (RFC 6749 §4.1.1 with PKCE, RFC 7636), `POST /device/code` (RFC 8628 §3.1),
//! `GET /device` (the verification page), `POST /revoke` (RFC 7009),
//! `GET /userinfo` and the 404 fallback. Each records the request first.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use reqwest::Url;
use serde_json::json;

use super::jwt::{duplicate, param, parse_pairs, valid_challenge};
use super::{
    DEFAULT_SCOPE, Inner, Revocation, is_form, json_response, oauth_error, record, text_response,
};

/// `GET /authorize?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256`
/// → `302 Location: <redirect_uri>?code=<code>&state=<state>`, or 400 with a
/// short text (never a redirect) when anything is wrong.
pub(super) async fn authorize(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = parse_pairs(uri.query().unwrap_or("").as_bytes());
    record(&inner, &method, &uri, &headers, &query);
    let bad = |msg: &str| text_response(StatusCode::BAD_REQUEST, &format!("fake oauth: {msg}"));
    if let Some(name) = duplicate(&query) {
        return bad(&format!("parameter {name} given more than once"));
    }
    if param(&query, "response_type") != Some("code") {
        return bad("response_type must be code");
    }
    let mut s = inner.state();
    let Some(client_id) = param(&query, "client_id") else {
        return bad("client_id missing");
    };
    if client_id != s.cfg.client_id {
        return bad("unknown client_id");
    }
    let Some(redirect_uri) = param(&query, "redirect_uri") else {
        return bad("redirect_uri missing");
    };
    let Some(mut location) = accepted_redirect(redirect_uri, s.cfg.redirect_uri.as_deref()) else {
        return bad("redirect_uri not registered for this client");
    };
    let Some(challenge) = param(&query, "code_challenge") else {
        return bad("code_challenge missing (PKCE is required)");
    };
    if param(&query, "code_challenge_method") != Some("S256") {
        return bad("code_challenge_method must be S256");
    }
    if !valid_challenge(challenge) {
        return bad("code_challenge is not a base64url SHA-256 digest (43 characters)");
    }
    let Some(state) = param(&query, "state") else {
        return bad("state missing");
    };
    let scope = param(&query, "scope").unwrap_or(DEFAULT_SCOPE);
    let code = s.issue_code(challenge, redirect_uri, client_id, scope);
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The redirect URI parsed, when it is the registered one (or, with none
/// registered, an `http` URI on a loopback host without a fragment).
fn accepted_redirect(uri: &str, registered: Option<&str>) -> Option<Url> {
    let url = Url::parse(uri).ok()?;
    let ok = match registered {
        Some(exact) => uri == exact,
        None => {
            url.scheme() == "http"
                && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
                && url.fragment().is_none()
        }
    };
    ok.then_some(url)
}

/// `POST /device/code` (form: `client_id`, `scope`, optional `code_challenge`
/// + `code_challenge_method=S256`) → the RFC 8628 §3.2 body.
pub(super) async fn device_code(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_pairs(&body);
    record(&inner, &method, &uri, &headers, &form);
    if let Some(resp) = form_problem(&headers, &form) {
        return resp;
    }
    let mut s = inner.state();
    match param(&form, "client_id") {
        None => return missing_client_id(),
        Some(id) if id != s.cfg.client_id => return unknown_client(),
        Some(_) => {}
    }
    let challenge = param(&form, "code_challenge");
    if let Some(challenge) = challenge {
        if param(&form, "code_challenge_method") != Some("S256") {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code_challenge_method must be S256",
            );
        }
        if !valid_challenge(challenge) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "code_challenge is not a base64url SHA-256 digest (43 characters)",
            );
        }
    }
    let scope = param(&form, "scope").unwrap_or(DEFAULT_SCOPE).to_string();
    let client_id = s.cfg.client_id.clone();
    let (device_code, user_code) = s.issue_device_code(challenge, &client_id, &scope);
    let verification_uri = format!("{}/device", s.cfg.issuer);
    let complete = format!("{verification_uri}?user_code={user_code}");
    let mut body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": complete,
        "expires_in": s.cfg.device_expires_in,
        "interval": s.cfg.device_interval,
    });
    if s.cfg.device_interval_absent
        && let Some(obj) = body.as_object_mut()
    {
        obj.remove("interval");
    }
    json_response(StatusCode::OK, &body)
}

/// `GET /device`: where a user would type the code.
pub(super) async fn device_page(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&inner, &method, &uri, &headers, &[]);
    text_response(
        StatusCode::OK,
        "fake oauth: enter the code shown by your device",
    )
}

/// `POST /revoke` (form: `token`, optional `token_type_hint`, `client_id`):
/// 200 for any token (RFC 7009 §2.2). A refresh token ends its whole grant; an
/// access token only itself.
pub(super) async fn revoke(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_pairs(&body);
    record(&inner, &method, &uri, &headers, &form);
    if let Some(resp) = form_problem(&headers, &form) {
        return resp;
    }
    let mut s = inner.state();
    match param(&form, "client_id") {
        None => return missing_client_id(),
        Some(id) if id != s.cfg.client_id => return unknown_client(),
        Some(_) => {}
    }
    let Some(token) = param(&form, "token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token missing");
    };
    let token = token.to_string();
    let mut known = false;
    if let Some(i) = s.grant_by_refresh(&token)
        && let Some(g) = s.grants.get_mut(i)
        && !g.revoked
    {
        g.revoked = true;
        known = true;
    } else if s.grant_by_access(&token).is_some() {
        s.revoked_access.insert(token.clone());
        known = true;
    }
    s.revocations.push(Revocation {
        token,
        token_type_hint: param(&form, "token_type_hint").map(String::from),
        known,
    });
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// `GET /userinfo` with `Authorization: Bearer <access token>` →
/// `{"email","sub"}`, or 401 for a token that is unknown, stale, expired or revoked.
pub(super) async fn userinfo(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&inner, &method, &uri, &headers, &[]);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let s = inner.state();
    match token.as_deref().and_then(|t| s.grant_by_access(t)) {
        Some(g) => json_response(
            StatusCode::OK,
            &json!({"email": g.account.email, "sub": g.account.sub}),
        ),
        None => {
            let mut resp = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "access token unknown, expired or revoked",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            resp
        }
    }
}

pub(super) async fn not_found(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&inner, &method, &uri, &headers, &[]);
    text_response(
        StatusCode::NOT_FOUND,
        &format!("fake oauth: no route for {method} {}", uri.path()),
    )
}

/// 400 when a POST body is not a form or repeats a parameter (RFC 6749 §3.2).
pub(super) fn form_problem(headers: &HeaderMap, form: &[(String, String)]) -> Option<Response> {
    if !is_form(headers) {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be application/x-www-form-urlencoded",
        ));
    }
    duplicate(form).map(|name| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("parameter {name} given more than once"),
        )
    })
}

pub(super) fn missing_client_id() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "client_id missing from the form body",
    )
}

pub(super) fn unknown_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client_id",
    )
}
