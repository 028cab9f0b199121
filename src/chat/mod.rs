//! One inbound chat message, for every channel: parse the directive (if any), apply it
//! to the session (stored before the reply), then run the rest of the message as a turn
//! with the session's model, pin and history. Platform details stay in the channels;
//! this module never sees a Telegram or Discord type.

pub mod views;

use crate::app::App;
use crate::directive::{self, Directive, ParseContext, Parsed};
use crate::engine::{TurnInput, TurnResult};
use crate::providers::{ChatMessage, DeltaSink};
use crate::session::{Pin, PinSource, SessionError, SessionTurn};
use serde::Serialize;

/// A message as a channel hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub session: &'a str,
    pub text: &'a str,
    /// May pin credential profiles (channel `owners`; the operator at the terminal).
    pub owner: bool,
    /// This bot's username, for `/model@Bot` (Telegram).
    pub bot_username: Option<&'a str>,
    /// Whose credentials this message's turns use (`channels.<c>.agent`); `None` = the
    /// default agent.
    pub agent: Option<&'a str>,
    /// The system prompt for this chat (a group's or channel's, else the channel's);
    /// `None` = `agents.defaults.systemPrompt` (DESIGN §10).
    pub system_prompt: Option<&'a str>,
    /// The text of the message this one replies to, which goes to the model with it.
    pub quoted: Option<&'a str>,
    /// Images and text files sent with the message, downloaded and checked by the
    /// channel (DESIGN §10).
    pub attachments: &'a [crate::media::Attachment],
}

/// The `directive` field of `agent --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectiveInfo {
    pub kind: &'static str,
    pub model: Option<String>,
    pub profile: Option<String>,
}

/// What came of a message.
#[derive(Debug, Clone, Default)]
pub struct ChatResult {
    /// The directive's answer (a view, an acknowledgement or an error), if there was one.
    pub notice: Option<String>,
    pub directive: Option<DirectiveInfo>,
    pub turn: Option<TurnResult>,
    /// Why nothing (more) was done: busy session, refused or malformed directive, store failure.
    pub error: Option<String>,
    /// The message was addressed to another bot: say nothing.
    pub ignored: bool,
    /// The session's model after this message (the one that answered, if a turn ran).
    pub model: Option<crate::catalog::ModelRef>,
}

impl ChatResult {
    fn failed(text: String) -> ChatResult {
        ChatResult {
            notice: Some(text.clone()),
            error: Some(text),
            ..ChatResult::default()
        }
    }

    /// True when something went wrong (a refused directive or a failed turn).
    pub fn is_error(&self) -> bool {
        self.error.is_some() || self.turn.as_ref().is_some_and(|t| t.error.is_some())
    }

    /// The reply a channel shows: the turn's reply (or its error) if a turn ran, else
    /// the notice.
    pub fn reply_text(&self) -> String {
        match &self.turn {
            Some(t) => match &t.error {
                None => t.reply.clone(),
                Some(e) if t.reply.is_empty() => e.to_string(),
                Some(e) => format!("{}\n\n{e}", t.reply),
            },
            None => self.notice.clone().unwrap_or_default(),
        }
    }
}

fn info(d: &Directive) -> DirectiveInfo {
    let kind = match d {
        Directive::ModelShow => "show",
        Directive::ModelList => "list",
        Directive::ModelStatus => "status",
        Directive::ModelDefault => "default",
        Directive::ModelSelect { .. } => "select",
        Directive::New => "new",
        Directive::Reset => "reset",
        Directive::Help => "help",
        Directive::Usage => "usage",
    };
    // A select names what was asked for (as typed); once it succeeds, the resolved model
    // id and the pinned profile replace it.
    let (model, profile) = match d {
        Directive::ModelSelect { model, profile } => (Some(model.clone()), profile.clone()),
        _ => (None, None),
    };
    DirectiveInfo {
        kind,
        model,
        profile,
    }
}

/// Handle one message of a session-keeping channel (web chat, terminal, Telegram,
/// Discord). `sink` receives the reply as it streams (a directive's notice first when
/// the message also carries text for the model).
pub async fn handle(app: &App, msg: Inbound<'_>, sink: Option<DeltaSink<'_>>) -> ChatResult {
    let channel = crate::metrics::channel_of(msg.session);
    let result = handle_message(app, msg, sink).await;
    if !result.ignored {
        app.metrics.message(channel, "in");
        if result.notice.is_some() || result.turn.is_some() {
            app.metrics.message(channel, "out");
        }
    }
    result
}

async fn handle_message(
    app: &App,
    msg: Inbound<'_>,
    mut sink: Option<DeltaSink<'_>>,
) -> ChatResult {
    let ctx = ParseContext {
        bot_username: msg.bot_username,
        aliases: &app.engine.catalog().alias_words,
    };
    let (directive, rest) = match directive::parse(msg.text, &ctx) {
        Parsed::NotForUs => {
            return ChatResult {
                ignored: true,
                ..ChatResult::default()
            };
        }
        Parsed::Error { error, .. } => return ChatResult::failed(error.to_string()),
        Parsed::Plain => (None, directive::tidy(msg.text).to_string()),
        Parsed::Directive {
            directive, rest, ..
        } => (Some(directive), rest),
    };
    let mut turn = match app.sessions.begin(msg.session).await {
        Ok(t) => t,
        Err(e @ SessionError::Busy) => return ChatResult::failed(e.to_string()),
        Err(e) => return ChatResult::failed(e.to_string()),
    };
    let mut result = ChatResult::default();
    if let Some(d) = directive {
        let (text, info, ok) = apply(app, &mut turn, &d, msg.owner, msg.agent).await;
        result.directive = Some(info);
        result.model = Some(views::effective_model(app, turn.state()).0);
        if !ok {
            result.error = Some(text.clone());
            result.notice = Some(text);
            return result;
        }
        // Punctuation that only ended the directive's sentence (`/model opus.`, `/model
        // opus?`) is not a message for the model.
        let only_punctuation = rest
            .chars()
            .all(|c| c.is_ascii_punctuation() || c.is_whitespace());
        if only_punctuation && msg.attachments.is_empty() {
            result.notice = Some(text);
            return result;
        }
        if let Some(s) = sink.as_deref_mut() {
            s(&format!("{text}\n\n"));
        }
        result.notice = Some(text);
    }
    // A photo without a caption is still a message for the model.
    if rest.is_empty() && msg.attachments.is_empty() {
        return result;
    }
    let t = run_turn(app, &mut turn, &rest, &msg, sink).await;
    result.model = Some(t.model.clone());
    result.turn = Some(t);
    result
}

/// Add an answered turn's tokens to its session's and credential's totals (DESIGN §10),
/// in the background: a reply never waits for `state.db` (a CLI may hold its lock).
pub(crate) fn record_usage(app: &App, session: &str, result: &TurnResult) {
    let (Some(usage), Some(credential)) = (result.usage, result.credential.clone()) else {
        return;
    };
    let book = app.usage().clone();
    let (session, now) = (session.to_string(), app.clock.now_ms());
    app.in_background(async move {
        if let Err(e) = book.record(&session, &credential, usage, now).await {
            tracing::warn!(session, "could not record the usage: {e}");
        }
    });
}

/// The most of a replied-to message that goes to the model with the reply.
pub const MAX_QUOTE_CHARS: usize = 4000;

/// The user's text with the message it replies to, quoted before it.
fn with_quote(text: &str, quoted: Option<&str>) -> String {
    match quoted.map(str::trim).filter(|q| !q.is_empty()) {
        None => text.to_string(),
        Some(q) => {
            let mut q: String = q.chars().take(MAX_QUOTE_CHARS).collect();
            if q.len() < quoted.map_or(0, |x| x.trim().len()) {
                q.push('…');
            }
            let quoted: String = q
                .lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n");
            format!("(In reply to:)\n{quoted}\n\n{text}")
        }
    }
}

/// Reply when the whole gateway is at `gateway.maxConcurrentTurns` with a full wait queue.
pub const GATEWAY_BUSY_REPLY: &str = "I'm answering too many conversations at once right now — please send your message again in a minute.";

/// [`handle`] for the chat channels (Telegram, Discord): the message first takes one of
/// the gateway's turn slots (`gateway.maxConcurrentTurns`, shared with the HTTP API),
/// waiting in arrival order; when even the wait queue is full it gets a busy reply at
/// once and nothing is run.
pub async fn handle_limited(
    app: &App,
    msg: Inbound<'_>,
    sink: Option<DeltaSink<'_>>,
) -> ChatResult {
    let _slot = match app.turns.acquire().await {
        Ok(p) => p,
        Err(busy) => {
            tracing::warn!(session = msg.session, "{busy}");
            return ChatResult::failed(GATEWAY_BUSY_REPLY.to_string());
        }
    };
    handle(app, msg, sink).await
}

/// Run `text` as the next user message of the session held by `turn`.
async fn run_turn(
    app: &App,
    turn: &mut SessionTurn,
    text: &str,
    msg: &Inbound<'_>,
    sink: Option<DeltaSink<'_>>,
) -> TurnResult {
    let state = turn.state();
    let (model, chosen) = views::effective_model(app, state);
    let (user, stored) = crate::media::user_message(with_quote(text, msg.quoted), msg.attachments);
    let mut messages = state.history.clone();
    messages.push(user);
    let input = TurnInput {
        model: chosen.then_some(model),
        pin: state.pin.as_ref().map(|p| p.profile.clone()),
        messages,
        agent: msg.agent.map(str::to_string),
        system: msg.system_prompt.map(str::to_string),
    };
    let result = app.engine.run_turn(input, sink).await;
    record_usage(app, turn.key(), &result);
    if result.error.is_none()
        && let Err(e) = turn
            .append_exchange(stored, ChatMessage::assistant(result.reply.clone()))
            .await
    {
        tracing::warn!(session = turn.key(), "could not store the exchange: {e}");
    }
    result
}

/// Apply a directive to the session. Returns the reply, the `directive` info, and
/// whether it succeeded (a refused directive stops the message there).
pub async fn apply(
    app: &App,
    turn: &mut SessionTurn,
    d: &Directive,
    owner: bool,
    agent: Option<&str>,
) -> (String, DirectiveInfo, bool) {
    let now = app.clock.now_ms();
    let mut info = info(d);
    let stored = |r: Result<(), crate::session::StoreError>| {
        r.map_err(|e| format!("Could not save the change: {e}"))
    };
    let (text, ok) = match d {
        Directive::ModelShow => (views::compact(app, turn.state(), now), true),
        Directive::ModelList => (views::list(app, turn.state()), true),
        Directive::ModelStatus => (views::status(app, turn.state(), now, agent).await, true),
        Directive::Help => (directive::spec::help_text(), true),
        Directive::Usage => match app.usage().clone().session(turn.key()).await {
            Ok((t, turns)) => (
                format!(
                    "This chat has used {} input and {} output tokens over {turns} answered {}.",
                    t.input_tokens,
                    t.output_tokens,
                    if turns == 1 { "message" } else { "messages" }
                ),
                true,
            ),
            Err(e) => (format!("Could not read the usage: {e}"), false),
        },
        Directive::ModelDefault => match stored(turn.set_choice(None, None).await) {
            Ok(()) => (
                format!(
                    "Back to the default model, {}. No credential pinned.",
                    app.engine.catalog().default
                ),
                true,
            ),
            Err(e) => (e, false),
        },
        Directive::New | Directive::Reset => match stored(turn.clear_history().await) {
            Ok(()) => {
                let (model, _) = views::effective_model(app, turn.state());
                let pin = turn
                    .state()
                    .pin
                    .as_ref()
                    .map(|p| format!(", pinned to {}", p.profile))
                    .unwrap_or_default();
                (format!("Started a new conversation ({model}{pin})."), true)
            }
            Err(e) => (e, false),
        },
        Directive::ModelSelect { model, profile } => {
            match select(app, model, profile.as_deref(), owner, agent).await {
                Err(e) => (e, false),
                Ok((model_ref, pin_id)) => {
                    info.model = Some(model_ref.to_string());
                    info.profile = pin_id.clone();
                    let pin = pin_id.as_ref().map(|p| Pin {
                        profile: p.clone(),
                        source: PinSource::User,
                        since: now,
                    });
                    match stored(turn.set_choice(Some(model_ref.to_string()), pin).await) {
                        Err(e) => (e, false),
                        Ok(()) => {
                            let alias = app
                                .engine
                                .catalog()
                                .alias_of(&model_ref)
                                .map(|a| format!(" ({a})"))
                                .unwrap_or_default();
                            let pin = match &pin_id {
                                Some(p) => format!(
                                    " Pinned to credential profile {p}; /model default unpins."
                                ),
                                None => String::new(),
                            };
                            (format!("Model set to {model_ref}{alias}.{pin}"), true)
                        }
                    }
                }
            }
        }
    };
    (text, info, ok)
}

/// Check a `/model <model>[@profile]` request: model allowed, pin allowed for this
/// sender, profile exists and belongs to the model's provider.
pub async fn select(
    app: &App,
    model: &str,
    profile: Option<&str>,
    owner: bool,
    agent: Option<&str>,
) -> Result<(crate::catalog::ModelRef, Option<String>), String> {
    let model_ref = app
        .engine
        .catalog()
        .resolve(model)
        .map_err(|e| e.to_string())?;
    let Some(profile) = profile else {
        return Ok((model_ref, None));
    };
    if !owner {
        return Err(format!(
            "Only owners can pin a credential profile (@{profile}). Use /model {model} without @profile, or ask an owner to pin it."
        ));
    }
    let resolver = app.engine.resolver_for(agent);
    let store = resolver.store_holding(Some(profile)).await;
    let of_provider = resolver.listed_ids(&store, &model_ref.provider);
    let listing = if of_provider.is_empty() {
        "none".to_string()
    } else {
        of_provider.join(", ")
    };
    match store.profiles.get(profile) {
        None => Err(format!(
            "Auth profile \"{profile}\" not found. Profiles for {}: {listing}.",
            model_ref.provider
        )),
        Some(p) if p.provider != model_ref.provider => Err(format!(
            "Auth profile \"{profile}\" is for {}, not {} (model {model_ref}). Profiles for {}: {listing}.",
            p.provider, model_ref.provider, model_ref.provider
        )),
        Some(_) => Ok((model_ref, Some(profile.to_string()))),
    }
}
