//! Inspecting the fake: every call, every message sent, every poll's offset, and
//! waiting (with a deadline) until a condition on them holds.

use std::pin::pin;
use std::time::Duration;

use serde_json::Value;

use super::{FakeTelegram, RecordedCall, SentMessage, St, lock};

impl FakeTelegram {
    /// Every request, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.inner.state).calls.clone()
    }

    /// Requests of one method (case-insensitive).
    pub fn calls_of(&self, method: &str) -> Vec<RecordedCall> {
        let method = method.to_ascii_lowercase();
        lock(&self.inner.state)
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Whether every call is kept for `calls()` (default) or only counted per method
    /// (`call_counts()`): a load benchmark measures the gateway, not the fake's copies.
    pub fn keep_calls(&self, keep: bool) {
        lock(&self.inner.state).skip_calls = !keep;
    }

    /// Calls per lower-cased method so far (kept or not).
    pub fn call_counts(&self) -> std::collections::BTreeMap<String, usize> {
        lock(&self.inner.state).call_counts.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.inner.state).calls.clear();
    }

    /// Messages the bot sent or edited successfully, in order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        lock(&self.inner.state).sent.clone()
    }

    /// Waits until at least `n` `sendMessage` calls succeeded or `timeout`
    /// passed; returns the successful `sendMessage`s (edits and drafts left out).
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let is_send = |m: &SentMessage| !m.is_edit() && !m.is_draft();
        self.wait_until(timeout, |st| st.sends >= n).await;
        self.sent_messages().into_iter().filter(is_send).collect()
    }

    /// Waits until at least `n` `sendMessage` calls succeeded or `timeout` passed,
    /// without copying them (for load benchmarks); returns when the `n`-th was sent.
    pub async fn wait_for_sends(&self, n: usize, timeout: Duration) -> Option<std::time::Instant> {
        self.wait_until(timeout, |st| st.sends >= n).await;
        let st = lock(&self.inner.state);
        st.sent
            .iter()
            .filter(|m| !m.is_edit() && !m.is_draft())
            .nth(n.checked_sub(1)?)
            .map(|m| m.at)
    }

    /// How many `sendMessage` calls succeeded so far.
    pub fn sends(&self) -> usize {
        lock(&self.inner.state).sends
    }

    /// Waits until at least `n` calls of `method` were received (answered or
    /// not) or `timeout` passed; returns them.
    pub async fn wait_for_calls(
        &self,
        method: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedCall> {
        let lc = method.to_ascii_lowercase();
        self.wait_until(timeout, |st| {
            st.calls.iter().filter(|c| c.method == lc).count() >= n
        })
        .await;
        self.calls_of(method)
    }

    /// The body of the last accepted `setMyCommands` (`{"commands":[...], "scope"?, ...}`).
    pub fn commands(&self) -> Option<Value> {
        lock(&self.inner.state).last_commands.clone()
    }

    /// The `offset` every `getUpdates` carried (`None`: no offset), in arrival order.
    pub fn poll_offsets(&self) -> Vec<Option<i64>> {
        lock(&self.inner.state).poll_offsets.clone()
    }

    /// Waits until `pred` holds for the messages sent so far (edits included) or
    /// `timeout` passed; returns them.
    pub async fn wait_for_sent(
        &self,
        timeout: Duration,
        pred: impl Fn(&[SentMessage]) -> bool,
    ) -> Vec<SentMessage> {
        self.wait_until(timeout, |st| pred(&st.sent)).await;
        self.sent_messages()
    }

    /// The webhook as the last `setWebhook` left it: `(url, secret_token,
    /// allowed_updates)`; `None` when none is set (never, or `deleteWebhook`).
    pub fn webhook(&self) -> Option<(String, Option<String>, Option<Value>)> {
        let st = lock(&self.inner.state);
        (!st.webhook_url.is_empty()).then(|| {
            (
                st.webhook_url.clone(),
                st.webhook_secret.clone(),
                st.webhook_allowed_updates.clone(),
            )
        })
    }

    /// The largest `offset` any `getUpdates` carried (0 if none did).
    pub fn highest_offset_seen(&self) -> i64 {
        lock(&self.inner.state).highest_offset
    }

    async fn wait_until(&self, timeout: Duration, pred: impl Fn(&St) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.inner.changed.notified());
            notified.as_mut().enable();
            if pred(&lock(&self.inner.state)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&lock(&self.inner.state));
            }
        }
    }
}
