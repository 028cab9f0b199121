//! Work a process finishes before it exits: tasks spawned off a request's path (usage
//! totals after a reply, answered marks tried again) and waited for, within a limit,
//! at the end (`App::settle`).

use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinSet;

/// A set of tasks, the finished ones reaped as new ones come.
#[derive(Debug, Default)]
pub struct Tasks {
    set: Mutex<JoinSet<()>>,
    /// Where the tasks run; `None`: the runtime of whoever spawns them.
    runtime: Option<tokio::runtime::Handle>,
}

impl Tasks {
    /// Tasks that run on the runtime current now (the gateway's), wherever they are
    /// spawned from: they outlive a channel's own runtime (the Telegram poller's).
    pub fn on_current_runtime() -> Tasks {
        Tasks {
            set: Mutex::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Ok(mut set) = self.set.lock() {
            while set.try_join_next().is_some() {}
            match &self.runtime {
                Some(rt) => drop(set.spawn_on(task, rt)),
                None => drop(set.spawn(task)),
            }
        }
    }

    /// Wait up to `limit` for every task spawned so far; `false` when some did not
    /// finish in time.
    pub async fn wait(&self, limit: Duration) -> bool {
        let mut set = match self.set.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => return true,
        };
        let all = async { while set.join_next().await.is_some() {} };
        tokio::time::timeout(limit, all).await.is_ok()
    }
}
