//! The presenter against a scripted surface, on paused tokio time.

use super::*;
use std::sync::Mutex;

/// Parts of at most `LIMIT` characters.
const LIMIT: usize = 20;
const INTERVAL: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Send,
    Edit,
    Draft,
    Delete,
}

#[derive(Debug, Clone)]
struct Call {
    kind: Kind,
    /// The message written (send: its new id).
    msg: usize,
    text: String,
    at: Instant,
    ok: bool,
}

#[derive(Default)]
struct Script {
    calls: Vec<Call>,
    /// Failures handed out to calls of a kind, in order: each after letting the
    /// given number of that kind's calls through.
    failures: Vec<(Kind, usize, Failure)>,
}

struct Fake {
    t0: Instant,
    script: Mutex<Script>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            t0: Instant::now(),
            script: Mutex::new(Script::default()),
        }
    }
    fn fail_next(&self, kind: Kind, f: Failure) {
        self.fail_after(kind, 0, f);
    }
    /// Fail the call of `kind` that comes after `skip` more of them.
    fn fail_after(&self, kind: Kind, skip: usize, f: Failure) {
        self.script.lock().unwrap().failures.push((kind, skip, f));
    }
    fn calls(&self) -> Vec<Call> {
        self.script.lock().unwrap().calls.clone()
    }
    fn ok_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.ok).collect()
    }
    /// The chat as a person sees it: each message's last successful text.
    fn chat(&self) -> Vec<String> {
        let mut msgs: Vec<Option<String>> = Vec::new();
        for c in self.ok_calls() {
            match c.kind {
                Kind::Send => msgs.push(Some(c.text)),
                Kind::Edit => msgs[c.msg] = Some(c.text),
                Kind::Delete => msgs[c.msg] = None,
                Kind::Draft => {}
            }
        }
        msgs.into_iter().flatten().collect()
    }
    fn record(&self, kind: Kind, msg: Option<usize>, text: &str) -> Result<usize, Failure> {
        let mut s = self.script.lock().unwrap();
        let failure = match s.failures.iter().position(|(k, _, _)| *k == kind) {
            Some(i) if s.failures[i].1 > 0 => {
                s.failures[i].1 -= 1;
                None
            }
            Some(i) => Some(s.failures.remove(i).2),
            None => None,
        };
        let sent = s
            .calls
            .iter()
            .filter(|c| c.kind == Kind::Send && c.ok)
            .count();
        let msg = msg.unwrap_or(sent);
        s.calls.push(Call {
            kind,
            msg,
            text: text.to_string(),
            at: Instant::now(),
            ok: failure.is_none(),
        });
        match failure {
            Some(f) => Err(f),
            None => Ok(msg),
        }
    }
}

impl Surface for Fake {
    type Id = usize;

    /// Like a link's Markdown, `(…)` shows as nothing once it is closed: a final
    /// text can make fewer parts than the text streamed before it.
    fn literal_markdown(&self, text: &str) -> String {
        format!("[{text}]")
    }

    fn literal_parts(&self, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        chars.chunks(LIMIT).map(|c| c.iter().collect()).collect()
    }

    fn parts(&self, text: &str) -> Vec<String> {
        let mut shown = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('(') {
            match rest[open..].find(')') {
                Some(close) => {
                    shown.push_str(&rest[..open]);
                    rest = &rest[open + close + 1..];
                }
                None => break,
            }
        }
        shown.push_str(rest);
        let chars: Vec<char> = shown.chars().collect();
        chars.chunks(LIMIT).map(|c| c.iter().collect()).collect()
    }

    async fn send(&self, _index: usize, part: &str) -> Result<usize, Failure> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.record(Kind::Send, None, part)
    }

    async fn edit(&self, id: &usize, part: &str) -> Result<(), Failure> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.record(Kind::Edit, Some(*id), part).map(|_| ())
    }

    async fn delete(&self, id: &usize) -> Result<(), Failure> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.record(Kind::Delete, Some(*id), "").map(|_| ())
    }

    async fn draft(&self, part: &str) -> Result<(), Failure> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.record(Kind::Draft, Some(usize::MAX), part).map(|_| ())
    }
}

/// Stream `deltas`, one every `gap`, then finish with their concatenation plus `tail`.
async fn run(fake: &Fake, mode: Mode, deltas: &[&str], gap: Duration, tail: &str) -> Stats {
    let (tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let feed = async {
        for d in deltas {
            tokio::time::sleep(gap).await;
            tx.send_modify(|s| s.push_str(d));
        }
        let full = format!("{}{tail}", tx.borrow().clone());
        drop(tx);
        let _ = done_tx.send(Some(Final::Markdown(full)));
    };
    let ((), stats) = tokio::join!(feed, present(fake, rx, done_rx, INTERVAL, mode));
    stats
}

/// Every two successful writes to one message are at least the interval apart.
fn assert_spaced(fake: &Fake) {
    let calls = fake.ok_calls();
    let mut last: std::collections::HashMap<usize, Instant> = Default::default();
    for c in calls.iter().filter(|c| c.kind != Kind::Draft) {
        if let Some(prev) = last.get(&c.msg) {
            assert!(
                c.at - *prev >= INTERVAL,
                "message {} written {:?} after the previous write: {calls:#?}",
                c.msg,
                c.at - *prev
            );
        }
        last.insert(c.msg, c.at);
    }
    let drafts: Vec<Instant> = calls
        .iter()
        .filter(|c| c.kind == Kind::Draft)
        .map(|c| c.at)
        .collect();
    for w in drafts.windows(2) {
        assert!(w[1] - w[0] >= INTERVAL, "drafts too close: {calls:#?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_part_goes_out_as_soon_as_there_is_text() {
    let fake = Fake::new();
    let stats = run(
        &fake,
        Mode::Edit,
        &["Hello", " there"],
        Duration::from_millis(300),
        "",
    )
    .await;
    let calls = fake.ok_calls();
    assert_eq!(calls[0].kind, Kind::Send);
    assert_eq!(calls[0].text, "Hello");
    assert!(
        calls[0].at - fake.t0 <= Duration::from_millis(350),
        "first part after {:?}",
        calls[0].at - fake.t0
    );
    assert_eq!(fake.chat(), vec!["Hello there"]);
    assert_eq!((stats.sends, stats.edits), (1, 1));
    assert_spaced(&fake);
}

#[tokio::test(start_paused = true)]
async fn edits_are_an_interval_apart_and_the_last_holds_the_whole_text() {
    let fake = Fake::new();
    let deltas = ["a"; 19];
    let stats = run(&fake, Mode::Edit, &deltas, Duration::from_millis(100), "").await;
    assert_spaced(&fake);
    assert_eq!(fake.chat(), vec!["a".repeat(19)]);
    // 1.9 s of text at one edit a second: one send, two or three edits, not nineteen.
    assert_eq!(stats.sends, 1);
    assert!((1..=3).contains(&stats.edits), "{stats:?}");
    assert_eq!(fake.ok_calls().last().unwrap().text, "a".repeat(19));
}

#[tokio::test(start_paused = true)]
async fn past_the_limit_the_reply_continues_in_a_new_message() {
    let fake = Fake::new();
    let deltas = ["0123456789"; 5];
    run(&fake, Mode::Edit, &deltas, Duration::from_millis(400), "!").await;
    assert_spaced(&fake);
    let full = "0123456789".repeat(5) + "!";
    assert_eq!(fake.chat().concat(), full);
    assert_eq!(fake.chat().len(), 3, "{:?}", fake.chat());
}

#[tokio::test(start_paused = true)]
async fn a_429_while_streaming_still_ends_with_the_full_text_once() {
    let fake = Fake::new();
    for _ in 0..3 {
        fake.fail_next(Kind::Edit, Failure::RetryAfter(Duration::from_secs(3)));
    }
    let deltas = ["word "; 12];
    let stats = run(
        &fake,
        Mode::Edit,
        &deltas,
        Duration::from_millis(250),
        "end",
    )
    .await;
    let full = "word ".repeat(12) + "end";
    assert_eq!(fake.chat().concat(), full, "{:#?}", fake.calls());
    // The retry_after was honoured: no write within 3 s of a refused one.
    let calls = fake.calls();
    for (i, c) in calls.iter().enumerate().filter(|(_, c)| !c.ok) {
        if let Some(next) = calls.get(i + 1) {
            assert!(next.at - c.at >= Duration::from_secs(3), "{calls:#?}");
        }
    }
    assert_eq!(stats.failures, 3);
    assert_spaced(&fake);
}

#[tokio::test(start_paused = true)]
async fn a_final_edit_refused_for_good_sends_the_part_anew() {
    let fake = Fake::new();
    fake.fail_next(
        Kind::Edit,
        Failure::Refused("message to edit not found".into()),
    );
    fake.fail_next(
        Kind::Edit,
        Failure::Refused("message to edit not found".into()),
    );
    run(
        &fake,
        Mode::Edit,
        &["Hi", " you"],
        Duration::from_millis(1500),
        "",
    )
    .await;
    let chat = fake.chat();
    assert_eq!(chat.last().unwrap(), "Hi you", "{:#?}", fake.calls());
}

#[tokio::test(start_paused = true)]
async fn the_final_send_is_retried_after_each_429() {
    let fake = Fake::new();
    for _ in 0..2 {
        fake.fail_next(Kind::Send, Failure::RetryAfter(Duration::from_secs(5)));
    }
    let (_tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let _ = done_tx.send(Some(Final::Markdown("a whole answer".to_string())));
    let stats = present(&fake, rx, done_rx, INTERVAL, Mode::Edit).await;
    assert_eq!(fake.chat(), vec!["a whole answer"]);
    assert_eq!((stats.sends, stats.failures), (1, 2));
    assert!(Instant::now() - fake.t0 >= Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_retry_hint_of_years_waits_a_day_at_most() {
    let fake = Fake::new();
    fake.fail_next(
        Kind::Send,
        Failure::RetryAfter(Duration::from_secs(u64::from(u32::MAX))),
    );
    let (_tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let _ = done_tx.send(Some(Final::Markdown("a whole answer".to_string())));
    let stats = present(&fake, rx, done_rx, INTERVAL, Mode::Edit).await;
    assert_eq!(fake.chat(), vec!["a whole answer"]);
    assert_eq!((stats.sends, stats.failures), (1, 1));
    let waited = Instant::now() - fake.t0;
    assert!(
        waited <= crate::providers::error::MAX_RETRY_HINT + Duration::from_secs(1),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_send_refused_for_good_is_not_repeated() {
    let fake = Fake::new();
    fake.fail_next(Kind::Send, Failure::Refused("chat not found".into()));
    let (_tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let _ = done_tx.send(Some(Final::Markdown("x".repeat(50))));
    let stats = present(&fake, rx, done_rx, INTERVAL, Mode::Edit).await;
    assert_eq!(fake.calls().len(), 1, "the rest of the reply is not sent");
    assert_eq!(stats.sends, 0);
}

#[tokio::test(start_paused = true)]
async fn draft_mode_drafts_the_part_being_written_then_sends_it() {
    let fake = Fake::new();
    let deltas = ["0123456789"; 3];
    let stats = run(&fake, Mode::Draft, &deltas, Duration::from_millis(600), "").await;
    assert_spaced(&fake);
    let full = "0123456789".repeat(3);
    assert_eq!(fake.chat().concat(), full);
    assert_eq!(
        stats.edits,
        0,
        "nothing sent is edited: {:#?}",
        fake.calls()
    );
    assert!(stats.drafts >= 2, "{stats:?}");
    let sends: Vec<_> = fake
        .ok_calls()
        .into_iter()
        .filter(|c| c.kind == Kind::Send)
        .collect();
    assert_eq!(sends.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn no_final_text_sends_nothing_more() {
    let fake = Fake::new();
    let (tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    drop(tx);
    let _ = done_tx.send(None);
    let stats = present(&fake, rx, done_rx, INTERVAL, Mode::Edit).await;
    assert_eq!(stats, Stats::default());
    assert!(fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_needs_no_edit_gets_none() {
    let fake = Fake::new();
    let (_tx, rx) = watch::channel(String::new());
    let (done_tx, done_rx) = oneshot::channel();
    let _ = done_tx.send(Some(Final::Markdown("short".into())));
    let stats = present(&fake, rx, done_rx, INTERVAL, Mode::Edit).await;
    assert_eq!((stats.sends, stats.edits), (1, 0));
    assert_eq!(fake.chat(), vec!["short"]);
}

#[tokio::test(start_paused = true)]
async fn messages_streamed_past_the_final_texts_end_are_removed() {
    let fake = Fake::new();
    // 15 characters, then an open "(" and 30 more: three parts while streaming; the
    // closing ")" makes the whole thing one part of 15.
    let deltas = ["fifteen chars..", "(0123456789", "0123456789", "0123456789"];
    let stats = run(&fake, Mode::Edit, &deltas, Duration::from_millis(1500), ")").await;
    assert_eq!(fake.chat(), vec!["fifteen chars.."], "{:#?}", fake.calls());
    assert!(stats.sends >= 2, "the stream went past one part: {stats:?}");
    assert_eq!(stats.deletes, stats.sends - 1, "{stats:?}");
    assert_spaced(&fake);
}

#[tokio::test(start_paused = true)]
async fn a_removal_refused_is_not_repeated_and_the_reply_stands() {
    let fake = Fake::new();
    fake.fail_next(
        Kind::Delete,
        Failure::Refused("message can't be deleted".into()),
    );
    let deltas = ["fifteen chars..", "(0123456789", "0123456789"];
    let stats = run(&fake, Mode::Edit, &deltas, Duration::from_millis(1500), ")").await;
    let calls = fake.calls();
    assert_eq!(
        calls.iter().filter(|c| c.kind == Kind::Delete).count(),
        1,
        "{calls:#?}"
    );
    assert_eq!(fake.chat()[0], "fifteen chars..");
    assert_eq!(stats.deletes, 0);
}

#[tokio::test(start_paused = true)]
async fn a_removal_is_tried_once_and_never_waits_out_a_long_rate_limit() {
    let fake = Fake::new();
    fake.fail_next(Kind::Delete, Failure::RetryAfter(Duration::from_secs(3600)));
    let deltas = ["fifteen chars..", "(0123456789", "0123456789"];
    let started = Instant::now();
    let stats = run(&fake, Mode::Edit, &deltas, Duration::from_millis(1500), ")").await;
    let deletes = fake
        .calls()
        .iter()
        .filter(|c| c.kind == Kind::Delete)
        .count();
    assert_eq!((deletes, stats.deletes), (1, 0), "{:#?}", fake.calls());
    assert_eq!(fake.chat()[0], "fifteen chars..");
    assert!(Instant::now() - started < Duration::from_secs(60));
}
