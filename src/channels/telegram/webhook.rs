//! Webhook mode (DESIGN §9, `[channels.telegram.webhook]`): instead of polling, the
//! channel asks Telegram (`setWebhook`, with the configured `url` as is and the secret
//! token) to post every update to the gateway, which serves the URL's path on its own
//! listener (`crate::gateway`). The gateway finds the running channel through the
//! [`Intake`] every [`App`](crate::app::App) holds: while the channel runs in webhook
//! mode an [`Endpoint`] is registered there.
//!
//! A delivery is authenticated by the secret alone (constant-time compare), then goes
//! the same way as a polled update (`take`): decided, recorded in the inbox (a
//! redelivered update id is never answered twice), queued on its session, marked
//! answered after the reply. The gateway answers 200 once the update is recorded; its
//! turn runs after the answer. No `getUpdates` is sent in this mode and no update
//! offset is kept.

use super::{Ctx, TelegramError, describe, limiter, take};
use crate::app::App;
use crate::config::{SecretInput, TelegramWebhookConfig, valid_webhook_secret};
use crate::secret::Secret;
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

/// The header Telegram puts the secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How often answered marks are looked at for sweeping (the journal sweeps hourly).
const PRUNE_CHECK: Duration = Duration::from_secs(300);

/// Where the gateway finds the Telegram channel's webhook endpoint while it runs.
#[derive(Default)]
pub struct Intake {
    slot: RwLock<Option<Arc<Endpoint>>>,
    /// The path of `channels.telegram.webhook.url` while the channel is configured in
    /// webhook mode (set by the gateway at start and on every reload).
    path: arc_swap::ArcSwapOption<String>,
    /// The secret the channel resolved last, known before its endpoint opens (while it
    /// is still reaching Telegram), so a delivery without it is refused even then.
    secret: arc_swap::ArcSwapOption<Secret>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("open", &self.endpoint().is_some())
            .finish()
    }
}

impl Intake {
    /// The webhook path the gateway answers (`None`: not in webhook mode).
    pub fn path(&self) -> Option<Arc<String>> {
        self.path.load_full()
    }

    pub fn set_path(&self, path: Option<String>) {
        self.path.store(path.map(Arc::new));
    }

    /// Remember the secret deliveries must carry (the channel, once it resolved it).
    pub fn expect_secret(&self, secret: Secret) {
        self.secret.store(Some(Arc::new(secret)));
    }

    /// Whether a delivery's secret header is the one expected; `None` while no secret
    /// is known yet (the channel has not resolved it).
    pub fn authenticates(&self, given: Option<&[u8]>) -> Option<bool> {
        let secret = self.secret.load_full()?;
        Some(given.is_some_and(|g| secret_matches(&secret, g)))
    }

    /// The running channel's endpoint; `None` while none runs (starting, stopped).
    pub fn endpoint(&self) -> Option<Arc<Endpoint>> {
        self.slot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn open(&self, endpoint: Arc<Endpoint>) {
        *self
            .slot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(endpoint);
    }

    /// Take `endpoint` out (if it is still the one registered: a restarted channel
    /// may have put its own there).
    fn close(&self, endpoint: &Arc<Endpoint>) {
        let mut slot = self
            .slot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|e| Arc::ptr_eq(e, endpoint)) {
            *slot = None;
        }
    }
}

/// What became of a delivery.
#[derive(Debug)]
pub enum Delivery {
    /// Recorded (or known already); its turn runs after the answer.
    Accepted,
    /// The body is not JSON at all.
    NotJson(serde_json::Error),
    /// Not a Telegram Update this bot can read: why.
    Invalid(String),
    /// The channel is stopping: Telegram should deliver it again later.
    Closed,
}

/// The running channel as the gateway sees it: the way in (the secret deliveries must
/// carry is the [`Intake`]'s).
pub struct Endpoint {
    ctx: Arc<Ctx>,
    /// Deliveries are taken one at a time, so a chat's messages reach its queue in the
    /// order they arrived; `true` once the channel stopped taking messages.
    gate: tokio::sync::Mutex<bool>,
}

/// Compare digests in constant time, so neither the secret's content nor its length
/// leaks through timing.
pub fn secret_matches(expected: &Secret, given: &[u8]) -> bool {
    let a = Sha256::digest(expected.expose().as_bytes());
    let b = Sha256::digest(given);
    a.ct_eq(&b).into()
}

impl Endpoint {
    /// Take one delivery (a JSON body): decide, record, queue. Returns once the update
    /// is recorded; its turn runs afterwards.
    pub async fn deliver(&self, body: &[u8]) -> Delivery {
        // Read like a polled update (`plain`: a text message the short way).
        // A string with a lone UTF-16 surrogate escape (a character cut in two) is not
        // JSON a parser takes: it is read with that half replaced by U+FFFD.
        let lenient = std::str::from_utf8(body)
            .ok()
            .map(super::lenient::without_lone_surrogates);
        let body = lenient.as_deref().map_or(body, str::as_bytes);
        let update: Update = match serde_json::from_slice::<super::plain::Polled>(body) {
            Ok(u) => u.0,
            Err(e) if e.is_syntax() || e.is_eof() => return Delivery::NotJson(e),
            Err(e) => {
                let why: String = e.to_string().chars().take(300).collect();
                return Delivery::Invalid(format!("the body is not a Telegram Update: {why}"));
            }
        };
        if let UpdateKind::Error(_) = update.kind {
            return Delivery::Invalid(format!(
                "update {} carries no message or callback_query this bot can read",
                update.id.0
            ));
        }
        let closed = self.gate.lock().await;
        if *closed {
            return Delivery::Closed;
        }
        take(&self.ctx, vec![update]).await;
        Delivery::Accepted
    }

    /// Take no more deliveries (those already taken go on).
    async fn shut(&self) {
        *self.gate.lock().await = true;
    }
}

/// The webhook settings with the secret resolved: `secretToken`, else `secretTokenRef`.
pub struct Settings {
    url: reqwest::Url,
    secret: Secret,
}

impl Settings {
    /// The secret token deliveries carry.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// Resolve and check the webhook settings before the channel connects.
pub async fn settings(app: &App, cfg: &TelegramWebhookConfig) -> Result<Settings, TelegramError> {
    let url = reqwest::Url::parse(cfg.url.trim())
        .map_err(|_| TelegramError::WebhookUrl(cfg.url.clone()))?;
    let secret = match (&cfg.secret_token, &cfg.secret_token_ref) {
        (Some(s), _) => Secret::new(&**s),
        (None, Some(r)) => app
            .engine
            .resolver
            .secrets
            .resolve_input(&SecretInput::Ref(r.clone()))
            .await
            .map_err(|e| TelegramError::WebhookSecret(e.to_string()))?,
        (None, None) => {
            return Err(TelegramError::WebhookSecret(
                "no secret: set secretToken or secretTokenRef".into(),
            ));
        }
    };
    if !valid_webhook_secret(secret.expose()) {
        return Err(TelegramError::WebhookSecret(
            "the secret is not one Telegram accepts: use 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
        ));
    }
    Ok(Settings { url, secret })
}

/// Serve deliveries until `shutdown`: register the endpoint, ask Telegram to post to
/// `url` (retrying network failures; a refusal stops the channel), then sweep old
/// answered marks now and then. On shutdown the endpoint takes no more deliveries.
pub async fn serve(
    ctx: &Arc<Ctx>,
    settings: Settings,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let intake = ctx.app.telegram_webhook.clone();
    // The secret first (the channel set it already while connecting; a caller that did
    // not still gets it checked before any delivery is taken).
    intake.expect_secret(settings.secret.clone());
    let endpoint = Arc::new(Endpoint {
        ctx: ctx.clone(),
        gate: tokio::sync::Mutex::new(false),
    });
    intake.open(endpoint.clone());
    let mut stopped = std::pin::pin!(async move {
        // A dropped sender counts as a stop too.
        let _ = shutdown.wait_for(|s| *s).await;
    });
    let result = async {
        tokio::select! {
            r = set_webhook(ctx, &settings) => r?,
            () = &mut stopped => return Ok(()),
        }
        let mut sweep = tokio::time::interval(PRUNE_CHECK);
        loop {
            tokio::select! {
                () = &mut stopped => return Ok(()),
                _ = sweep.tick() => ctx.journal.prune_if_due().await,
            }
        }
    }
    .await;
    intake.close(&endpoint);
    endpoint.shut().await;
    result
}

/// `setWebhook` with the url as configured, the secret and the update kinds the channel
/// answers. Pending updates are kept (nothing lost).
async fn set_webhook(ctx: &Ctx, settings: &Settings) -> Result<(), TelegramError> {
    let mut backoff = crate::channels::Backoff::new();
    loop {
        let request = ctx
            .bot
            .set_webhook(settings.url.clone())
            .secret_token(settings.secret.expose())
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let wait = match request.await.map_err(super::lenient::readable) {
            Ok(_) => {
                tracing::info!(
                    path = settings.url.path(),
                    "Telegram webhook set: updates are posted to the gateway"
                );
                return Ok(());
            }
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::InvalidToken);
            }
            Err(RequestError::Api(e)) => {
                return Err(TelegramError::SetWebhook(
                    ctx.token.redact_in(&e.to_string()),
                ));
            }
            Err(RequestError::RetryAfter(s)) => s.duration().min(limiter::MAX_RETRY_AFTER),
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(
                    "Telegram setWebhook failed ({}); retrying in {} s",
                    describe(&e, &ctx.token),
                    wait.as_secs()
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_compare_takes_only_the_exact_secret() {
        let s = Secret::new("Ab_9-secret");
        assert!(secret_matches(&s, b"Ab_9-secret"));
        for wrong in [
            &b""[..],
            b"Ab_9-secre",
            b"Ab_9-secret ",
            b"ab_9-secret",
            b"Ab_9-secreT",
            b"\xff\xfe",
            b"Ab_9-secretAb_9-secret",
        ] {
            assert!(!secret_matches(&s, wrong), "{wrong:?}");
        }
    }
}
