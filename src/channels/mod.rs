//! Chat channels: the platforms people talk to the bot from (Telegram, Discord, …).
//! Platform types stop here; the rest of the crate sees plain text and session keys.
//!
//! - [`chunk`]: cutting a reply into messages that fit a platform's length limit (pure).
//! - `media`: what Telegram and Discord share when a message brings images or files.

/// A typing indicator shows once an answer takes longer than this: a reply that is there
/// sooner (a command, a fast model) costs no extra platform call.
pub const TYPING_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

pub mod chunk;
pub mod discord;
pub(crate) mod media;
pub mod stream;
pub mod telegram;

use crate::app::App;
use crate::config::{SecretInput, SecretRef};
use crate::secret::Secret;

/// Why a channel has no bot token.
#[derive(Debug)]
pub enum TokenError {
    Missing,
    /// The token's SecretRef failed (the message names the ref, never a value).
    Ref(String),
}

/// A channel's bot token: the inline value, else the SecretRef, else `env_var`.
pub async fn bot_token(
    app: &App,
    inline: Option<&str>,
    reference: Option<&SecretRef>,
    env_var: &str,
) -> Result<Secret, TokenError> {
    if let Some(t) = inline.filter(|t| !t.trim().is_empty()) {
        return Ok(Secret::new(t.trim()));
    }
    if let Some(r) = reference {
        return app
            .engine
            .resolver
            .secrets
            .resolve_input(&SecretInput::Ref(r.clone()))
            .await
            .map_err(|e| TokenError::Ref(e.to_string()));
    }
    app.env
        .get_nonblank(env_var)
        .map(|t| Secret::new(t.trim()))
        .ok_or(TokenError::Missing)
}
