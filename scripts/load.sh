#!/usr/bin/env bash
# Gateway load benchmark (benches/gateway_load.rs): p50/p99 latency of
# /v1/chat/completions through the gateway vs. straight to the fake provider
# (20 ms latency) at fixed open-loop rates, the overhead per state store (SQLite and
# Redis, in the same run), each gateway's RSS, and the closed-loop throughput of one
# gateway replica against two on one Redis. Redis rows need `redis-server` on PATH (the
# bench starts a private one on a free loopback port); without it they are skipped.
#
# Knobs (environment, passed through): LOAD_RATES (default 500,1000), LOAD_SECS (6),
# LOAD_WARMUP (200), LOAD_THREADS (2), LOAD_STORES (sqlite,redis), LOAD_REPLICAS
# (1 when redis-server is available; 0 skips), LOAD_REPLICA_SECS (5), LOAD_REPLICA_CONC
# (256), FAKE_LATENCY_MS (20), LOAD_JITTER (1), REMOTECLAW_BIN.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

for var in LOAD_RATES LOAD_SECS LOAD_WARMUP LOAD_THREADS LOAD_STORES LOAD_REPLICAS \
    LOAD_REPLICA_SECS LOAD_REPLICA_CONC FAKE_LATENCY_MS LOAD_JITTER REMOTECLAW_BIN; do
    if [[ -n "${!var:-}" ]]; then
        printf '  %s=%s\n' "$var" "${!var}" >&2
    fi
done

if ! command -v redis-server >/dev/null 2>&1; then
    printf 'note: redis-server not on PATH: the Redis rows and replica runs will be skipped\n' >&2
fi

if [[ -z "${REMOTECLAW_BIN:-}" ]]; then
    run cargo build --release --bin remoteclaw
fi
run cargo bench --bench gateway_load "$@"
