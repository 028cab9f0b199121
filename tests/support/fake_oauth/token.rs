//! `POST /token` of the fake OAuth server (RFC 6749 §3.2, form-encoded,
//! `client_id` in the body): the authorization-code grant with the PKCE check,
//! the refresh grant with rotation and its FIFO script, and the device grant
//! (RFC 8628 §3.4) with its FIFO script. Error bodies never quote a secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::endpoints::{form_problem, missing_client_id, unknown_client};
use super::jwt::{param, parse_pairs, s256_challenge, valid_verifier};
use super::state::{CODE_TTL, DeviceState, State as OAuthState, token_body};
use super::{
    DEVICE_GRANT, DeviceStep, Inner, RefreshBehavior, age, json_response, oauth_error, record,
    stall,
};

type Form = [(String, String)];

pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_pairs(&body);
    record(&inner, &method, &uri, &headers, &form);
    let grant_type = param(&form, "grant_type");
    if grant_type == Some(DEVICE_GRANT) {
        inner.state().device_polls.push(tokio::time::Instant::now());
    }
    if let Some(resp) = form_problem(&headers, &form) {
        return resp;
    }
    let scripted = if grant_type == Some("refresh_token") {
        inner.state().refresh_script.pop_front()
    } else {
        None
    };
    match scripted {
        None | Some(RefreshBehavior::Ok) => {}
        Some(RefreshBehavior::InvalidGrant) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "refresh token refused (scripted)",
            );
        }
        Some(RefreshBehavior::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return oauth_error(status, "server_error", "scripted server error");
        }
        Some(RefreshBehavior::Unauthorized401) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed (scripted)",
            );
        }
        Some(RefreshBehavior::Stall) => return stall(&inner).await,
        Some(RefreshBehavior::Delay(d)) => tokio::time::sleep(d).await,
    }
    let mut s = inner.state();
    match param(&form, "client_id") {
        None => return missing_client_id(),
        Some(id) if id != s.cfg.client_id => return unknown_client(),
        Some(_) => {}
    }
    match grant_type {
        Some("authorization_code") => authorization_code(&mut s, &form),
        Some("refresh_token") => refresh(&mut s, &form),
        Some(DEVICE_GRANT) => device(&mut s, &form),
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type not supported by this server",
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type missing",
        ),
    }
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn ok(s: &OAuthState, tokens: &super::TokenSet) -> Response {
    json_response(
        StatusCode::OK,
        &token_body(tokens, s.cfg.expires_in_as_string),
    )
}

/// RFC 7636 §4.6: the verifier is well formed and its S256 is the challenge;
/// `Err` carries the `error_description` of the `invalid_grant` answer.
fn check_verifier(verifier: Option<&str>, challenge: &str) -> Result<(), &'static str> {
    let Some(verifier) = verifier else {
        return Err("code_verifier missing");
    };
    if !valid_verifier(verifier) {
        return Err(
            "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.1)",
        );
    }
    if s256_challenge(verifier) != challenge {
        return Err("code_verifier does not match the code_challenge");
    }
    Ok(())
}

/// `grant_type=authorization_code`: `code`, `redirect_uri`, `code_verifier`.
/// Any attempt on a known code uses it up, so a retry after a failure fails too.
fn authorization_code(s: &mut OAuthState, form: &Form) -> Response {
    let Some(code) = param(form, "code") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code missing");
    };
    let Some(grant) = s.codes.get_mut(code) else {
        return invalid_grant("authorization code unknown");
    };
    if grant.used {
        return invalid_grant("authorization code already used");
    }
    grant.used = true;
    if age(grant.issued) >= CODE_TTL {
        return invalid_grant("authorization code expired");
    }
    if param(form, "client_id") != Some(grant.client_id.as_str()) {
        return invalid_grant("authorization code was issued to another client");
    }
    if param(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri differs from the one in the authorization request");
    }
    if let Err(why) = check_verifier(param(form, "code_verifier"), &grant.challenge) {
        return invalid_grant(why);
    }
    let (account, scope, client_id) = (
        grant.account.clone(),
        grant.scope.clone(),
        grant.client_id.clone(),
    );
    {
        let tokens = s.new_grant(account, &scope, &client_id);
        ok(s, &tokens)
    }
}

/// `grant_type=refresh_token`: rotates; a replaced, unknown or revoked refresh
/// token is `invalid_grant`.
fn refresh(s: &mut OAuthState, form: &Form) -> Response {
    let Some(token) = param(form, "refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token missing",
        );
    };
    let Some(idx) = s.grant_by_refresh(token) else {
        return invalid_grant("refresh token reused");
    };
    let Some(grant) = s.grants.get(idx) else {
        return invalid_grant("refresh token reused");
    };
    if grant.revoked {
        return invalid_grant("refresh token revoked");
    }
    if param(form, "client_id") != Some(grant.client_id.as_str()) {
        return invalid_grant("refresh token was issued to another client");
    }
    match s.rotate(idx) {
        Some(tokens) => ok(s, &tokens),
        None => invalid_grant("refresh token reused"),
    }
}

/// The device grant: `device_code` (+ `code_verifier` when the device request
/// had a challenge). Polls of a waiting code consume the device script.
fn device(s: &mut OAuthState, form: &Form) -> Response {
    let Some(code) = param(form, "device_code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "device_code missing",
        );
    };
    let Some(grant) = s.devices.get(code) else {
        return invalid_grant("device code unknown");
    };
    if param(form, "client_id") != Some(grant.client_id.as_str()) {
        return invalid_grant("device code was issued to another client");
    }
    match grant.state {
        DeviceState::Done => return invalid_grant("device code already used"),
        DeviceState::Denied => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "access_denied",
                "the user denied the request",
            );
        }
        DeviceState::Waiting => {}
    }
    if age(grant.issued).as_secs() >= grant.expires_in {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "device code expired; start again",
        );
    }
    let code = code.to_string();
    let step = s.device_script.pop_front().unwrap_or(DeviceStep::Approve);
    let Some(grant) = s.devices.get_mut(&code) else {
        return invalid_grant("device code unknown");
    };
    match step {
        DeviceStep::Pending => oauth_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the user has not approved yet",
        ),
        DeviceStep::SlowDown => oauth_error(
            StatusCode::BAD_REQUEST,
            "slow_down",
            "polling too often; add 5 seconds to the interval",
        ),
        DeviceStep::Deny => {
            grant.state = DeviceState::Denied;
            oauth_error(
                StatusCode::BAD_REQUEST,
                "access_denied",
                "the user denied the request",
            )
        }
        DeviceStep::Approve => {
            grant.state = DeviceState::Done;
            if let Some(challenge) = grant.challenge.clone()
                && let Err(why) = check_verifier(param(form, "code_verifier"), &challenge)
            {
                return invalid_grant(why);
            }
            let (scope, client_id) = (grant.scope.clone(), grant.client_id.clone());
            let account = s.account.clone();
            {
                let tokens = s.new_grant(account, &scope, &client_id);
                ok(s, &tokens)
            }
        }
    }
}
