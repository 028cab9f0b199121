//! Graceful drain for the Discord channel: serenity runs every gateway event in a task
//! of its own, so the channel counts the handlers in flight. On shutdown the gate
//! closes (a handler that starts later is `late`: it runs no turn, at most records the
//! message for the next start) and [`Gate::close_and_wait`] returns once every handler
//! in flight has finished its turn and sent its reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Notify;

/// Handlers in flight, and whether new ones may start.
#[derive(Debug, Default)]
pub(super) struct Gate {
    closed: AtomicBool,
    active: AtomicUsize,
    idle: Notify,
    /// Ended when the channel is stopped past its grace: handlers end where they wait.
    ended: crate::channels::Ending,
}

/// Ends the channel's handlers when the channel's future is dropped (`Running::stop`
/// aborts it past the grace): a reply they sent later would answer again what the
/// restarted channel answers from the inbox.
pub(super) struct EndOnDrop(pub(super) Arc<Gate>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.ended.end();
    }
}

/// Held by a handler while it works; dropping it lets a waiting drain finish.
#[derive(Debug)]
pub(super) struct Pass {
    gate: Arc<Gate>,
    late: bool,
}

impl Pass {
    /// The gate was already closed when this handler started: no turn.
    pub(super) fn late(&self) -> bool {
        self.late
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if self.gate.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.gate.idle.notify_waiters();
        }
    }
}

impl Gate {
    /// A pass for one handler; check [`Pass::late`] before starting a turn.
    pub(super) fn enter(self: &Arc<Self>) -> Pass {
        // Count first, then look: a concurrent `close_and_wait` either sees this
        // handler in `active` or this handler sees the gate closed.
        self.active.fetch_add(1, Ordering::SeqCst);
        Pass {
            gate: self.clone(),
            late: self.closed.load(Ordering::SeqCst),
        }
    }

    /// Run a handler's work unless the channel ends first (then `None`, the work dropped
    /// where it waits: no reply, the message stays open in the inbox).
    pub(super) async fn unless_ended<F: std::future::Future>(&self, work: F) -> Option<F::Output> {
        self.ended.unless_ended(work).await
    }

    /// Close the gate, then wait until no handler holds a pass.
    pub(super) async fn close_and_wait(&self) {
        self.closed.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_handlers_in_flight_and_turns_new_ones_away() {
        let gate = Arc::new(Gate::default());
        let pass = gate.enter();
        assert!(!pass.late());
        let g = gate.clone();
        let drained = tokio::spawn(async move { g.close_and_wait().await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let late = gate.enter();
        assert!(late.late(), "a handler that starts now runs no turn");
        drop(late);
        assert!(
            !drained.is_finished(),
            "still waiting for the one in flight"
        );
        drop(pass);
        tokio::time::timeout(Duration::from_secs(1), drained)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn handlers_end_where_they_wait_once_the_channel_is_dropped() {
        let gate = Arc::new(Gate::default());
        let guard = EndOnDrop(gate.clone());
        let g = gate.clone();
        let handler = tokio::spawn(async move {
            g.unless_ended(async {
                let _pass = g.enter();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "replied"
            })
            .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(guard);
        let out = tokio::time::timeout(Duration::from_secs(1), handler)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, None, "the handler was cut off, not left to reply");
        gate.close_and_wait().await;
        // A handler that starts after the end does nothing either.
        assert_eq!(gate.unless_ended(async { 1 }).await, None);
    }

    #[tokio::test]
    async fn an_idle_gate_drains_at_once() {
        let gate = Arc::new(Gate::default());
        assert!(!gate.enter().late());
        gate.close_and_wait().await;
        assert!(gate.enter().late());
    }
}
