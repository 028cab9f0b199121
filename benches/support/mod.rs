//! Shared set-up for the channel benchmarks: a throwaway state dir with a config, an
//! `App` loaded from it, and nearest-rank percentiles.

use remoteclaw::app::App;
use remoteclaw::config::env::EnvMap;
use std::sync::Arc;

/// An `App` whose state dir (kept alive by the returned guard) holds `config`, with
/// `OPENAI_API_KEY` set for the fake provider.
pub async fn app(config: &str) -> (tempfile::TempDir, Arc<App>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("remoteclaw.toml"), config).expect("config");
    let env = EnvMap::from_pairs([
        ("HOME", dir.path().display().to_string()),
        ("REMOTECLAW_STATE_DIR", state.display().to_string()),
        ("OPENAI_API_KEY", "sk-bench".to_string()),
    ]);
    let app = Arc::new(App::load(env, None).await.expect("app loads"));
    (dir, app)
}

/// Nearest-rank percentile `p` (0..1) of `v` (sorted in place).
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// CPU time this process has used so far (user + system, every thread), from
/// `/proc/self/stat` (clock ticks of 10 ms); `None` where there is no such file.
pub fn process_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}
