//! Discord interactions: slash commands dispatched by the loopback fake gateway to the
//! real serenity client, acknowledged (deferred) and answered (original edited) by the
//! Discord channel with a zero-latency fake provider. Prints interactions per second
//! and the time from INTERACTION_CREATE to the acknowledgement (target p99 < 50 ms).
//!
//! Run: `cargo bench --bench discord_load` (env: DC_INTERACTIONS=2000).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/support/fake_discord/mod.rs"]
mod fake_discord;
#[path = "../tests/support/fake_provider/mod.rs"]
mod fake_provider;
mod support;

use fake_discord::FakeDiscord;
use fake_provider::FakeProvider;
use remoteclaw::secret::Secret;
use serde_json::json;
use std::time::{Duration, Instant};

const TOKEN: &str = "discord-bench-token";

fn main() {
    remoteclaw::process_setup();
    let n: usize = std::env::var("DC_INTERACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dc = FakeDiscord::start(TOKEN).await;
        dc.set_interaction_ack_deadline(None);
        let llm = FakeProvider::start().await;
        let (_dir, app) = support::app(&format!(
                "[agents.defaults.model]\nprimary = \"openai/gpt-4o-mini\"\n[models.providers.openai]\nbaseUrl = \"{}\"\n[channels.discord]\nenabled = true\napiBase = \"{}\"\nguilds = [\"111\"]\ndmPolicy = \"open\"\ngroupPolicy = \"open\"\n",
                llm.openai_base(),
                dc.api_base())).await;
        let cfg = app.config().channels.discord.clone().unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(remoteclaw::channels::discord::run(app, remoteclaw::config::live::section(cfg), Secret::new(TOKEN), rx));
        assert!(dc.wait_ready(Duration::from_secs(30)).await);
        for c in 0..100u64 {
            dc.register_channel(7000 + c, Some(111), 0);
        }
        let started = Instant::now();
        let mut sent = Vec::with_capacity(n);
        for i in 0..n {
            let channel = 7000 + (i as u64 % 100);
            let t = Instant::now();
            let (iid, _) = dc.send_slash_command(Some(111), channel, 500 + i as u64, "model", json!([{"name": "model", "type": 3, "value": "list"}]));
            sent.push((iid, t));
        }
        let mut ack = Vec::with_capacity(n);
        let mut done_at = started;
        for (iid, t) in &sent {
            let calls = dc.wait_for_interaction(*iid, 2, Duration::from_secs(120)).await;
            assert!(calls.len() >= 2, "interaction {iid} answered");
            ack.push(calls[0].at.saturating_duration_since(*t).as_secs_f64() * 1000.0);
            done_at = done_at.max(calls[1].at);
        }
        let elapsed = done_at.saturating_duration_since(started).as_secs_f64();
        println!("interactions: {n} (/model list, 100 channels), answered in {elapsed:.2} s");
        println!("throughput: {:.0} interactions/s", n as f64 / elapsed);
        println!("burst (all {n} dispatched at once) INTERACTION_CREATE -> acknowledgement: p50 {:.2} ms, p99 {:.2} ms", support::pct(&mut ack, 0.5), support::pct(&mut ack, 0.99));

        // Paced: 500 interactions at 250/s, the acknowledgement time a user sees.
        let mut paced = Vec::new();
        let mut ids = Vec::new();
        let t0 = Instant::now();
        for i in 0..500u64 {
            let due = t0 + Duration::from_millis(i * 4);
            tokio::time::sleep_until(due.into()).await;
            let t = Instant::now();
            let (iid, _) = dc.send_slash_command(Some(111), 7000 + (i % 100), 9000 + i, "model", json!([{"name": "model", "type": 3, "value": "list"}]));
            ids.push((iid, t));
        }
        for (iid, t) in &ids {
            let calls = dc.wait_for_interaction(*iid, 1, Duration::from_secs(60)).await;
            paced.push(calls[0].at.saturating_duration_since(*t).as_secs_f64() * 1000.0);
        }
        println!("paced at 250/s, INTERACTION_CREATE -> acknowledgement: p50 {:.2} ms, p99 {:.2} ms (target p99 < 50 ms)", support::pct(&mut paced, 0.5), support::pct(&mut paced, 0.99));
        let _ = stop.send(true);
    });
}
