//! A resolved credential: the secret plus what to call it in status, traces and logs.

use crate::secret::Secret;
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    Token,
    Oauth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    Profile,
    Env,
    Config,
    Ref,
}

/// One candidate credential for a provider. `id` is what the operator sees
/// (`anthropic:work`, `env:ANTHROPIC_API_KEY`, `env:ANTHROPIC_API_KEYS[1]`, `config:anthropic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Shared, cheap to clone: credentials are re-listed for every turn.
    pub id: Arc<str>,
    pub provider: Arc<str>,
    pub kind: CredentialKind,
    pub source: CredentialSource,
    pub secret: Secret,
    /// Epoch milliseconds; `None` = no expiry.
    pub expires_ms: Option<i64>,
    /// An OAuth profile's account id (sent where the provider wants it, e.g. the Codex
    /// backend's `chatgpt-account-id`).
    pub account_id: Option<Arc<str>>,
    /// An OAuth profile's refresh token, as its fingerprint (never the token): part of
    /// the identity a refused refresh is remembered under ([`Credential::sign_in_fingerprint`]).
    pub refresh_fp: Option<Arc<str>>,
}

/// [`Credential::sign_in_fingerprint`] from its parts: the access token's and the refresh
/// token's fingerprints and the expiry.
pub fn sign_in_fingerprint(
    access_fp: &str,
    refresh_fp: Option<&str>,
    expires_ms: Option<i64>,
) -> String {
    crate::secret::fingerprint_of(&format!(
        "{access_fp}|{}|{}",
        refresh_fp.unwrap_or(""),
        expires_ms.unwrap_or(0)
    ))
}

/// Anthropic setup/OAuth tokens go in `Authorization: Bearer`, not `x-api-key`.
pub const ANTHROPIC_OAUTH_PREFIX: &str = "sk-ant-oat01-";

impl Credential {
    /// What a `refresh_failed` disable is kept under: the access token, the refresh token
    /// and the expiry together, so a profile whose sign-in changes in any of them (a new
    /// login, a pasted refresh token, an edited `expires`) is tried again (DESIGN §5a:
    /// "until its profile changes"). 8 hex digits, like a secret's fingerprint.
    pub fn sign_in_fingerprint(&self) -> String {
        sign_in_fingerprint(
            self.secret.fingerprint(),
            self.refresh_fp.as_deref(),
            self.expires_ms,
        )
    }

    /// The fingerprints this credential's cooldown and disable entries are kept under:
    /// the secret's, and for an OAuth sign-in also the whole sign-in's (a refused refresh,
    /// `crate::engine::standing_fingerprint`). Only OAuth pays for the second hash.
    pub fn state_fingerprints(&self) -> Vec<String> {
        let mut fps = vec![self.secret.fingerprint().to_string()];
        if self.kind == CredentialKind::Oauth {
            fps.push(self.sign_in_fingerprint());
        }
        fps
    }

    /// True when the credential must be sent as a bearer token with the OAuth beta header.
    pub fn is_anthropic_oauth(&self) -> bool {
        self.kind == CredentialKind::Oauth
            || self.secret.expose().starts_with(ANTHROPIC_OAUTH_PREFIX)
    }
}
