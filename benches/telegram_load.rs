//! Telegram throughput: messages from 1,000 chats through the loopback fake Bot API →
//! the Telegram channel (real teloxide client) → sessions and turns → the fake provider
//! (zero latency) → sendMessage. Prints messages per second and the added latency per
//! message (queued at the fake → reply sent). Target ≥ 5,000 messages/s with streaming
//! off.
//!
//! Run: `cargo bench --bench telegram_load` (env: TG_CHATS=1000, TG_PER_CHAT=5,
//! TG_STREAMING=off|edit|draft, TG_STREAM_INTERVAL_MS=1000, TG_SINGLE=200 messages sent one at a time, TG_MAX_TURNS=2048 for
//! `gateway.maxConcurrentTurns`, so that no message gets the gateway-busy reply). With streaming on it also
//! prints the Bot API calls per reply (sends, edits, drafts, refused calls included);
//! a reply counts as delivered when its message shows the whole text.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/support/fake_provider/mod.rs"]
mod fake_provider;
#[path = "../tests/support/fake_telegram/mod.rs"]
mod fake_telegram;
mod support;

use fake_provider::FakeProvider;
use fake_telegram::FakeTelegram;
use remoteclaw::secret::Secret;
use std::time::{Duration, Instant};

#[path = "support/host_monitor.rs"]
mod host_monitor;

const TOKEN: &str = "123456:BENCH";

/// The allocator of the `remoteclaw` binary (`src/main.rs`), so the gateway runs here as
/// it runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    remoteclaw::process_setup();
    let streaming = std::env::var("TG_STREAMING").unwrap_or_else(|_| "off".into());
    let interval = env_usize("TG_STREAM_INTERVAL_MS", 1000);
    let chats = env_usize("TG_CHATS", 1000);
    // Every message gets a model turn (none the gateway-busy reply) unless set lower.
    let turns = env_usize("TG_MAX_TURNS", 2048);
    let per_chat = env_usize("TG_PER_CHAT", 5);
    let total = chats * per_chat;
    // The host's slow-down episodes (see `support/host_monitor.rs`) show in the burst
    // figures as lost time; each burst reports how much of it they took.
    let monitor = host_monitor::HostMonitor::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tg = FakeTelegram::start(TOKEN).await;
        let llm = FakeProvider::start().await;
        let (_dir, app) = support::app(&format!(
                "[agents.defaults.model]\nprimary = \"openai/gpt-4o-mini\"\n[models.providers.openai]\nbaseUrl = \"{}\"\n[channels.telegram]\nenabled = true\napiRoot = \"{}\"\ndmPolicy = \"open\"\nstreaming = \"{streaming}\"\nstreamIntervalMs = {interval}\n[gateway]\nmaxConcurrentTurns = {turns}\n",
                llm.openai_base(),
                tg.api_url())).await;
        // The fakes count calls instead of keeping copies of them.
        tg.keep_calls(false);
        llm.keep_requests(false);
        let cfg = app.config().channels.telegram.clone().unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(remoteclaw::channels::telegram::run(app.clone(), remoteclaw::config::live::section(cfg), Secret::new(TOKEN), rx));
        // Warm up: one message end to end.
        tg.send_dm(1, "warm", "warm up");
        tg.wait_for_messages(1, Duration::from_secs(30)).await;
        if streaming != "off" {
            return streamed(&tg, chats, per_chat, &streaming, interval).await;
        }

        // Burst 1 is cold (the gateway opens its connections to the fakes on the way);
        // later ones run with them open, as a gateway that has been up for a while.
        for burst in 1..=env_usize("TG_BURSTS", 2) {
            let before = tg.sends();
            let cpu_before = support::process_cpu();
            let started = Instant::now();
            let mut queued = Vec::with_capacity(total);
            let mut last_update = 0;
            for round in 0..per_chat {
                for chat in 0..chats {
                    let user = 10_000 + chat as i64;
                    last_update = tg.send_dm(user, "user", &format!("message {round}"));
                    queued.push(Instant::now());
                }
            }
            // When the gateway had taken in (recorded and acknowledged) every update.
            let intake = async {
                while tg.highest_offset_seen() <= last_update {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Instant::now()
            };
            let (taken_in, _) = tokio::join!(intake, tg.wait_for_sends(before + total, Duration::from_secs(300)));
            let elapsed = started.elapsed();
            let cpu = support::process_cpu().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
            let taken_in = taken_in.saturating_duration_since(started);
            let sent: Vec<_> = tg.sent_messages().into_iter().filter(|m| !m.is_edit() && !m.is_draft()).skip(before).collect();
            let replies = sent.len();
            // Match replies to messages per chat (replies of one chat come in order).
            let mut by_chat: std::collections::HashMap<i64, Vec<Instant>> = std::collections::HashMap::new();
            for m in &sent {
                by_chat.entry(m.chat_id).or_default().push(m.at);
            }
            let mut loaded: Vec<f64> = Vec::with_capacity(total);
            for (i, q) in queued.iter().enumerate() {
                let (round, chat) = (i / chats, i % chats);
                if let Some(at) = by_chat.get(&(10_000 + chat as i64)).and_then(|v| v.get(round)) {
                    loaded.push(at.saturating_duration_since(*q).as_secs_f64() * 1000.0);
                }
            }
            let busy = sent.iter().filter(|m| m.plain_text.starts_with("I'm answering too many")).count();
            let kind = if burst == 1 { "cold" } else { "warm" };
            println!("burst {burst} ({kind}): chats: {chats}, messages: {total}, replies: {replies} ({busy} of them the gateway-busy reply), elapsed: {:.2} s", elapsed.as_secs_f64());
            println!("burst {burst} ({kind}): throughput: {:.0} messages/s (target >= 5000)", replies as f64 / elapsed.as_secs_f64());
            let episodes = monitor.episodes(started, started + elapsed);
            let slow: Duration = episodes.iter().map(|e| e.end.min(started + elapsed).saturating_duration_since(e.start.max(started))).sum();
            println!("burst {burst} ({kind}): host slow-downs during it: {} ({:.1} % of its time)", episodes.len(), 100.0 * slow.as_secs_f64() / elapsed.as_secs_f64());
            // The CPU the whole process (gateway, both fakes, this bench) spent per
            // message: the same work takes more of it when the host runs the vCPUs slower,
            // which is what moves the throughput from run to run.
            if let Some(cpu) = cpu {
                println!(
                    "burst {burst} ({kind}): CPU per message {:.0} µs (all of the process, fakes included; {:.2} of 2 cores busy)",
                    cpu.as_secs_f64() * 1e6 / total as f64,
                    cpu.as_secs_f64() / elapsed.as_secs_f64()
                );
            }
            println!("burst {burst} ({kind}): every update taken in after {:.2} s", taken_in.as_secs_f64());
            println!("burst {burst} ({kind}): queued -> reply sent: p50 {:.1} ms, p99 {:.1} ms", support::pct(&mut loaded, 0.5), support::pct(&mut loaded, 0.99));
            assert_eq!(replies, total, "every message answered exactly once");
        }
        println!("Bot API calls by method: {:?}", tg.call_counts());

        // Unloaded: one message at a time, the added latency per message.
        let mut single = Vec::new();
        for i in 0..env_usize("TG_SINGLE", 200) {
            let before = tg.sends();
            let t0 = Instant::now();
            tg.send_dm(1, "warm", &format!("single {i}"));
            let at = tg.wait_for_sends(before + 1, Duration::from_secs(30)).await.unwrap();
            single.push(at.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        }
        println!("one message at a time, queued -> reply sent: p50 {:.2} ms, p99 {:.2} ms (includes the long-poll hand-off)", support::pct(&mut single, 0.5), support::pct(&mut single, 0.99));
        let _ = stop.send(true);
        let _ = task.await;
    });
}

/// The burst with streaming on: done when every reply's message shows its whole text.
async fn streamed(tg: &FakeTelegram, chats: usize, per_chat: usize, mode: &str, interval: usize) {
    // The warm-up reply's last write lands within the interval.
    tokio::time::sleep(Duration::from_millis(interval as u64 + 200)).await;
    let counted = |tg: &FakeTelegram| -> usize {
        let counts = tg.call_counts();
        ["sendmessage", "editmessagetext", "sendmessagedraft"]
            .iter()
            .map(|m| counts.get(*m).copied().unwrap_or(0))
            .sum()
    };
    let calls_at_start = counted(tg);
    let calls_before = tg.sent_messages().len();
    let total = chats * per_chat;
    let started = Instant::now();
    for round in 0..per_chat {
        for chat in 0..chats {
            tg.send_dm(10_000 + chat as i64, "user", &format!("message {round}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(env_usize("TG_DEADLINE_SECS", 600) as u64);
    let (finished_at, shown) = loop {
        // Each message's last text; a reply is done when it reads the whole echo.
        let sent = tg.sent_messages();
        let mut last: std::collections::HashMap<(i64, i64), (&str, Instant)> = Default::default();
        for m in sent.iter().skip(calls_before).filter(|m| !m.is_draft()) {
            last.insert((m.chat_id, m.message_id), (m.plain_text.as_str(), m.at));
        }
        let done: Vec<Instant> = last
            .values()
            .filter(|(t, _)| t.starts_with("fake reply to: message "))
            .map(|(_, at)| *at)
            .collect();
        if Instant::now() > deadline {
            let stuck: Vec<&str> = last
                .values()
                .map(|(t, _)| *t)
                .filter(|t| !t.starts_with("fake reply to: message "))
                .take(3)
                .collect();
            println!(
                "gave up: {} of {total} replies whole; others read {stuck:?}",
                done.len()
            );
        }
        if done.len() >= total || Instant::now() > deadline {
            break (done.iter().max().copied().unwrap_or(started), done.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = finished_at.saturating_duration_since(started);
    let calls = counted(tg) - calls_at_start;
    println!(
        "streaming = \"{mode}\", streamIntervalMs = {interval}: chats: {chats}, messages: {total}, replies shown whole: {shown}, elapsed: {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} messages/s; Bot API calls per reply: {:.2}",
        shown as f64 / elapsed.as_secs_f64(),
        calls as f64 / total as f64
    );
    assert_eq!(shown, total, "every reply shown whole");
}
