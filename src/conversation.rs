//! A chat message in a session, end to end: take the session's turn lock, send history
//! plus the new message through the engine, and keep the exchange in history when it
//! succeeds. Used by the web chat, the terminal chat and `remoteclaw agent`.

use crate::app::App;
use crate::engine::{TurnInput, TurnResult};
use crate::providers::{ChatMessage, DeltaSink};

/// Send `text` as the next user message of `session`. The reply streams into `sink`.
pub async fn converse(
    app: &App,
    session: &str,
    text: &str,
    sink: Option<DeltaSink<'_>>,
) -> TurnResult {
    let mut state = app.sessions.lock(session).await;
    let user = ChatMessage::user(text);
    let mut messages = state.history.clone();
    messages.push(user.clone());
    let result = app
        .engine
        .run_turn(
            TurnInput {
                model: None,
                pin: None,
                messages,
            },
            sink,
        )
        .await;
    if result.error.is_none() {
        state.push_exchange(
            user,
            ChatMessage::assistant(result.reply.clone()),
            app.config.session.history_turns,
        );
    }
    result
}
