//! Memory per idle in-memory session: RSS before and after 100,000 sessions have each
//! run one (empty) turn through the `SessionManager`, divided by the count.
//!
//! Run: `cargo bench --bench sessions` (optionally `SESSIONS=200000`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use remoteclaw::clock::SystemClock;
use remoteclaw::session::SessionManager;
use remoteclaw::session::sqlite::SqliteStore;
use std::sync::Arc;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("store"));
    let manager = SessionManager::new(store, 20, Arc::new(SystemClock));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up allocator and store with a few sessions first.
    rt.block_on(async {
        for i in 0..1000 {
            drop(
                manager
                    .begin(&format!("telegram:dm:warm{i}"))
                    .await
                    .expect("begin"),
            );
        }
    });
    let before = rss_kib();
    let started = std::time::Instant::now();
    rt.block_on(async {
        for i in 0..n {
            drop(
                manager
                    .begin(&format!("telegram:dm:{}", 100_000_000 + i))
                    .await
                    .expect("begin"),
            );
        }
    });
    let elapsed = started.elapsed();
    let after = rss_kib();
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "sessions: {n} idle in memory ({} live)",
        manager.live_count()
    );
    println!(
        "RSS before: {:.1} MiB, after: {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!("memory per idle session: {per:.0} bytes (target <= 1024)");
    println!(
        "begin+drop per new session (incl. store lookup): {:.1} us",
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
}
