//! Chat channels: the platforms people talk to the bot from (Telegram, Discord, …).
//! Platform types stop here; the rest of the crate sees plain text and session keys.
//!
//! - [`chunk`]: cutting a reply into messages that fit a platform's length limit (pure).
//! - `media`: what Telegram and Discord share when a message brings images or files.

/// A typing indicator shows once an answer takes longer than this: a reply that is there
/// sooner (a command, a fast model) costs no extra platform call.
pub const TYPING_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// The end of a channel's work where it waits, for a channel stopped past its grace
/// (`Running::stop` aborts it): a turn cut off sends no reply, and its message stays
/// open for the restarted channel — which would otherwise answer it a second time.
#[derive(Debug)]
pub(crate) struct Ending(tokio::sync::watch::Sender<bool>);

impl Default for Ending {
    fn default() -> Ending {
        Ending(tokio::sync::watch::channel(false).0)
    }
}

impl Ending {
    /// End the work running under [`Ending::unless_ended`], and any started later at once.
    pub(crate) fn end(&self) {
        self.0.send_replace(true);
    }

    /// `work`, unless the end comes first (then `None`, `work` dropped where it waits).
    /// The future does not borrow `self`, so it can be spawned.
    pub(crate) fn unless_ended<F: std::future::Future>(
        &self,
        work: F,
    ) -> impl std::future::Future<Output = Option<F::Output>> + use<F> {
        let mut ended = self.0.subscribe();
        async move {
            tokio::select! {
                biased;
                _ = ended.wait_for(|e| *e) => None,
                out = work => Some(out),
            }
        }
    }
}

/// A task that runs beside a turn (the typing indicator) and ends with it: when aborted,
/// and when dropped, so a turn cut off (a channel stopped past its grace) leaves no
/// indicator running behind it.
#[derive(Debug)]
pub struct Beside(tokio::task::JoinHandle<()>);

impl Beside {
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Beside {
        Beside(tokio::spawn(task))
    }

    pub fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The pause before asking a platform again after a failure that may pass (the network,
/// a 5xx, an answer that cannot be read).
pub(crate) use crate::clock::Backoff;

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `text` without the mentions of the bot at `spans` (byte ranges, in order), as the
/// model should see it (DESIGN §8): only the blanks a mention leaves behind go (and a
/// `,` or `:` right after a mention that opens a line); everything else stays as
/// written, then blank lines at the start and whitespace at the end are dropped.
pub(crate) fn without_mentions(
    text: &str,
    spans: impl IntoIterator<Item = std::ops::Range<usize>>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for range in spans {
        if range.start < from {
            continue;
        }
        out.push_str(&text[from..range.start]);
        let head = out.trim_end_matches(is_blank);
        let opens_line = head.is_empty() || head.ends_with('\n');
        let mut after = &text[range.end..];
        if opens_line && let Some(rest) = after.strip_prefix([',', ':']) {
            after = rest;
        }
        let rest = after.trim_start_matches(is_blank);
        if rest.is_empty() || rest.starts_with(['\n', '\r']) {
            // The mention ended its line: the blanks before it go too.
            out.truncate(out.trim_end_matches(is_blank).len());
        }
        from = text.len() - rest.len();
    }
    out.push_str(&text[from..]);
    crate::directive::tidy(&out).to_string()
}

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

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_a_minute_and_starts_over_after_a_success() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next(), Duration::from_secs(1));
    }
}
