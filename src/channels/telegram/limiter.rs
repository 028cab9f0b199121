//! Honouring Telegram's flood control: after a 429 with `retry_after`, nothing more is
//! sent to that chat — nor, for the same span, to any chat (Telegram's limits are both
//! per chat and per bot) — until the wait is over. The limiter is reactive: it never
//! slows a bot that is not being told to. Each message is still sent exactly once, since
//! a 429 means it was not delivered. A `retry_after` is clamped to 24 h (DESIGN §8).

use dashmap::DashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The longest pause a `retry_after` can ask for.
pub const MAX_RETRY_AFTER: Duration = crate::providers::error::MAX_RETRY_HINT;

#[derive(Debug, Default)]
pub struct Limiter {
    global: Mutex<Option<Instant>>,
    chats: DashMap<i64, Instant>,
}

impl Limiter {
    /// Wait until both the bot-wide and this chat's pauses are over.
    pub async fn wait(&self, chat: i64) {
        let global = self.global.lock().ok().and_then(|g| *g);
        let chat_until = self.chats.get(&chat).map(|e| *e.value());
        if let Some(until) = global.into_iter().chain(chat_until).max() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Telegram said `retry_after` for a send to `chat`.
    pub fn back_off(&self, chat: i64, retry_after: Duration) {
        let until = Instant::now() + retry_after.min(MAX_RETRY_AFTER);
        self.chats
            .entry(chat)
            .and_modify(|u| *u = (*u).max(until))
            .or_insert(until);
        if let Ok(mut g) = self.global.lock() {
            *g = Some(g.map_or(until, |g| g.max(until)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_that_chat_and_the_bot_for_retry_after() {
        let l = Limiter::default();
        let t0 = Instant::now();
        l.wait(1).await;
        assert_eq!(Instant::now(), t0, "no pause without a 429");
        l.back_off(1, Duration::from_secs(3));
        l.wait(1).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        l.back_off(2, Duration::from_secs(5));
        let t1 = Instant::now();
        l.wait(7).await;
        assert_eq!(
            Instant::now() - t1,
            Duration::from_secs(5),
            "other chats wait for the bot-wide pause too"
        );
        let t2 = Instant::now();
        l.back_off(3, Duration::from_secs(u64::from(u32::MAX)));
        l.wait(3).await;
        assert_eq!(Instant::now() - t2, MAX_RETRY_AFTER, "clamped to 24 h");
    }
}
