//! Data types of the fake OAuth server's public API: scripts
//! ([`RefreshBehavior`], [`DeviceStep`]), the signed-in [`Account`], minted
//! [`TokenSet`]s, recorded [`Revocation`]s and [`RecordedRequest`]s.

use tokio::time::Instant;

/// What the next `grant_type=refresh_token` request gets (FIFO, see
/// `FakeOAuth::script_refresh`); an empty script means `Ok`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshBehavior {
    /// Normal handling: rotate, or `invalid_grant` for a stale token.
    Ok,
    /// 400 `{"error":"invalid_grant"}`; the refresh token stays valid.
    InvalidGrant,
    /// This 5xx status with `{"error":"server_error"}`.
    ServerError(u16),
    /// Never answers while the server lives.
    Stall,
    /// 401 `{"error":"invalid_client"}`.
    Unauthorized401,
    /// Rotate as normal, but answer only after this long (tokio time).
    Delay(std::time::Duration),
}

/// What one device-grant poll gets while its code waits (FIFO, see
/// `FakeOAuth::script_device`); an empty script means `Approve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStep {
    /// 400 `{"error":"authorization_pending"}`.
    Pending,
    /// 400 `{"error":"slow_down"}`.
    SlowDown,
    /// The user approved: tokens for the account signed in now.
    Approve,
    /// The user refused: 400 `{"error":"access_denied"}` from now on.
    Deny,
}

/// The signed-in user a sign-in is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: String,
    pub account_id: String,
    /// `user-<account_id>`.
    pub sub: String,
}

impl Account {
    pub fn new(email: &str, account_id: &str) -> Account {
        Account {
            email: email.to_string(),
            account_id: account_id.to_string(),
            sub: format!("user-{account_id}"),
        }
    }
}

/// Tokens of one sign-in or refresh, as sent in the `/token` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    pub id_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub account: Account,
}

/// One `/revoke` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub token: String,
    pub token_type_hint: Option<String>,
    /// Whether the token was a live access or refresh token of a grant.
    pub known: bool,
}

/// One request as received (form fields and tokens kept verbatim).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-cased header names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Decoded form body (or query, for `GET /authorize`), duplicates kept.
    pub form: Vec<(String, String)>,
    /// Tokio time of arrival.
    pub at: Instant,
}

impl RecordedRequest {
    /// First value of form field (or query parameter) `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `grant_type` of a `/token` request.
    pub fn grant_type(&self) -> Option<&str> {
        self.field("grant_type")
    }
}
