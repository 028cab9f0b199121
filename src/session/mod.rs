//! Live chat sessions: per-session conversation history, with turns of one session run
//! one at a time (a per-session async lock) while sessions run concurrently.
//!
//! This is the in-memory core; durable state (model choice, pins) and the `/model`
//! directives plug in on top of it.

use crate::providers::ChatMessage;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Default, Clone)]
pub struct SessionState {
    pub history: Vec<ChatMessage>,
}

impl SessionState {
    /// Append a finished exchange, keeping at most `max_turns` user/assistant pairs.
    pub fn push_exchange(&mut self, user: ChatMessage, assistant: ChatMessage, max_turns: usize) {
        self.history.push(user);
        self.history.push(assistant);
        let max_messages = max_turns.saturating_mul(2);
        if self.history.len() > max_messages {
            let excess = self.history.len() - max_messages;
            self.history.drain(..excess);
        }
    }
}

#[derive(Debug, Default)]
pub struct Sessions {
    live: DashMap<String, Arc<Mutex<SessionState>>>,
}

impl Sessions {
    /// Lock a session for one turn (created on first use). Waiters are served in
    /// arrival order (tokio's mutex is fair).
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<SessionState> {
        let slot = self.live.entry(key.to_string()).or_default().clone();
        slot.lock_owned().await
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded() {
        let mut s = SessionState::default();
        for i in 0..5 {
            s.push_exchange(
                ChatMessage::user(format!("u{i}")),
                ChatMessage::assistant(format!("a{i}")),
                2,
            );
        }
        let texts: Vec<&str> = s.history.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["u3", "a3", "u4", "a4"]);
    }

    #[tokio::test]
    async fn same_session_turns_are_serialized() {
        let sessions = Arc::new(Sessions::default());
        let first = sessions.lock("web:a").await;
        let s2 = sessions.clone();
        let waiter = tokio::spawn(async move { s2.lock("web:a").await.history.len() });
        let other = sessions.lock("web:b").await; // another session is not blocked
        drop(other);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert_eq!(waiter.await.expect("join"), 0);
    }
}
