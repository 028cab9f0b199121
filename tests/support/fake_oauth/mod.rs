//! Loopback fake OAuth 2.0 authorization server for integration tests.
//!
//! One axum server on `127.0.0.1:0` speaks the real protocol: `/authorize`
//! (authorization code + PKCE S256, RFC 6749 §4.1 / RFC 7636), `/token`
//! (code exchange, rotating refresh tokens, the device grant of RFC 8628),
//! `/device/code`, `/revoke` (RFC 7009) and `/userinfo`. Tokens are JWT-shaped
//! and carry the `openai-codex` account claim; every secret it mints carries a
//! canary (`CANARYACCESS…`, `CANARYREFRESH…`, `CANARYCODE…`, `CANARYDEVICE…`,
//! `CANARYIDTOKEN…`) so tests can grep output for leaks. Refresh responses and
//! device polls are scripted (FIFO); every request is recorded before it is
//! answered. Time (code, device-code and access-token lifetimes, poll instants)
//! is tokio time, so paused-time tests control it. Dropping the server shuts it
//! down and cuts stalled requests.

mod endpoints;
mod jwt;
mod respond;
mod state;
mod token;
mod types;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[allow(unused_imports)] // helpers for the tests that decode tokens
pub use jwt::{jwt_claims, s256_challenge};
use respond::{age, is_form, json_response, oauth_error, record, stall, text_response};
use state::{Config, State};
pub use types::{Account, DeviceStep, RecordedRequest, RefreshBehavior, Revocation, TokenSet};

pub const DEFAULT_CLIENT_ID: &str = "app_fake_oauth_client";
pub const DEFAULT_EMAIL: &str = "alice@example.com";
pub const DEFAULT_ACCOUNT_ID: &str = "acct-alice";
/// Scope returned when a request names none.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";
/// JWT claim holding `{"chatgpt_account_id": …}` (access and id tokens).
pub const ACCOUNT_CLAIM: &str = "https://api.openai.com/auth";
/// JWT claim holding `{"email": …}` (access tokens).
pub const PROFILE_CLAIM: &str = "https://api.openai.com/profile";
/// Every secret the fake mints contains this substring.
pub const CANARY: &str = "CANARY";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A running fake OAuth server. Dropping it shuts the server down.
pub struct FakeOAuth {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    state: Mutex<State>,
    shutdown: watch::Receiver<bool>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves once the server is dropped.
    async fn shut_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl FakeOAuth {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime, with client
    /// id [`DEFAULT_CLIENT_ID`], account [`DEFAULT_EMAIL`]/[`DEFAULT_ACCOUNT_ID`],
    /// `expires_in` 3600 s, device interval 5 s and device codes valid 900 s.
    pub async fn start() -> FakeOAuth {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake oauth: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake oauth: local_addr");
        let cfg = Config {
            issuer: format!("http://{addr}"),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            expires_in: 3600,
            expires_in_as_string: false,
            device_interval: 5,
            device_interval_absent: false,
            device_expires_in: 900,
            redirect_uri: None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(
                cfg,
                Account::new(DEFAULT_EMAIL, DEFAULT_ACCOUNT_ID),
            )),
            shutdown: shutdown_rx.clone(),
        });
        let app = Router::new()
            .route("/authorize", get(endpoints::authorize))
            .route("/token", post(token::token))
            .route("/device/code", post(endpoints::device_code))
            .route("/device", get(endpoints::device_page))
            .route("/revoke", post(endpoints::revoke))
            .route("/userinfo", get(endpoints::userinfo))
            .fallback(endpoints::not_found)
            .with_state(inner.clone());
        let mut signal = shutdown_rx;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await;
        });
        FakeOAuth {
            addr,
            inner,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (also the `iss` of every token).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `authorizeUrl`: `…/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.url())
    }
    /// `tokenUrl`: `…/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url())
    }
    /// `deviceAuthorizationUrl`: `…/device/code`.
    pub fn device_authorization_url(&self) -> String {
        format!("{}/device/code", self.url())
    }
    /// `revokeUrl`: `…/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.url())
    }
    /// `…/userinfo`.
    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.url())
    }
    /// `verification_uri` of device authorizations: `…/device`.
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.url())
    }

    pub fn client_id(&self) -> String {
        self.inner.state().cfg.client_id.clone()
    }
    /// The only client id the endpoints accept.
    pub fn set_client_id(&self, client_id: &str) {
        self.inner.state().cfg.client_id = client_id.to_string();
    }

    /// The user signed in at the fake: later authorizations and device
    /// approvals are bound to this account (existing grants keep theirs).
    pub fn set_account(&self, email: &str, account_id: &str) {
        self.inner.state().account = Account::new(email, account_id);
    }
    pub fn account(&self) -> Account {
        self.inner.state().account.clone()
    }

    /// `expires_in` (seconds) of access tokens minted from now on (default 3600).
    pub fn set_expires_in(&self, secs: u64) {
        self.inner.state().cfg.expires_in = secs;
    }
    /// Send `expires_in` of token answers as a JSON string (`"3600"`) from now on.
    pub fn set_expires_in_as_string(&self, as_string: bool) {
        self.inner.state().cfg.expires_in_as_string = as_string;
    }
    /// `interval` (seconds) of device authorizations (default 5).
    pub fn set_device_interval(&self, secs: u64) {
        self.inner.state().cfg.device_interval = secs;
    }
    /// Leave `interval` out of device authorization answers from now on (RFC 8628: the
    /// client then waits 5 s).
    pub fn omit_device_interval(&self) {
        self.inner.state().cfg.device_interval_absent = true;
    }
    /// `expires_in` (seconds) of device codes issued from now on (default 900).
    pub fn set_device_expires_in(&self, secs: u64) {
        self.inner.state().cfg.device_expires_in = secs;
    }
    /// `Some(uri)`: `/authorize` accepts only this exact `redirect_uri` (a
    /// provider's registered URI). `None` (default): any `http` URI whose host
    /// is `127.0.0.1`, `localhost` or `[::1]`.
    pub fn set_redirect_uri(&self, uri: Option<&str>) {
        self.inner.state().cfg.redirect_uri = uri.map(String::from);
    }

    /// Appends to the FIFO consumed by `grant_type=refresh_token` requests
    /// (one entry each, popped before the request is validated).
    pub fn script_refresh(&self, behaviors: impl IntoIterator<Item = RefreshBehavior>) {
        self.inner.state().refresh_script.extend(behaviors);
    }
    pub fn pending_refresh_script(&self) -> usize {
        self.inner.state().refresh_script.len()
    }
    /// Appends to the FIFO consumed by device-grant polls of a waiting, unexpired
    /// device code (any device code; one entry per poll).
    pub fn script_device(&self, steps: impl IntoIterator<Item = DeviceStep>) {
        self.inner.state().device_script.extend(steps);
    }
    pub fn pending_device_script(&self) -> usize {
        self.inner.state().device_script.len()
    }

    /// Starts a grant for the current account without any HTTP (as if the
    /// user had signed in), to seed a profile. Counts as no request.
    pub fn mint_tokens(&self) -> TokenSet {
        let mut s = self.inner.state();
        let (account, client_id) = (s.account.clone(), s.cfg.client_id.clone());
        s.new_grant(account, DEFAULT_SCOPE, &client_id)
    }

    /// Whether `token` is the latest access token of a grant, unexpired
    /// (tokio time) and not revoked. A refresh makes the previous one stale.
    pub fn is_current_access(&self, token: &str) -> bool {
        self.inner.state().grant_by_access(token).is_some()
    }
    /// Whether `token` is the latest refresh token of a live grant.
    pub fn is_current_refresh(&self, token: &str) -> bool {
        let s = self.inner.state();
        s.grant_by_refresh(token)
            .is_some_and(|i| s.grants.get(i).is_some_and(|g| !g.revoked))
    }
    /// Makes every access token expired now (refresh tokens stay valid).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for g in &mut self.inner.state().grants {
            g.access_expires = now;
        }
    }
    /// Every access token minted, oldest first.
    pub fn access_tokens_issued(&self) -> Vec<String> {
        self.inner.state().access_issued.clone()
    }
    /// Every refresh token minted, oldest first.
    pub fn refresh_tokens_issued(&self) -> Vec<String> {
        self.inner.state().refresh_issued.clone()
    }
    /// Every authorization code issued, oldest first.
    pub fn codes_issued(&self) -> Vec<String> {
        self.inner.state().codes_issued.clone()
    }
    /// Every device code issued, oldest first.
    pub fn device_codes_issued(&self) -> Vec<String> {
        self.inner.state().device_codes_issued.clone()
    }

    /// Every request, in arrival order (unknown paths included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.state().requests.clone()
    }
    /// Requests to `path` (e.g. `"/token"`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        let s = self.inner.state();
        s.requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
    /// `/token` requests with this `grant_type` (e.g. `"authorization_code"`,
    /// `"refresh_token"`, [`DEVICE_GRANT`]), whatever their outcome.
    pub fn grant_count(&self, grant_type: &str) -> usize {
        let s = self.inner.state();
        s.requests
            .iter()
            .filter(|r| r.path == "/token" && r.grant_type() == Some(grant_type))
            .count()
    }
    /// Number of `grant_type=refresh_token` requests received.
    pub fn refresh_requests(&self) -> usize {
        self.grant_count("refresh_token")
    }
    /// Tokio instants of every device-grant poll, in order.
    pub fn device_polls(&self) -> Vec<Instant> {
        self.inner.state().device_polls.clone()
    }
    pub fn device_poll_count(&self) -> usize {
        self.inner.state().device_polls.len()
    }
    /// Every `/revoke` call, in order.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.inner.state().revocations.clone()
    }
    /// Forgets recorded requests, polls and revocations (tokens stay valid).
    pub fn clear_requests(&self) {
        let mut s = self.inner.state();
        s.requests.clear();
        s.device_polls.clear();
        s.revocations.clear();
    }
}

impl Drop for FakeOAuth {
    fn drop(&mut self) {
        // Wakes stalled handlers and starts axum's graceful shutdown.
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}
