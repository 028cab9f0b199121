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
}

/// Anthropic setup/OAuth tokens go in `Authorization: Bearer`, not `x-api-key`.
pub const ANTHROPIC_OAUTH_PREFIX: &str = "sk-ant-oat01-";

impl Credential {
    /// True when the credential must be sent as a bearer token with the OAuth beta header.
    pub fn is_anthropic_oauth(&self) -> bool {
        self.kind == CredentialKind::Oauth
            || self.secret.expose().starts_with(ANTHROPIC_OAUTH_PREFIX)
    }
}
