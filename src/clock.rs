//! Time as a dependency: decision code asks a `Clock` instead of the system, so tests
//! can fix "now".

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(now_ms)))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The pause before trying again after a failure that may pass (a platform's network or
/// 5xx, a store blip): 1 s, doubling to 60 s; back to 1 s after a success.
#[derive(Debug)]
pub(crate) struct Backoff(std::time::Duration);

impl Backoff {
    const FIRST: std::time::Duration = std::time::Duration::from_secs(1);
    const MOST: std::time::Duration = std::time::Duration::from_secs(60);

    pub(crate) fn new() -> Backoff {
        Backoff(Self::FIRST)
    }

    /// The pause to take now; the next one is twice as long (at most a minute).
    pub(crate) fn next(&mut self) -> std::time::Duration {
        let now = self.0;
        self.0 = (now * 2).min(Self::MOST);
        now
    }

    /// It worked: the next failure starts from 1 s again.
    pub(crate) fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}
