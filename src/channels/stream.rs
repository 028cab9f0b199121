//! Showing a reply while the model writes it (DESIGN §10 "Streaming"), the same way on
//! every chat platform. A platform is a [`Surface`]: it formats and cuts text into
//! message parts and sends, edits or drafts one part; [`present`] decides what to write
//! when.
//!
//! - `Edit`: the first part is sent as soon as there is text; then the message being
//!   written is edited as the text grows, a last time with the complete, formatted text.
//!   Past the platform's length limit the text continues in a new message.
//! - `Draft` (Telegram private chats): the part being written is shown as a draft;
//!   finished parts and, at the end, the last one are sent as messages.
//! - Two writes to one message (its send and its edits, the last included) are at least
//!   `interval` apart, and so are two drafts.
//! - While streaming, a write that fails is skipped (the next one carries the text). The
//!   final text is always delivered once, in full: each part is retried after the
//!   platform's `retry_after`, and a message that can no longer be edited gets its final
//!   part as a new message instead.

use crate::app::App;
use crate::chat::{ChatResult, Inbound, handle_limited};
use crate::providers::DeltaSink;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Tries per part of the final text (the first write and the retries after 429s).
pub const FINAL_ATTEMPTS: usize = 5;

/// The longest a reply waits for a platform's rate limit before removing a message
/// streamed past its end (see `Presenter::finish`).
const DELETE_WAIT: Duration = Duration::from_secs(10);

/// What a chat shows when the model's reply was empty (or formats to nothing): silence
/// would look like a lost message.
pub const EMPTY_REPLY: &str = "The model sent an empty reply; try rephrasing.";

/// The reply to deliver in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// The model's Markdown, formatted for the platform.
    Markdown(String),
    /// RemoteClaw's own text (a command's answer, which may echo what the user typed:
    /// `/model __x__` must not come back as a bold "x"), shown exactly as written.
    Literal(String),
    /// A command's answer shown as written, then the model's reply formatted, in one
    /// message (`/model opus tell me a joke`: what was streamed shows both, and so
    /// does the final text).
    Answer { notice: String, reply: String },
}

impl Final {
    /// What a chat shows for `result`: a command's answer as written, a turn's reply
    /// (or its error) formatted.
    pub fn of(result: &ChatResult) -> Final {
        match (&result.turn, &result.notice) {
            (None, _) => Final::Literal(result.reply_text()),
            (Some(_), Some(notice)) if !notice.is_empty() => Final::Answer {
                notice: notice.clone(),
                reply: result.reply_text(),
            },
            (Some(_), _) => Final::Markdown(result.reply_text()),
        }
    }
}

/// How a streamed reply is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Edit,
    Draft,
}

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Rate limited: nothing was delivered; the platform asked to wait this long.
    RetryAfter(Duration),
    /// Refused for good (message gone, chat closed, …): described, without secrets.
    Refused(String),
}

/// One platform's way of writing a reply into one chat.
pub trait Surface: Sync {
    /// What identifies a sent message for edits.
    type Id: Clone + Send + Sync;

    /// The messages `text` (the model's Markdown) makes, formatted and cut to fit.
    fn parts(&self, text: &str) -> Vec<String>;

    /// The messages `text` makes shown exactly as written (no Markdown), cut to fit.
    fn literal_parts(&self, text: &str) -> Vec<String>;

    /// `text` as the platform's Markdown input that shows it exactly as written (to put
    /// RemoteClaw's own words before a model reply in one message).
    fn literal_markdown(&self, text: &str) -> String;

    /// Send part `index` of the reply as a new message.
    fn send(
        &self,
        index: usize,
        part: &str,
    ) -> impl Future<Output = Result<Self::Id, Failure>> + Send;

    /// Replace the text of a sent message. Content equal to the current one is success.
    fn edit(&self, id: &Self::Id, part: &str) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Remove a message of the reply that the final text no longer fills (the formatted
    /// reply came out shorter than the text streamed so far, as when a long link's
    /// Markdown collapses into its title).
    fn delete(&self, id: &Self::Id) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Show `part` as the draft being written (only surfaces that offer drafts).
    fn draft(&self, part: &str) -> impl Future<Output = Result<(), Failure>> + Send {
        let _ = part;
        async { Err(Failure::Refused("this chat has no drafts".into())) }
    }
}

/// Platform calls a reply took (for logs and the load benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub sends: u32,
    pub edits: u32,
    pub drafts: u32,
    /// Streamed messages removed because the final text ended before them.
    pub deletes: u32,
    /// Writes that failed (rate limits included).
    pub failures: u32,
}

impl Stats {
    pub fn calls(&self) -> u32 {
        self.sends + self.edits + self.drafts + self.deletes + self.failures
    }
}

/// A message of the reply as it stands in the chat.
#[derive(Debug)]
struct Shown<I> {
    id: I,
    text: String,
    /// When it was last written; the next edit waits until `at + interval`.
    at: Instant,
    /// An edit was refused for good: its final part goes in a new message.
    dead: bool,
}

struct Presenter<'a, S: Surface> {
    surface: &'a S,
    interval: Duration,
    mode: Mode,
    shown: Vec<Shown<S::Id>>,
    /// The draft on screen and when it was written.
    draft: Option<(String, Instant)>,
    /// Nothing is written before this (a `retry_after`).
    not_before: Instant,
    /// Streaming writes stopped after a send was refused; the final text still goes.
    broken: bool,
    stats: Stats,
}

/// How a channel shows its replies: streamed (`Some(mode)`) or whole (`None`), and the
/// least time between two writes of one message.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub mode: Option<Mode>,
    pub interval: Duration,
}

/// Answer one message of a chat channel: run it through `chat::handle_limited`,
/// streaming the reply into `surface` while the model writes (per `style`), and deliver
/// the final text. `decide` runs as soon as the turn ends (stop a typing indicator
/// there) and says what to send in the end (`None`: nothing, the caller answers).
pub async fn answer<S: Surface>(
    app: &App,
    msg: Inbound<'_>,
    surface: &S,
    style: Style,
    decide: impl FnOnce(&ChatResult) -> Option<Final>,
) -> (ChatResult, Stats) {
    let (text_tx, text_rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let turn = async {
        let mut sink = |d: &str| text_tx.send_modify(|s| s.push_str(d));
        let sink: Option<DeltaSink<'_>> = match style.mode {
            Some(_) => Some(&mut sink),
            None => None,
        };
        let result = handle_limited(app, msg, sink).await;
        let _ = done_tx.send(decide(&result));
        result
    };
    let mode = style.mode.unwrap_or(Mode::Edit);
    let shown = present(surface, text_rx, done_rx, style.interval, mode);
    tokio::join!(turn, shown)
}

/// Show a reply: `text` holds everything streamed so far (the sender may be dropped at
/// any time); `done` brings the complete reply (`None`: nothing is to be sent, the
/// caller answers otherwise). Returns when the final text is delivered or given up.
pub async fn present<S: Surface>(
    surface: &S,
    mut text: watch::Receiver<String>,
    done: oneshot::Receiver<Option<Final>>,
    interval: Duration,
    mode: Mode,
) -> Stats {
    let mut p = Presenter {
        surface,
        interval,
        mode,
        shown: Vec::new(),
        draft: None,
        not_before: Instant::now(),
        broken: false,
        stats: Stats::default(),
    };
    let mut done = std::pin::pin!(done);
    let mut streaming = true;
    let final_text = loop {
        if streaming {
            tokio::select! {
                biased;
                r = &mut done => break r.ok().flatten(),
                changed = text.changed() => if changed.is_err() {
                    streaming = false;
                    continue;
                },
            }
        } else {
            break (&mut done).await.ok().flatten();
        }
        if p.broken {
            continue;
        }
        // Wait until the next write is allowed; the text may grow (or end) meanwhile.
        tokio::select! {
            biased;
            r = &mut done => break r.ok().flatten(),
            () = tokio::time::sleep_until(p.due()) => {}
        }
        let current = text.borrow_and_update().clone();
        if !current.trim().is_empty() {
            p.stream(&current).await;
        }
    };
    if let Some(t) = final_text {
        p.finish(&t).await;
    }
    p.stats
}

impl<S: Surface> Presenter<'_, S> {
    /// When the next streaming write may happen.
    fn due(&self) -> Instant {
        let next = match self.mode {
            Mode::Edit => self.shown.last().map(|m| m.at + self.interval),
            Mode::Draft => self.draft.as_ref().map(|(_, at)| *at + self.interval),
        };
        next.map_or(self.not_before, |n| n.max(self.not_before))
    }

    fn fail(&mut self, f: &Failure) {
        self.stats.failures += 1;
        match f {
            // A platform's hint is clamped like every other (DESIGN §8): no reply waits
            // longer than a day for its next write.
            Failure::RetryAfter(d) => {
                let wait = (*d).min(crate::providers::error::MAX_RETRY_HINT);
                self.not_before = self.not_before.max(Instant::now() + wait);
            }
            Failure::Refused(why) => tracing::debug!("a streamed write was refused: {why}"),
        }
    }

    /// One round of streaming writes for the text so far.
    async fn stream(&mut self, text: &str) {
        let parts = self.surface.parts(text);
        let Some((tail, done_parts)) = parts.split_last() else {
            return;
        };
        // Parts before the last are complete: each is sent once (in draft mode, and
        // in edit mode when the text went past the limit between two rounds).
        let complete = match self.mode {
            Mode::Edit => &parts[..],
            Mode::Draft => done_parts,
        };
        for (i, part) in complete.iter().enumerate() {
            let now = Instant::now();
            match self.shown.get(i) {
                Some(m) if m.dead || m.text == *part || now < m.at + self.interval => {}
                Some(m) => {
                    let id = m.id.clone();
                    match self.surface.edit(&id, part).await {
                        Ok(()) => {
                            self.stats.edits += 1;
                            self.shown[i].text = part.clone();
                            self.shown[i].at = Instant::now();
                        }
                        Err(f) => {
                            let limited = matches!(f, Failure::RetryAfter(_));
                            self.shown[i].dead = !limited;
                            self.fail(&f);
                            if limited {
                                // Nothing more until the pause is over.
                                return;
                            }
                        }
                    }
                }
                None => match self.surface.send(i, part).await {
                    Ok(id) => {
                        self.stats.sends += 1;
                        self.shown.push(Shown {
                            id,
                            text: part.clone(),
                            at: Instant::now(),
                            dead: false,
                        });
                    }
                    Err(f) => {
                        self.broken = matches!(f, Failure::Refused(_));
                        self.fail(&f);
                        return;
                    }
                },
            }
        }
        if self.mode == Mode::Draft && self.draft.as_ref().is_none_or(|(d, _)| d != tail) {
            match self.surface.draft(tail).await {
                Ok(()) => {
                    self.stats.drafts += 1;
                    self.draft = Some((tail.clone(), Instant::now()));
                }
                Err(f) => {
                    // No drafts here after all: the final message still comes.
                    self.broken = matches!(f, Failure::Refused(_));
                    self.fail(&f);
                }
            }
        }
    }

    /// Deliver the complete reply: every part once, in full; then remove the messages
    /// streamed past its end. A reply that shows as nothing says so.
    async fn finish(&mut self, reply: &Final) {
        let mut parts = match reply {
            Final::Markdown(text) => self.surface.parts(text),
            Final::Literal(text) => self.surface.literal_parts(text),
            Final::Answer { notice, reply } => {
                let reply = match reply.trim() {
                    "" => EMPTY_REPLY,
                    _ => reply.as_str(),
                };
                self.surface.parts(&format!(
                    "{}\n\n{reply}",
                    self.surface.literal_markdown(notice)
                ))
            }
        };
        if parts.iter().all(|p| p.trim().is_empty()) {
            parts = self.surface.literal_parts(EMPTY_REPLY);
        }
        for (i, part) in parts.iter().enumerate() {
            let edited = match self.shown.get(i) {
                Some(m) if !m.dead && m.text == *part => continue,
                Some(m) if !m.dead => {
                    let (id, at) = (m.id.clone(), m.at);
                    self.edit_final(&id, at, part).await
                }
                _ => false,
            };
            if !edited && !self.send_final(i, part).await {
                tracing::error!("a reply part could not be delivered; the rest is not sent");
                return;
            }
        }
        // Those that can no longer be edited too: one may still be deletable.
        let beyond: Vec<S::Id> = self
            .shown
            .iter()
            .skip(parts.len())
            .map(|m| m.id.clone())
            .collect();
        for id in beyond {
            self.delete_beyond(&id).await;
        }
    }

    /// Remove a message past the reply's end: tidying, so it never holds the chat up
    /// long. One try, after a pause of at most [`DELETE_WAIT`]; a longer rate limit
    /// leaves the message as it is.
    async fn delete_beyond(&mut self, id: &S::Id) {
        if self.not_before > Instant::now() + DELETE_WAIT {
            tracing::warn!("a streamed part past the reply's end stays: rate limited");
            return;
        }
        tokio::time::sleep_until(self.not_before).await;
        match self.surface.delete(id).await {
            Ok(()) => self.stats.deletes += 1,
            Err(f) => {
                if let Failure::Refused(why) = &f {
                    tracing::warn!("a streamed part past the reply's end stays: {why}");
                }
                self.fail(&f);
            }
        }
    }

    /// The last edit of a message, no sooner than `interval` after its previous write.
    async fn edit_final(&mut self, id: &S::Id, at: Instant, part: &str) -> bool {
        for _ in 0..FINAL_ATTEMPTS {
            tokio::time::sleep_until((at + self.interval).max(self.not_before)).await;
            match self.surface.edit(id, part).await {
                Ok(()) => {
                    self.stats.edits += 1;
                    return true;
                }
                Err(f @ Failure::RetryAfter(_)) => self.fail(&f),
                Err(f) => {
                    self.fail(&f);
                    return false;
                }
            }
        }
        false
    }

    async fn send_final(&mut self, index: usize, part: &str) -> bool {
        for _ in 0..FINAL_ATTEMPTS {
            tokio::time::sleep_until(self.not_before).await;
            match self.surface.send(index, part).await {
                Ok(_) => {
                    self.stats.sends += 1;
                    return true;
                }
                Err(f @ Failure::RetryAfter(_)) => self.fail(&f),
                Err(f) => {
                    if let Failure::Refused(why) = &f {
                        tracing::warn!("could not send a reply part: {why}");
                    }
                    self.fail(&f);
                    return false;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
