//! How many turns run at once (`gateway.maxConcurrentTurns`, DESIGN §7). Turns past the
//! limit wait in arrival order (tokio's semaphore is fair); past a bounded wait queue a
//! caller is told `Busy` at once instead of piling up. Nothing here knows about HTTP, so
//! chat channels can share one limiter with the gateway.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds a refused caller is told to wait before trying again.
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug)]
pub struct TurnLimiter {
    permits: Arc<Semaphore>,
    max_running: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
}

/// A running turn's slot; dropping it lets the next waiting turn run.
#[derive(Debug)]
pub struct TurnPermit {
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "busy: {max_running} turns are running (gateway.maxConcurrentTurns) and {max_waiting} more are waiting; try again in a few seconds"
)]
pub struct Busy {
    pub max_running: usize,
    pub max_waiting: usize,
}

/// Counts a caller in the wait queue for as long as it waits (also if it gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TurnLimiter {
    /// `max_running` turns at once; at most `max_waiting` more wait for a slot.
    pub fn new(max_running: NonZeroUsize, max_waiting: usize) -> TurnLimiter {
        let max_running = max_running.get().min(Semaphore::MAX_PERMITS);
        TurnLimiter {
            permits: Arc::new(Semaphore::new(max_running)),
            max_running,
            max_waiting,
            waiting: AtomicUsize::new(0),
        }
    }

    /// The gateway's choice: `maxConcurrentTurns` running and as many waiting.
    pub fn from_config(max_concurrent_turns: NonZeroUsize) -> TurnLimiter {
        TurnLimiter::new(max_concurrent_turns, max_concurrent_turns.get())
    }

    /// A slot for one turn: at once when one is free, else after the turns that came
    /// first; `Busy` at once when the wait queue is full. Cancel-safe: a caller that
    /// stops waiting leaves the queue.
    pub async fn acquire(&self) -> Result<TurnPermit, Busy> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(TurnPermit { _permit: p });
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _queued = Waiting(&self.waiting);
        if before >= self.max_waiting {
            return Err(self.busy());
        }
        // The semaphore is never closed; treat it as busy rather than panic if it were.
        match self.permits.clone().acquire_owned().await {
            Ok(p) => Ok(TurnPermit { _permit: p }),
            Err(_) => Err(self.busy()),
        }
    }

    fn busy(&self) -> Busy {
        Busy {
            max_running: self.max_running,
            max_waiting: self.max_waiting,
        }
    }

    /// Turns holding a slot now.
    pub fn running(&self) -> usize {
        self.max_running
            .saturating_sub(self.permits.available_permits())
    }

    /// Turns waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).unwrap()
    }

    #[tokio::test]
    async fn waits_in_order_and_refuses_past_the_queue() {
        let limiter = Arc::new(TurnLimiter::new(n(1), 2));
        let first = limiter.acquire().await.unwrap();
        assert_eq!(limiter.running(), 1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..2 {
            let (l, o) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = l.acquire().await.unwrap();
                o.lock().unwrap().push(i);
                drop(p);
            }));
            // Let task i queue before the next one arrives.
            while limiter.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(
            limiter.acquire().await.unwrap_err(),
            Busy {
                max_running: 1,
                max_waiting: 2
            }
        );
        assert_eq!(limiter.waiting(), 2, "a refused caller leaves no trace");
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1]);
        assert_eq!((limiter.running(), limiter.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_queue() {
        let limiter = TurnLimiter::new(n(1), 1);
        let held = limiter.acquire().await.unwrap();
        {
            let wait = limiter.acquire();
            tokio::pin!(wait);
            assert!(futures_util::FutureExt::now_or_never(wait.as_mut()).is_none());
            assert_eq!(limiter.waiting(), 1);
        }
        assert_eq!(limiter.waiting(), 0);
        drop(held);
        assert!(limiter.acquire().await.is_ok());
    }
}
