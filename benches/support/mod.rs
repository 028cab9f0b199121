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
