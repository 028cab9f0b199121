//! The fake OAuth server's memory: configuration, the signed-in account,
//! authorization codes, device codes, grants (one per sign-in, each with its
//! current access and refresh token), scripts and the request log, plus the
//! minting of tokens. Endpoint handlers live in `endpoints.rs` and `token.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::time::Instant;

use super::jwt::encode_unsigned;
use super::{
    ACCOUNT_CLAIM, Account, DeviceStep, PROFILE_CLAIM, RecordedRequest, RefreshBehavior,
    Revocation, TokenSet,
};

/// Settings a test may change between requests.
pub(super) struct Config {
    /// `http://127.0.0.1:PORT`, the `iss` of every token.
    pub issuer: String,
    pub client_id: String,
    /// Access-token lifetime in seconds (`expires_in`).
    pub expires_in: u64,
    /// Send `expires_in` as a JSON string (`"3600"`), as some servers do.
    pub expires_in_as_string: bool,
    /// Device grant: seconds between polls the server asks for.
    pub device_interval: u64,
    /// Device grant: leave `interval` out of the authorization answer.
    pub device_interval_absent: bool,
    /// Device grant: lifetime of a device code in seconds.
    pub device_expires_in: u64,
    /// `Some`: `/authorize` accepts only this exact redirect URI; `None`: any
    /// `http` URI on a loopback host.
    pub redirect_uri: Option<String>,
}

/// Lifetime of an authorization code.
pub(super) const CODE_TTL: Duration = Duration::from_secs(600);

pub(super) struct CodeGrant {
    pub challenge: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub scope: String,
    pub account: Account,
    pub issued: Instant,
    pub used: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DeviceState {
    Waiting,
    Done,
    Denied,
}

pub(super) struct DeviceGrant {
    pub challenge: Option<String>,
    pub client_id: String,
    pub scope: String,
    pub issued: Instant,
    pub expires_in: u64,
    pub state: DeviceState,
}

/// One sign-in: the account it is for and its current tokens.
pub(super) struct Grant {
    pub account: Account,
    pub scope: String,
    pub client_id: String,
    pub access: String,
    pub access_expires: Instant,
    pub refresh: String,
    pub revoked: bool,
}

pub(super) struct State {
    pub cfg: Config,
    pub account: Account,
    next: u64,
    pub codes: HashMap<String, CodeGrant>,
    pub devices: HashMap<String, DeviceGrant>,
    pub grants: Vec<Grant>,
    /// Refresh tokens replaced by a rotation (presenting one again is reuse).
    pub rotated: HashSet<String>,
    /// Access tokens revoked one by one through `/revoke`.
    pub revoked_access: HashSet<String>,
    pub refresh_script: VecDeque<RefreshBehavior>,
    pub device_script: VecDeque<DeviceStep>,
    pub requests: Vec<RecordedRequest>,
    pub device_polls: Vec<Instant>,
    pub revocations: Vec<Revocation>,
    pub access_issued: Vec<String>,
    pub refresh_issued: Vec<String>,
    pub codes_issued: Vec<String>,
    pub device_codes_issued: Vec<String>,
}

impl State {
    pub fn new(cfg: Config, account: Account) -> State {
        State {
            cfg,
            account,
            next: 0,
            codes: HashMap::new(),
            devices: HashMap::new(),
            grants: Vec::new(),
            rotated: HashSet::new(),
            revoked_access: HashSet::new(),
            refresh_script: VecDeque::new(),
            device_script: VecDeque::new(),
            requests: Vec::new(),
            device_polls: Vec::new(),
            revocations: Vec::new(),
            access_issued: Vec::new(),
            refresh_issued: Vec::new(),
            codes_issued: Vec::new(),
            device_codes_issued: Vec::new(),
        }
    }

    /// Sequence number shared by every minted code and token (1, 2, 3, …).
    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// A one-time authorization code (`CANARYCODE<n>`) for the current account.
    pub fn issue_code(
        &mut self,
        challenge: &str,
        redirect_uri: &str,
        client_id: &str,
        scope: &str,
    ) -> String {
        let code = format!("CANARYCODE{:06}", self.next_id());
        self.codes_issued.push(code.clone());
        self.codes.insert(
            code.clone(),
            CodeGrant {
                challenge: challenge.to_string(),
                redirect_uri: redirect_uri.to_string(),
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                account: self.account.clone(),
                issued: Instant::now(),
                used: false,
            },
        );
        code
    }

    /// A device code (`CANARYDEVICE<n>`) and its user code.
    pub fn issue_device_code(
        &mut self,
        challenge: Option<&str>,
        client_id: &str,
        scope: &str,
    ) -> (String, String) {
        let n = self.next_id();
        let device_code = format!("CANARYDEVICE{n:06}");
        let user_code = format!("FAKE-{n:04}");
        self.device_codes_issued.push(device_code.clone());
        self.devices.insert(
            device_code.clone(),
            DeviceGrant {
                challenge: challenge.map(String::from),
                client_id: client_id.to_string(),
                scope: scope.to_string(),
                issued: Instant::now(),
                expires_in: self.cfg.device_expires_in,
                state: DeviceState::Waiting,
            },
        );
        (device_code, user_code)
    }

    /// Starts a new grant for `account` and returns its first tokens.
    pub fn new_grant(&mut self, account: Account, scope: &str, client_id: &str) -> TokenSet {
        let tokens = self.mint(&account, scope, client_id);
        self.grants.push(Grant {
            account,
            scope: scope.to_string(),
            client_id: client_id.to_string(),
            access: tokens.access_token.clone(),
            access_expires: Instant::now() + Duration::from_secs(tokens.expires_in),
            refresh: tokens.refresh_token.clone(),
            revoked: false,
        });
        tokens
    }

    /// Rotates grant `idx`: new access and refresh tokens; the old refresh
    /// token joins `rotated`.
    pub fn rotate(&mut self, idx: usize) -> Option<TokenSet> {
        let (account, scope, client_id) = {
            let g = self.grants.get(idx)?;
            (g.account.clone(), g.scope.clone(), g.client_id.clone())
        };
        let tokens = self.mint(&account, &scope, &client_id);
        let g = self.grants.get_mut(idx)?;
        let old = std::mem::replace(&mut g.refresh, tokens.refresh_token.clone());
        g.access = tokens.access_token.clone();
        g.access_expires = Instant::now() + Duration::from_secs(tokens.expires_in);
        self.rotated.insert(old);
        Some(tokens)
    }

    pub fn grant_by_refresh(&self, refresh: &str) -> Option<usize> {
        self.grants.iter().position(|g| g.refresh == refresh)
    }

    /// The grant whose current, unexpired, unrevoked access token is `token`.
    pub fn grant_by_access(&self, token: &str) -> Option<&Grant> {
        if self.revoked_access.contains(token) {
            return None;
        }
        let now = Instant::now();
        self.grants
            .iter()
            .find(|g| g.access == token && !g.revoked && now < g.access_expires)
    }

    fn mint(&mut self, account: &Account, scope: &str, client_id: &str) -> TokenSet {
        let n = self.next_id();
        let now = unix_now();
        let expires_in = self.cfg.expires_in;
        let auth = json!({"chatgpt_account_id": account.account_id});
        let profile = json!({"email": account.email});
        let access_claims = json!({
            "iss": self.cfg.issuer,
            "aud": client_id,
            "sub": account.sub,
            "email": account.email,
            "scope": scope,
            "iat": now,
            "exp": now + expires_in,
            "jti": format!("access-{n}"),
            ACCOUNT_CLAIM: auth,
            PROFILE_CLAIM: profile,
        });
        let id_claims = json!({
            "iss": self.cfg.issuer,
            "aud": client_id,
            "sub": account.sub,
            "email": account.email,
            "email_verified": true,
            "iat": now,
            "exp": now + expires_in,
            ACCOUNT_CLAIM: auth,
        });
        let tokens = TokenSet {
            access_token: encode_unsigned(&access_claims, &format!("CANARYACCESS{n:06}")),
            refresh_token: format!("CANARYREFRESH{n:06}"),
            id_token: encode_unsigned(&id_claims, &format!("CANARYIDTOKEN{n:06}")),
            expires_in,
            scope: scope.to_string(),
            account: account.clone(),
        };
        self.access_issued.push(tokens.access_token.clone());
        self.refresh_issued.push(tokens.refresh_token.clone());
        tokens
    }
}

/// The RFC 6749 §5.1 success body for `tokens`.
pub(super) fn token_body(tokens: &TokenSet, expires_in_as_string: bool) -> Value {
    json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": if expires_in_as_string {
            json!(tokens.expires_in.to_string())
        } else {
            json!(tokens.expires_in)
        },
        "refresh_token": tokens.refresh_token,
        "scope": tokens.scope,
        "id_token": tokens.id_token,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
