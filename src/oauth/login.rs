//! Signing in (DESIGN §5a "Login"): the authorization code grant with PKCE (RFC 7636,
//! S256) and a loopback callback, the same with the redirect pasted by hand (headless
//! hosts), and the device authorization grant (RFC 8628). Each ends with the token
//! response as [`Granted`]; storing it is the caller's business.
//!
//! Codes, verifiers and tokens never reach the output: the user sees the authorize URL
//! (which carries only the public challenge and the state), the verification URL and the
//! user code.

use super::preset::Endpoints;
use super::tokens::{self, Granted, Recorder, TokenError};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope,
    StandardDeviceAuthorizationResponse,
};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the loopback callback waits for the browser.
pub const CALLBACK_WAIT: Duration = Duration::from_secs(300);

/// The shortest wait between two device-grant polls, whatever interval the server
/// gives (an `interval` of 0 would otherwise poll in a tight loop).
pub const MIN_DEVICE_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    Failed(String),
}

/// A started authorization-code sign-in: the URL to open and what checks the answer.
pub struct CodeLogin {
    pub url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    redirect: String,
}

impl std::fmt::Debug for CodeLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeLogin")
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

/// Build the authorize URL for a callback on `redirect`.
pub fn start_code_login(ep: &Endpoints, redirect: &str) -> Result<CodeLogin, LoginError> {
    if ep.authorize_url.is_none() {
        return Err(LoginError::Failed(format!(
            "provider {} has no authorizeUrl: sign in with --device, or set [models.providers.{}.oauth] authorizeUrl",
            ep.provider, ep.provider
        )));
    }
    let client = tokens::client(ep, Some(redirect))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .map_err(|e| LoginError::Failed(e.to_string()))?
        .add_scopes(ep.scopes.iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge);
    for (k, v) in &ep.authorize_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (url, state) = req.url();
    Ok(CodeLogin {
        url: url.to_string(),
        state,
        verifier,
        redirect: redirect.to_string(),
    })
}

impl CodeLogin {
    /// The code from what the user pasted: the whole redirect URL (its `state` must be
    /// this sign-in's) or the bare code.
    pub fn code_from_paste(&self, line: &str) -> Result<String, LoginError> {
        let line = line.trim();
        if line.is_empty() {
            return Err(LoginError::Failed(
                "nothing was pasted; run the command again and paste the address your browser ended on"
                    .into(),
            ));
        }
        if line.contains("://") || line.starts_with('?') || line.contains("code=") {
            let query = line.split_once('?').map_or(line, |(_, q)| q);
            let query = query.split('#').next().unwrap_or(query);
            let params: HashMap<String, String> =
                oauth2::url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
            return self.check_callback(&params);
        }
        if line.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(LoginError::Failed(
                "the pasted code contains spaces or line breaks; paste the code (or the whole address) on one line"
                    .into(),
            ));
        }
        Ok(line.to_string())
    }

    /// The code of a callback whose `state` matches, or why not.
    fn check_callback(&self, params: &HashMap<String, String>) -> Result<String, LoginError> {
        if let Some(err) = params.get("error") {
            return Err(LoginError::Failed(format!(
                "the provider did not sign you in: {}{}",
                printable(err),
                params
                    .get("error_description")
                    .map(|d| format!(" ({})", printable(d)))
                    .unwrap_or_default()
            )));
        }
        if !state_matches(params, self.state.secret()) {
            return Err(LoginError::Failed(
                "the callback's state does not match this sign-in (a stale or forged redirect); its code was not used. Start the sign-in again."
                    .into(),
            ));
        }
        match params.get("code").filter(|c| !c.trim().is_empty()) {
            Some(c) => Ok(c.trim().to_string()),
            None => Err(LoginError::Failed(
                "the callback carries no code; start the sign-in again".into(),
            )),
        }
    }

    /// Exchange the code (with this sign-in's verifier) for tokens.
    pub async fn exchange(
        self,
        http: &reqwest::Client,
        ep: &Endpoints,
        code: String,
        now_ms: impl Fn() -> i64,
    ) -> Result<Granted, LoginError> {
        let client = tokens::client(ep, Some(&self.redirect))?;
        let rec = Recorder::new(http);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| LoginError::Failed(e.to_string()))?
            .set_pkce_verifier(self.verifier)
            .request_async(&rec)
            .await
            .map_err(|e| rec.classify(e))?;
        Ok(tokens::granted(&tokens, ep, now_ms()))
    }

    /// Serve the loopback callback on `listener` until a callback with the right state
    /// arrives (answered with a friendly page), or `wait` passes. A callback with another
    /// state is answered 400 with an error page, and its code is never used.
    pub async fn wait_for_callback(
        &self,
        listener: tokio::net::TcpListener,
        wait: Duration,
    ) -> Result<String, LoginError> {
        let path = reqwest::Url::parse(&self.redirect)
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| "/auth/callback".into());
        let (tx, mut rx) = mpsc::channel::<Result<String, LoginError>>(1);
        let shared = Arc::new(Callback {
            login: self.clone_checker(),
            tx,
            done: Mutex::new(false),
        });
        let app = axum::Router::new()
            .route(&path, axum::routing::get(callback))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let result = tokio::time::timeout(wait, rx.recv()).await;
        server.abort();
        match result {
            Ok(Some(r)) => r,
            Ok(None) => Err(LoginError::Failed("the callback server stopped".into())),
            Err(_) => Err(LoginError::Failed(format!(
                "no sign-in arrived within {} minutes; run the command again (or use --no-browser and paste the address)",
                wait.as_secs() / 60
            ))),
        }
    }

    fn clone_checker(&self) -> Checker {
        Checker {
            state: self.state.secret().clone(),
        }
    }
}

/// What the callback handler needs to check a redirect: the expected state only.
struct Checker {
    state: String,
}

struct Callback {
    login: Checker,
    tx: mpsc::Sender<Result<String, LoginError>>,
    done: Mutex<bool>,
}

async fn callback(
    State(cb): State<Arc<Callback>>,
    Query(params): Query<HashMap<String, String>>,
) -> axum::response::Response {
    if !state_matches(&params, &cb.login.state) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Html(page(
                "Sign-in not accepted",
                "This sign-in link does not belong to the sign-in RemoteClaw is waiting for. Go back to the terminal and start again.",
            )),
        )
            .into_response();
    }
    if let Some(err) = params.get("error") {
        let _ = cb.tx.try_send(Err(LoginError::Failed(format!(
            "the provider did not sign you in: {}",
            printable(err)
        ))));
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Html(page(
                "Sign-in failed",
                "The provider did not sign you in. The terminal says why.",
            )),
        )
            .into_response();
    }
    let Some(code) = params.get("code").filter(|c| !c.trim().is_empty()) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Html(page(
                "Sign-in not accepted",
                "The redirect carries no code.",
            )),
        )
            .into_response();
    };
    {
        let Ok(mut done) = cb.done.lock() else {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if *done {
            return Html(page("Already signed in", "You can close this tab.")).into_response();
        }
        *done = true;
    }
    let _ = cb.tx.try_send(Ok(code.trim().to_string()));
    Html(page(
        "Signed in",
        "RemoteClaw received your sign-in. You can close this tab and return to the terminal.",
    ))
    .into_response()
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

/// Whether a redirect's `state` is this sign-in's (compared in constant time).
fn state_matches(params: &HashMap<String, String>, expected: &str) -> bool {
    params
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Provider text shown to the user: control characters removed, length capped.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The device authorization grant: ask for a user code, show it with `show`, and poll
/// the token endpoint at the server's interval (longer after `slow_down`) until the user
/// approves, refuses, or the code expires (`expires_in`). Sleeps with tokio time, so
/// tests can run it on paused time.
pub async fn device_login(
    http: &reqwest::Client,
    ep: &Endpoints,
    out: &mut (dyn Write + Send),
    now_ms: impl Fn() -> i64 + Send + Sync,
) -> Result<Granted, LoginError> {
    if ep.device_authorization_url.is_none() {
        return Err(LoginError::Failed(format!(
            "provider {} has no device sign-in: leave out --device, or set [models.providers.{}.oauth] deviceAuthorizationUrl",
            ep.provider, ep.provider
        )));
    }
    let client = tokens::client(ep, None)?;
    let rec = Recorder::new(http);
    let mut req = client
        .exchange_device_code()
        .map_err(|e| LoginError::Failed(e.to_string()))?
        .add_scopes(ep.scopes.iter().map(|s| Scope::new(s.clone())));
    let pkce = ep.device_pkce.then(PkceCodeChallenge::new_random_sha256);
    if let Some((challenge, _)) = &pkce {
        req = req
            .add_extra_param("code_challenge", challenge.as_str().to_string())
            .add_extra_param("code_challenge_method", "S256");
    }
    let details: StandardDeviceAuthorizationResponse =
        req.request_async(&rec).await.map_err(|e| rec.classify(e))?;
    let shown = details
        .verification_uri_complete()
        .map(|u| u.secret().to_string());
    let _ = writeln!(
        out,
        "To sign in to {}, open {} and enter the code {}",
        ep.provider,
        details.verification_uri().as_str(),
        details.user_code().secret()
    );
    if let Some(u) = shown {
        let _ = writeln!(out, "(or open {u})");
    }
    let _ = writeln!(
        out,
        "Waiting for you to approve (the code expires in {} minutes)…",
        details.expires_in().as_secs().div_ceil(60)
    );
    let _ = out.flush();
    // oauth2 measures the deadline with `time_fn`: wall time at the start plus tokio's
    // elapsed time, so a paused clock in tests moves it as the sleeps do.
    let wall = chrono::Utc::now();
    let started = tokio::time::Instant::now();
    let mut token_req = client
        .exchange_device_access_token(&details)
        .map_err(|e| LoginError::Failed(e.to_string()))?
        .set_time_fn(move || {
            wall + chrono::Duration::from_std(started.elapsed()).unwrap_or_default()
        });
    if let Some((_, verifier)) = &pkce {
        token_req = token_req.add_extra_param("code_verifier", verifier.secret().clone());
    }
    // The first poll waits the interval too (RFC 8628 §3.5: the interval is the time
    // between requests, the code's own request included); `oauth2` polls at once.
    // `oauth2` reads an absent interval as RFC 8628's 5 s; an `interval: 0` is raised
    // to MIN_DEVICE_POLL so a server's zero never makes a tight polling loop.
    let poll_sleep = |d: Duration| tokio::time::sleep(d.max(MIN_DEVICE_POLL));
    poll_sleep(details.interval()).await;
    let tokens = token_req
        .request_async(&rec, poll_sleep, None)
        .await
        .map_err(|e| device_error(&rec, e))?;
    Ok(tokens::granted(&tokens, ep, now_ms()))
}

fn device_error(
    rec: &Recorder<'_>,
    e: oauth2::RequestTokenError<tokens::HttpError, oauth2::DeviceCodeErrorResponse>,
) -> LoginError {
    use oauth2::DeviceCodeErrorResponseType as T;
    if let oauth2::RequestTokenError::ServerResponse(r) = &e {
        match r.error() {
            T::ExpiredToken => {
                return LoginError::Failed(
                    "the code expired before it was approved; run the command again".into(),
                );
            }
            T::AccessDenied => {
                return LoginError::Failed("the sign-in was refused in the browser".into());
            }
            _ => {}
        }
    }
    if let oauth2::RequestTokenError::Other(m) = &e
        && m.contains("timeout")
    {
        return LoginError::Failed(
            "the code expired before it was approved; run the command again".into(),
        );
    }
    LoginError::Token(rec.classify(e))
}
