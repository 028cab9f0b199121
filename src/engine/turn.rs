//! Running one turn: model chain × candidate credentials, with the attempts trace, all
//! within the turn deadline (`agents.defaults.turnTimeoutSecs`).

use super::Engine;
use crate::auth::{Credential, CredentialKind, CredentialSource, ResolveError};
use crate::catalog::ModelRef;
use crate::metrics::Metrics;
use crate::providers::{
    ChatMessage, ChatRequest, Completion, DeltaSink, ErrorKind, ProviderClient, ProviderError,
    Role, Usage,
};
use crate::secret::Redactor;
use serde::Serialize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod images;

#[derive(Debug, Clone)]
pub struct TurnInput {
    /// The session's chosen model; `None` = configured default (with fallbacks).
    pub model: Option<ModelRef>,
    /// A pinned auth profile id: the only credential tried.
    pub pin: Option<String>,
    /// The whole conversation to send (history + the new user message).
    pub messages: Vec<ChatMessage>,
    /// Whose credentials to use (`channels.<c>.agent`); `None` = the default agent.
    pub agent: Option<String>,
    /// The system prompt for this chat; `None` = `agents.defaults.systemPrompt`.
    pub system: Option<String>,
}

/// One credential tried for a turn (the `attempts` entries of `agent --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub credential: String,
    pub outcome: String,
    pub retry_after_ms: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TurnError {
    #[error("{0}")]
    Resolve(String),
    /// The shared state store (Redis) could not be read: no provider was called.
    #[error("{0}")]
    StateStore(String),
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error(
        "unknown provider \"{provider}\" for model {model}: declare [models.providers.{provider}] with baseUrl and api in remoteclaw.toml"
    )]
    UnknownProvider { provider: String, model: String },
    /// The turn carries images and the model to answer takes none (`images = false`):
    /// no provider was called. `instead` is a model that does, as `/model` takes it.
    #[error(
        "{model} does not accept images — send text only, or {}",
        images::switch_hint(instead)
    )]
    ImagesNotAccepted {
        model: String,
        instead: Option<String>,
    },
    /// A message carries more than `media::MAX_IMAGES` images: no provider was called.
    #[error("{}", crate::media::MediaError::TooManyImages)]
    TooManyImages,
    /// A provider refused a request carrying images (HTTP 4xx); `said` is its message.
    #[error(
        "{model} refused the image (HTTP {status}): {said} — send a smaller image (PNG or JPEG), or text only"
    )]
    ImageRefused {
        model: String,
        status: u16,
        said: String,
        error: ProviderError,
    },
}

impl TurnError {
    /// The failed turn's outcome word (metrics' `outcome`, the web chat's error `code`):
    /// a provider error's kind (as in `agent --json` attempts), else what stopped it.
    pub fn outcome(&self) -> &'static str {
        match self {
            TurnError::Provider(e) | TurnError::ImageRefused { error: e, .. } => e.kind.as_str(),
            TurnError::Resolve(_) => "no_credentials",
            TurnError::StateStore(_) => "store_unavailable",
            TurnError::UnknownProvider { .. } => "unknown_provider",
            TurnError::ImagesNotAccepted { .. } => "images_not_accepted",
            TurnError::TooManyImages => "too_many_images",
        }
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            TurnError::Provider(e) | TurnError::ImageRefused { error: e, .. } => Some(e.kind),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TurnResult {
    pub reply: String,
    /// The model that answered (or the last one tried).
    pub model: ModelRef,
    /// The credential that answered.
    pub credential: Option<String>,
    pub attempts: Vec<Attempt>,
    pub usage: Option<Usage>,
    pub error: Option<TurnError>,
}

/// Errors after which the next model in the chain may do better.
fn worth_falling_back(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::RateLimit
            | ErrorKind::Billing
            | ErrorKind::Auth
            | ErrorKind::Overloaded
            | ErrorKind::Timeout
    )
}

/// What a turn has done so far. It lives outside the attempts future, so a deadline
/// that cuts the future off still knows the attempts and the call under way.
#[derive(Debug, Default)]
struct Progress {
    attempts: Vec<Attempt>,
    /// The model being tried.
    model: Option<ModelRef>,
    /// The credential whose call is under way.
    calling: Option<String>,
}

/// Counts the turn in the in-flight gauge until dropped — on every path, including a
/// turn future dropped by its caller.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a Metrics) -> InFlight<'a> {
        metrics.in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl Attempt {
    fn failed(cred: &Credential, e: &ProviderError) -> Attempt {
        Attempt {
            credential: cred.id.to_string(),
            outcome: e.kind.as_str().into(),
            retry_after_ms: e
                .retry_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The fingerprint a failure of `cred` is recorded under: a refused refresh under the
/// whole sign-in ([`Credential::sign_in_fingerprint`]), anything else under the secret.
pub fn standing_fingerprint(cred: &crate::auth::Credential, e: &ProviderError) -> String {
    if e.code.as_deref() == Some(crate::oauth::refresh::REFRESH_FAILED) {
        cred.sign_in_fingerprint()
    } else {
        cred.secret.fingerprint().to_string()
    }
}

/// A token endpoint that could not be reached or answered 5xx (DESIGN §5a): transient,
/// so the turn moves on to the next credential. A refusal (`refresh_failed`) is not: it
/// disables the sign-in and is handled like an auth error from the provider.
fn is_transient_refresh_error(e: &ProviderError) -> bool {
    e.code.as_deref() == Some(crate::oauth::refresh::REFRESH_UNAVAILABLE)
}

/// One provider call with `cred`, streamed into `sink` when there is one (`emitted` turns
/// true once a delta arrived). Boxed as `Send` here, where its lifetimes are concrete.
///
/// A reply that quotes the credential's own secret (a proxy echoing the key, a model
/// told it) shows `<redacted>` in its place, in the streamed deltas too, even when the
/// secret arrives cut across two of them (DESIGN §8: no secret in a chat reply; see
/// [`Redactor`] for the placeholder keys it leaves alone). The history keeps the redacted
/// text, so the secret never goes back to the model either.
fn call<'a, 's: 'a>(
    client: &'a ProviderClient,
    cred: &'a Credential,
    request: &'a ChatRequest,
    sink: Option<&'a mut (dyn FnMut(&str) + Send + 's)>,
    emitted: &'a AtomicBool,
) -> Pin<Box<dyn Future<Output = Result<Completion, ProviderError>> + Send + 'a>> {
    Box::pin(async move {
        let result = match sink {
            Some(s) => {
                let mut redactor = Redactor::new(&cred.secret);
                let result = {
                    let mut wrapped = |d: &str| {
                        emitted.store(true, Ordering::Relaxed);
                        let shown = redactor.push(d);
                        if !shown.is_empty() {
                            s(&shown);
                        }
                    };
                    client.stream(cred, request, &mut wrapped).await
                };
                // Shown once the reply is complete; a reply that fails mid-stream loses it
                // with the rest of its unfinished text.
                let rest = redactor.finish();
                if result.is_ok() && !rest.is_empty() {
                    s(&rest);
                }
                result
            }
            None => client.complete(cred, request).await,
        };
        result.map(|mut c| {
            c.text = Redactor::redact(&cred.secret, &c.text);
            c
        })
    })
}

impl Engine {
    /// Count the attempt and record its outcome in the cooldown book.
    async fn record(
        &self,
        provider: &str,
        cred: &Credential,
        model_key: &str,
        result: &Result<Completion, ProviderError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind.as_str(),
        };
        self.metrics
            .attempts
            .get_or_create(&crate::metrics::AttemptLabels {
                provider: provider.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        let now = self.resolver.clock.now_ms();
        let book = &self.resolver.cooldowns;
        let recorded = match result {
            Ok(_)
                if matches!(
                    cred.source,
                    CredentialSource::Profile | CredentialSource::Ref
                ) =>
            {
                book.record_success(&cred.id, &cred.state_fingerprints(), model_key, now)
                    .await
            }
            Ok(_) => {
                book.record_success_quiet(&cred.id, &cred.state_fingerprints(), model_key)
                    .await
            }
            Err(e) => book
                .record_failure(&cred.id, &standing_fingerprint(cred, e), model_key, e, now)
                .await
                .map(|_| ()),
        };
        if let Err(e) = recorded {
            tracing::warn!(credential = %cred.id, "could not record the outcome: {e}");
        }
    }

    /// Run one turn. With `sink`, the reply streams into it as it arrives. The turn
    /// ends within `turn_timeout()` whatever the providers do: with its reply, or with
    /// a `timeout` error.
    pub async fn run_turn(&self, input: TurnInput, sink: Option<DeltaSink<'_>>) -> TurnResult {
        let started = Instant::now();
        let _in_flight = InFlight::enter(&self.metrics);
        let limit = self.turn_timeout();
        let mut progress = Progress::default();
        let result =
            match tokio::time::timeout(limit, self.attempts(input, sink, &mut progress)).await {
                Ok(result) => result,
                Err(_) => self.deadline_passed(limit, progress),
            };
        self.finish(started, result)
    }

    /// The turn ran out of time: the call under way counts as a `timeout` attempt.
    fn deadline_passed(&self, limit: Duration, mut progress: Progress) -> TurnResult {
        let model = progress
            .model
            .take()
            .unwrap_or_else(|| self.catalog().default.clone());
        let provider = &model.provider;
        let doing = match progress.calling.take() {
            Some(credential) => {
                self.metrics
                    .attempts
                    .get_or_create(&crate::metrics::AttemptLabels {
                        provider: provider.clone(),
                        outcome: ErrorKind::Timeout.as_str().to_string(),
                    })
                    .inc();
                let doing = format!("{model} was still answering with {credential}");
                progress.attempts.push(Attempt {
                    credential,
                    outcome: ErrorKind::Timeout.as_str().into(),
                    retry_after_ms: None,
                });
                doing
            }
            None => format!("credentials for {model} were still being looked up"),
        };
        let message = format!(
            "{provider}: the turn did not finish within {} s (agents.defaults.turnTimeoutSecs): {doing}. Try again, or raise agents.defaults.turnTimeoutSecs.",
            limit.as_secs()
        );
        tracing::warn!(model = %model, attempts = progress.attempts.len(), "{message}");
        TurnResult {
            reply: String::new(),
            model,
            credential: None,
            attempts: progress.attempts,
            usage: None,
            error: Some(TurnError::Provider(ProviderError::new(
                ErrorKind::Timeout,
                message,
            ))),
        }
    }

    /// Every attempt of a turn, without the deadline (see `run_turn`).
    async fn attempts(
        &self,
        input: TurnInput,
        mut sink: Option<DeltaSink<'_>>,
        progress: &mut Progress,
    ) -> TurnResult {
        // One config for the whole turn, even if a reload lands meanwhile.
        let now = self.current();
        let with_images = images::carried(&input.messages);
        let chain = now.catalog.chain(input.model.as_ref());
        let chain = match images::chain(&now.config, &now.catalog, &input.messages, chain) {
            Ok(chain) => chain,
            Err(no_call) => return *no_call,
        };
        let mut messages = input.messages;
        if let Some(system) =
            input
                .system
                .as_ref()
                .or(now.config.agents.defaults.system_prompt.as_ref())
            && !messages.iter().any(|m| m.role == Role::System)
        {
            messages.insert(
                0,
                ChatMessage {
                    role: Role::System,
                    content: system.clone(),
                    images: Vec::new(),
                },
            );
        }
        let mut first_error: Option<TurnError> = None;
        let mut last_error: Option<TurnError> = None;
        let mut last_model = chain
            .first()
            .cloned()
            .unwrap_or_else(|| now.catalog.default.clone());
        // Whether a delta arrived (shown, or held back by the redactor as the possible start
        // of the key): after that, no other credential or model may answer.
        let emitted_flag = AtomicBool::new(false);
        let emitted = || emitted_flag.load(Ordering::Relaxed);

        'models: for model in &chain {
            last_model = model.clone();
            progress.model = Some(model.clone());
            let client = match now.client(&model.provider) {
                None => {
                    let e = TurnError::UnknownProvider {
                        provider: model.provider.clone(),
                        model: model.to_string(),
                    };
                    first_error.get_or_insert(e.clone());
                    last_error = Some(e);
                    continue;
                }
                Some(Err(e)) => {
                    last_error = Some(e.into());
                    continue;
                }
                Some(Ok(c)) => c,
            };
            let model_key = model.to_string();
            let candidates = match self
                .resolver_for(input.agent.as_deref())
                .attempt_list(&model.provider, &model_key, input.pin.as_deref())
                .await
            {
                Ok(res) => res,
                Err(e) => {
                    let fatal = !matches!(
                        e,
                        ResolveError::NoCredentials { .. } | ResolveError::NothingUsable { .. }
                    );
                    let e = match e {
                        ResolveError::StateStore(e) => TurnError::StateStore(e.to_string()),
                        e => TurnError::Resolve(e.to_string()),
                    };
                    first_error.get_or_insert(e.clone());
                    if fatal {
                        last_error = Some(e);
                        break 'models;
                    }
                    continue;
                }
            };
            let request = ChatRequest {
                model: model.model.clone(),
                messages: messages.clone(),
                max_tokens: self.max_tokens(),
            };
            let resolver = self.resolver_for(input.agent.as_deref());
            for listed in candidates.attempt_order() {
                // OAuth: an access token about to expire is refreshed first (DESIGN §5a).
                let refreshed = resolver.refresher.before_use(listed).await;
                if !matches!(refreshed, Ok(None)) {
                    self.metrics
                        .refresh(&model.provider, refresh_outcome(&refreshed));
                }
                let mut cred = match refreshed {
                    Ok(Some(fresh)) => fresh,
                    Ok(None) => listed.clone(),
                    Err(e) => {
                        self.record(&model.provider, listed, &model_key, &Err(e.clone()))
                            .await;
                        progress.attempts.push(Attempt::failed(listed, &e));
                        tracing::warn!(model = %model, credential = %listed.id, kind = e.kind.as_str(), error = %e.message, "OAuth refresh failed");
                        let (kind, transient) = (e.kind, is_transient_refresh_error(&e));
                        last_error = Some(e.into());
                        if transient {
                            continue; // the next credential may answer
                        }
                        // Refused: "sign in again" is the answer (the credential is now
                        // disabled, so the next turn starts elsewhere).
                        if worth_falling_back(kind) && input.pin.is_none() {
                            continue 'models;
                        }
                        break 'models;
                    }
                };
                progress.calling = Some(cred.id.to_string());
                let mut result =
                    call(&client, &cred, &request, sink.as_deref_mut(), &emitted_flag).await;
                // A 401 for an OAuth credential: refresh once (the expiry we hold may be
                // wrong) and try again once.
                let unauthorized = match &result {
                    Err(e) if e.status == Some(401) && cred.kind == CredentialKind::Oauth => {
                        Some(Attempt::failed(&cred, e))
                    }
                    _ => None,
                };
                let retry = match unauthorized {
                    Some(attempt) if !emitted() => {
                        progress.attempts.push(attempt);
                        let r = resolver.refresher.after_unauthorized(&cred).await;
                        self.metrics.refresh(&model.provider, refresh_outcome(&r));
                        Some(r)
                    }
                    _ => None,
                };
                match retry {
                    Some(Ok(fresh)) => {
                        cred = fresh;
                        result = call(&client, &cred, &request, sink.as_deref_mut(), &emitted_flag)
                            .await;
                    }
                    Some(Err(re)) => result = Err(re),
                    None => {}
                }
                progress.calling = None;
                self.record(&model.provider, &cred, &model_key, &result)
                    .await;
                match result {
                    Ok(c) => {
                        progress.attempts.push(Attempt {
                            credential: cred.id.to_string(),
                            outcome: "ok".into(),
                            retry_after_ms: None,
                        });
                        tracing::info!(model = %model, credential = %cred.id, attempts = progress.attempts.len(), "turn answered");
                        return TurnResult {
                            reply: c.text,
                            model: model.clone(),
                            credential: Some(cred.id.to_string()),
                            attempts: std::mem::take(&mut progress.attempts),
                            usage: c.usage,
                            error: None,
                        };
                    }
                    Err(e) => {
                        progress.attempts.push(Attempt::failed(&cred, &e));
                        tracing::warn!(model = %model, credential = %cred.id, kind = e.kind.as_str(), error = %e.message, "provider call failed");
                        let kind = e.kind;
                        let refresh_transient = is_transient_refresh_error(&e);
                        last_error = Some(e.into());
                        if emitted() {
                            break 'models; // part of a reply went out: never mix in another answer
                        }
                        if refresh_transient {
                            continue; // the token endpoint is down; the next credential may answer
                        }
                        if kind != ErrorKind::RateLimit {
                            if worth_falling_back(kind) && input.pin.is_none() {
                                continue 'models;
                            }
                            break 'models;
                        }
                    }
                }
            }
            if input.pin.is_some() {
                break;
            }
        }
        // A pinned profile that this very turn put in a cooldown (or disabled) answers as
        // one found so at the start of a turn would (DESIGN §5.1): why, until when and how
        // to unpin, with what the provider said.
        if let (Some(pin), Some(TurnError::Provider(e))) = (input.pin.as_deref(), &mut last_error)
            && matches!(
                e.kind,
                ErrorKind::RateLimit | ErrorKind::Billing | ErrorKind::Auth
            )
            && !emitted()
            && let Err(ResolveError::PinUnusable(why)) = self
                .resolver_for(input.agent.as_deref())
                .attempt_list(&last_model.provider, &last_model.to_string(), Some(pin))
                .await
        {
            e.message = format!("{why} (The provider said: {})", e.message);
        }
        let error = last_error
            .or(first_error)
            .unwrap_or_else(|| TurnError::Resolve("no model to try".into()));
        let error = images::refusal(with_images, &last_model, error);
        TurnResult {
            reply: String::new(),
            model: last_model,
            credential: None,
            attempts: std::mem::take(&mut progress.attempts),
            usage: None,
            error: Some(error),
        }
    }

    fn finish(&self, started: Instant, result: TurnResult) -> TurnResult {
        self.metrics
            .turn_seconds
            .observe(started.elapsed().as_secs_f64());
        let outcome = result
            .error
            .as_ref()
            .map_or("ok", TurnError::outcome)
            .to_string();
        self.metrics
            .turns
            .get_or_create(&crate::metrics::OutcomeLabels { outcome })
            .inc();
        result
    }
}

/// The `outcome` label of an OAuth refresh: `ok`, or the error's code (`refresh_failed`,
/// `refresh_unavailable`).
fn refresh_outcome<T>(r: &Result<T, crate::providers::ProviderError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.code.as_deref() == Some(crate::oauth::refresh::REFRESH_FAILED) => {
            "refresh_failed"
        }
        Err(_) => "refresh_unavailable",
    }
}
