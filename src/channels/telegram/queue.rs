//! Per-session queues (DESIGN §8): one worker per session answers its messages one at
//! a time, in arrival order; at most [`DEPTH`] messages wait besides the one being
//! answered, and a message that finds the queue full gets the busy reply at once.
//! Every task the channel starts is tracked ([`Tasks`]) so shutdown can wait for the
//! turns in flight and queued to finish and reply. The photos of an album that follow
//! each other in a queue are answered together (`media::collect_album`).

use super::{Ctx, media, reply};
use crate::session::BUSY_REPLY;
use dashmap::DashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use teloxide::types::Message;
use tokio::sync::{mpsc, watch};

/// Messages a session's queue holds besides the one being answered.
pub const DEPTH: usize = 8;
/// A session's worker stops after this long without messages.
const WORKER_IDLE: Duration = Duration::from_secs(600);

/// One message for a session's worker.
pub struct Job {
    /// Its update id (marked answered once the reply is sent).
    pub update: i64,
    pub msg: Box<Message>,
    /// The sender may pin profiles (group senders differ message to message).
    pub owner: bool,
}

/// The channel's running tasks: each holds a receiver, so `idle` resolves once all
/// of them have finished. They run on the gateway's runtime (the one the channel was
/// started on), wherever they are spawned from: the poller has a thread of its own.
/// [`Tasks::abort_all`] ends them where they wait (a channel stopped past its grace):
/// a turn cut off sends no reply, and its message stays open for the next start.
#[derive(Debug)]
pub struct Tasks {
    running: watch::Sender<()>,
    aborted: crate::channels::Ending,
    runtime: tokio::runtime::Handle,
}

impl Tasks {
    /// Tasks on the runtime this is called on.
    pub fn here() -> Tasks {
        Tasks {
            running: watch::channel(()).0,
            aborted: crate::channels::Ending::default(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let running = self.running.subscribe();
        let task = self.aborted.unless_ended(task);
        self.runtime.spawn(async move {
            task.await;
            drop(running);
        });
    }

    /// End every task at its next wait, and any spawned later at once.
    pub fn abort_all(&self) {
        self.aborted.end();
    }

    /// Resolves when no task is running.
    pub async fn idle(&self) {
        self.running.closed().await;
    }
}

/// The session workers' queues and the channel's tasks.
pub struct Queues {
    workers: DashMap<String, mpsc::Sender<Job>>,
    pub tasks: Tasks,
}

impl Queues {
    /// Queues whose workers run on the runtime this is called on.
    pub fn here() -> Queues {
        Queues {
            workers: DashMap::new(),
            tasks: Tasks::here(),
        }
    }

    /// Take no more messages: each worker answers what it holds, then ends.
    pub fn close(&self) {
        self.workers.clear();
    }
}

/// Queue a message on its session's worker (started if there is none), or answer
/// busy when the queue is full.
pub fn enqueue(ctx: &Arc<Ctx>, session: String, job: Job) {
    let mut job = job;
    loop {
        let sender = ctx
            .queues
            .workers
            .entry(session.clone())
            .or_insert_with(|| spawn_worker(ctx.clone(), session.clone()))
            .clone();
        match sender.try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => {
                busy(ctx, job);
                return;
            }
            // The worker just went idle and closed its queue: start a fresh one.
            Err(mpsc::error::TrySendError::Closed(back)) => {
                ctx.queues
                    .workers
                    .remove_if(&session, |_, tx| tx.same_channel(&sender));
                job = back;
            }
        }
    }
}

fn busy(ctx: &Arc<Ctx>, job: Job) {
    tracing::debug!(update = job.update, "session queue full: answering busy");
    let c = ctx.clone();
    ctx.queues.tasks.spawn(async move {
        let thread = reply::thread_of(&job.msg);
        reply::send_text(&c, job.msg.chat.id, BUSY_REPLY, thread, Some(job.msg.id)).await;
        c.journal.answered(job.update).await;
    });
}

/// A session's worker: answers its messages in order and goes away after
/// `WORKER_IDLE` without messages (a later message starts a new one), or once its
/// queue is closed and emptied.
fn spawn_worker(ctx: Arc<Ctx>, session: String) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(DEPTH);
    let tasks = &ctx.queues.tasks;
    let c = ctx.clone();
    tasks.spawn(async move {
        // A message taken from the queue while collecting an album, answered next.
        let mut held = None;
        loop {
            let job = match held.take() {
                Some(job) => job,
                None => match tokio::time::timeout(WORKER_IDLE, rx.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) => break,
                    Err(_) => {
                        // Refuse new messages, then finish any that slipped in.
                        rx.close();
                        continue;
                    }
                },
            };
            held = answer(&c, &session, job, &mut rx).await;
        }
        c.queues.workers.remove_if(&session, |_, tx| tx.is_closed());
    });
    tx
}

/// Answer a message, with the rest of its album when it has one (`media`); returns
/// the next message when collecting the album took it from the queue.
async fn answer(ctx: &Ctx, session: &str, job: Job, rx: &mut mpsc::Receiver<Job>) -> Option<Job> {
    let (album, next) = match job.msg.media_group_id() {
        Some(group) => {
            media::collect_album(rx, &group.0, |j: &Job| {
                j.msg.media_group_id().map(|g| g.0.as_str())
            })
            .await
        }
        None => (Vec::new(), None),
    };
    let rest: Vec<&Message> = album.iter().map(|j| &*j.msg).collect();
    reply::answer(ctx, session, job.owner, &job.msg, &rest).await;
    ctx.journal.answered(job.update).await;
    for j in &album {
        ctx.journal.answered(j.update).await;
    }
    next
}
