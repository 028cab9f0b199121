//! Host slow-down monitor for the load benchmarks.
//!
//! The development VM periodically runs far slower than usual: every ~1.5 s, for
//! ~50–150 ms, a fixed CPU-only loop takes ~15× its usual time (often followed by a
//! shorter second episode ~200 ms later), while the guest's steal time stays at zero.
//! A C loop on an otherwise idle machine shows it as well as any of our processes, so it
//! is the host's doing, and it covers ~7 % of wall time — enough to own the p99 of any
//! latency measurement here.
//!
//! The monitor measures that directly: a thread runs a small fixed loop (calibrated to
//! ~50 µs) every [`EVERY`] and records how long it took. [`HostMonitor::episodes`] finds
//! the episodes: a run of consecutive probes each over [`SHOULDER`] × the median that
//! holds at least [`MIN_CORE`] probes over [`CORE`] × the median. The core is what no
//! load of ours can do to the probe (a busy hyperthread sibling slows it ~2×); the
//! shoulders around it (an episode ramps up and down, 2–5× slower) belong to the same
//! event. A slow run with no core — our own load, or a lone preemption — is ignored. The thread asks for real-time scheduling
//! (`chrt -f`, root only) so that the load under test cannot preempt it and pass for a
//! host slow-down; [`HostMonitor::realtime`] says whether it got it. It costs ~1 % of
//! one core.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Gap between two probe loops.
pub const EVERY: Duration = Duration::from_millis(4);
/// Slow-down of a probe (against the median) that only the host causes: episodes run
/// 10–18× slower at their core.
pub const CORE: f64 = 5.0;
/// Slow-down that extends an episode around its core.
pub const SHOULDER: f64 = 2.0;
/// Core probes an episode needs.
pub const MIN_CORE: usize = 2;
/// Usual duration the probe loop is calibrated to.
const PROBE_TARGET: Duration = Duration::from_micros(50);

/// A host slow-down: from the start of its first slow probe to the end of its last.
#[derive(Clone, Copy, Debug)]
pub struct Episode {
    pub start: Instant,
    pub end: Instant,
    /// The slowest probe against the median.
    pub factor: f64,
}

impl Episode {
    /// Does `[from, to]` overlap this episode?
    pub fn overlaps(&self, from: Instant, to: Instant) -> bool {
        from <= self.end && to >= self.start
    }
}

pub struct HostMonitor {
    samples: Arc<Mutex<Vec<(Instant, Duration)>>>,
    realtime: Arc<Mutex<Option<bool>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Puts the calling thread in `SCHED_FIFO` (priority 20) with `chrt`; false when
/// that is not allowed or `chrt` is missing.
fn become_realtime() -> bool {
    let tid = rustix::thread::gettid().as_raw_nonzero().get().to_string();
    std::process::Command::new("chrt")
        .args(["-f", "-p", "20", &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The probe: `iterations` rounds of a multiply-add the compiler cannot drop.
fn spin(iterations: u64) -> u64 {
    let mut x = black_box(1u64);
    for _ in 0..iterations {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    black_box(x)
}

/// Iterations that take about [`PROBE_TARGET`]: the fastest of 40 timed rounds, so an
/// episode during calibration does not skew it.
fn calibrate() -> u64 {
    const ROUND: u64 = 20_000;
    let fastest = (0..40)
        .map(|_| {
            let t = Instant::now();
            spin(ROUND);
            let took = t.elapsed();
            std::thread::sleep(Duration::from_millis(1));
            took
        })
        .min()
        .unwrap_or(Duration::from_micros(50));
    let per_iteration = fastest.as_secs_f64() / ROUND as f64;
    ((PROBE_TARGET.as_secs_f64() / per_iteration.max(1e-12)) as u64).max(1_000)
}

impl HostMonitor {
    pub fn start() -> HostMonitor {
        let samples = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        let stop = Arc::new(AtomicBool::new(false));
        let realtime = Arc::new(Mutex::new(None));
        let (s, st, rt) = (samples.clone(), stop.clone(), realtime.clone());
        let thread = std::thread::Builder::new()
            .name("host-monitor".into())
            .spawn(move || {
                *rt.lock().unwrap() = Some(become_realtime());
                let iterations = calibrate();
                while !st.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    spin(iterations);
                    let took = t.elapsed();
                    s.lock().unwrap().push((t, took));
                    std::thread::sleep(EVERY);
                }
            })
            .expect("host monitor: spawn thread");
        HostMonitor {
            samples,
            realtime,
            stop,
            thread: Some(thread),
        }
    }

    /// Whether the probe thread runs with real-time priority (`None`: not started yet).
    pub fn realtime(&self) -> Option<bool> {
        *self.realtime.lock().unwrap()
    }

    /// Slow-down episodes between `from` and `to`.
    pub fn episodes(&self, from: Instant, to: Instant) -> Vec<Episode> {
        let samples = self.samples.lock().unwrap().clone();
        episodes_of(&samples, from, to)
    }
}

impl Drop for HostMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Episodes among `samples` (start, duration of each probe) between `from` and `to`;
/// the baseline is the median of all samples.
pub fn episodes_of(samples: &[(Instant, Duration)], from: Instant, to: Instant) -> Vec<Episode> {
    let mut durations: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    if durations.is_empty() {
        return Vec::new();
    }
    durations.sort_unstable();
    let median = durations[durations.len() / 2].as_secs_f64().max(1e-9);
    let factor = |d: Duration| d.as_secs_f64() / median;
    let mut out = Vec::new();
    let mut run: Vec<(Instant, Duration)> = Vec::new();
    let mut flush = |run: &mut Vec<(Instant, Duration)>| {
        if run.iter().filter(|s| factor(s.1) > CORE).count() >= MIN_CORE {
            let (first, last) = (run[0], run[run.len() - 1]);
            let worst = run.iter().map(|s| factor(s.1)).fold(0.0, f64::max);
            if first.0 <= to && last.0 + last.1 >= from {
                out.push(Episode {
                    start: first.0,
                    end: last.0 + last.1,
                    factor: worst,
                });
            }
        }
        run.clear();
    };
    for &(at, took) in samples {
        let slow = factor(took) > SHOULDER;
        // Consecutive: no probe missing in between (the thread could not run at all).
        let follows = run
            .last()
            .is_some_and(|&(prev, d)| at.saturating_duration_since(prev + d) <= EVERY * 3);
        if slow && (run.is_empty() || follows) {
            run.push((at, took));
        } else {
            flush(&mut run);
            if slow {
                run.push((at, took));
            }
        }
    }
    flush(&mut run);
    out
}
