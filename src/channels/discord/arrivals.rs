//! The order messages arrived in, per Discord channel (DESIGN §4: a session's turns run
//! one at a time in arrival order).
//!
//! serenity runs each event's handler in a task of its own, so two messages sent one
//! after the other can start their handlers in either order, and each waits (the
//! inbox, a download, a turn slot) before it reaches its session. What does see the
//! events in the shard's order is a collector, called on the shard's own task before
//! the handlers are spawned: it notes each message here ([`Arrivals::arrive`]). A
//! handler then waits for its [`Place`] — until every message of its channel that
//! arrived before it is answered — and holds it until its own reply is sent. A channel
//! holds at most [`DEPTH`] waiting messages besides the one being answered; the next
//! one is told the chat is busy at once.
//!
//! A message the collector did not see (it came before the collector was added on a
//! new connection) is answered without waiting; one whose handler never comes is passed
//! over after [`CLAIM_WAIT`].

use serenity::all::{ChannelId, Event, MessageId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Messages of one channel that wait besides the one being answered.
pub const DEPTH: usize = crate::session::DEFAULT_MAX_PENDING;
/// Busy messages remembered for their handlers at most.
const MOST_OVERFLOW: usize = 1024;
/// How long a noted message may wait for its handler before it is passed over.
pub const CLAIM_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    msg: MessageId,
    at: Instant,
    /// Its handler is waiting for (or holds) its place.
    claimed: bool,
}

#[derive(Debug, Default)]
struct Channels {
    queues: HashMap<ChannelId, VecDeque<Entry>>,
    /// Messages that found their channel full: their handler answers busy.
    overflow: Vec<MessageId>,
}

#[derive(Debug, Default)]
pub struct Arrivals {
    /// Each known thread's parent channel, from the thread events the collector saw
    /// (a thread is created, and announced, before its first message).
    threads: dashmap::DashMap<ChannelId, ChannelId>,
    channels: Mutex<Channels>,
    changed: Notify,
    /// The collector in force per shard; an older one stops at the next event.
    generations: Mutex<HashMap<u32, u64>>,
}

/// What a handler may do with its message.
#[derive(Debug)]
pub enum Turn<'a> {
    /// Its turn: every earlier message of the channel is answered. Held until the
    /// reply is sent.
    Go(Place<'a>),
    /// Not noted in order (see the module docs): answered without waiting.
    Unordered,
    /// The channel already holds [`DEPTH`] waiting messages.
    Busy,
}

/// A message's turn in its channel; dropping it lets the next message go.
#[derive(Debug)]
pub struct Place<'a> {
    arrivals: &'a Arrivals,
    channel: ChannelId,
    msg: MessageId,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.arrivals.leave(self.channel, self.msg);
    }
}

/// A handler's hold on its message's place from the moment it starts: the message is
/// not passed over while the handler takes it in (the inbox, who may talk), and a
/// handler that ends without taking its [`turn`](Claim::turn) — not for the bot, a
/// message seen before, shutting down — frees the place at once.
#[derive(Debug)]
pub struct Claim<'a> {
    arrivals: &'a Arrivals,
    channel: ChannelId,
    msg: MessageId,
}

impl<'a> Claim<'a> {
    /// Wait for the message's turn (see [`Arrivals::turn`]).
    pub async fn turn(self) -> Turn<'a> {
        // Dropped while waiting (the task cancelled), the claim frees the place.
        let turn = self.arrivals.turn(self.channel, self.msg).await;
        // From here the place (if any) is the `Place`'s to free.
        std::mem::forget(self);
        turn
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.arrivals.leave(self.channel, self.msg);
    }
}

impl Arrivals {
    /// The collector for one shard's connection: notes each message in the order the
    /// shard received it. A later call for the same shard retires the earlier one.
    /// Only messages `wanted` says the bot answers are noted (the others must not take
    /// a place in a busy channel).
    pub fn collector(
        self: &std::sync::Arc<Self>,
        shard: u32,
        wanted: impl Fn(&serenity::all::Message, ChannelId) -> bool + Send + Sync + 'static,
    ) -> serenity::all::CollectorCallback {
        let generation = {
            let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            let n = g.entry(shard).or_default();
            *n += 1;
            *n
        };
        let arrivals = self.clone();
        serenity::all::CollectorCallback(Box::new(move |event| {
            let current = arrivals
                .generations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&shard)
                .copied();
            if current != Some(generation) {
                return false;
            }
            match event {
                Event::MessageCreate(e) => {
                    let channel = e.message.channel_id;
                    if wanted(&e.message, arrivals.parent_of(channel).unwrap_or(channel)) {
                        arrivals.arrive(channel, e.message.id, Instant::now());
                    }
                }
                Event::ThreadCreate(e) => arrivals.note_thread(&e.thread),
                Event::ThreadUpdate(e) => arrivals.note_thread(&e.thread),
                Event::ThreadListSync(e) => e.threads.iter().for_each(|t| arrivals.note_thread(t)),
                Event::GuildCreate(e) => {
                    e.guild.threads.iter().for_each(|t| arrivals.note_thread(t))
                }
                Event::ThreadDelete(e) => {
                    arrivals.threads.remove(&e.thread.id);
                }
                _ => {}
            }
            true
        }))
    }

    /// The channel a thread belongs to; `None` for a channel not known as a thread.
    pub fn parent_of(&self, channel: ChannelId) -> Option<ChannelId> {
        self.threads.get(&channel).map(|p| *p)
    }

    fn note_thread(&self, thread: &serenity::all::GuildChannel) {
        use serenity::all::ChannelType::{NewsThread, PrivateThread, PublicThread};
        if matches!(thread.kind, PublicThread | PrivateThread | NewsThread)
            && let Some(parent) = thread.parent_id
        {
            self.threads.insert(thread.id, parent);
        }
    }

    /// Note a message of `channel`, in arrival order.
    pub fn arrive(&self, channel: ChannelId, msg: MessageId, now: Instant) {
        let mut c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let queue = c.queues.entry(channel).or_default();
        if queue.iter().any(|e| e.msg == msg) {
            return;
        }
        if queue.len() > DEPTH {
            if c.overflow.len() >= MOST_OVERFLOW {
                c.overflow.remove(0);
            }
            c.overflow.push(msg);
            return;
        }
        queue.push_back(Entry {
            msg,
            at: now,
            claimed: false,
        });
    }

    /// Claim the place of `msg` (if it was noted) as its handler starts.
    pub fn claim(&self, channel: ChannelId, msg: MessageId) -> Claim<'_> {
        let mut c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = c
            .queues
            .get_mut(&channel)
            .and_then(|q| q.iter_mut().find(|e| e.msg == msg))
        {
            e.claimed = true;
        }
        Claim {
            arrivals: self,
            channel,
            msg,
        }
    }

    /// Wait until every message of `channel` that arrived before `msg` is answered.
    pub async fn turn(&self, channel: ChannelId, msg: MessageId) -> Turn<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(i) = c.overflow.iter().position(|m| *m == msg) {
                    c.overflow.swap_remove(i);
                    return Turn::Busy;
                }
                let Some(queue) = c.queues.get_mut(&channel) else {
                    return Turn::Unordered;
                };
                let Some(mine) = queue.iter_mut().find(|e| e.msg == msg) else {
                    return Turn::Unordered;
                };
                mine.claimed = true;
                // Pass over messages whose handler never came.
                while queue
                    .front()
                    .is_some_and(|e| !e.claimed && e.at.elapsed() >= CLAIM_WAIT)
                {
                    queue.pop_front();
                }
                if queue.front().is_some_and(|e| e.msg == msg) {
                    return Turn::Go(Place {
                        arrivals: self,
                        channel,
                        msg,
                    });
                }
            }
            // Woken when a message leaves; at the latest when an unclaimed one expires.
            let _ = tokio::time::timeout(CLAIM_WAIT, changed).await;
        }
    }

    fn leave(&self, channel: ChannelId, msg: MessageId) {
        let mut c = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = c.queues.get_mut(&channel) {
            queue.retain(|e| e.msg != msg);
            if queue.is_empty() {
                c.queues.remove(&channel);
            }
        }
        drop(c);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
