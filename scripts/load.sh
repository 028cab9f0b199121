#!/usr/bin/env bash
# Gateway load benchmark (benches/gateway_load.rs): p50/p99 latency of
# /v1/chat/completions through the gateway vs. straight to the fake provider
# (20 ms latency) at fixed open-loop rates, the overhead, and the gateway's RSS.
#
# Knobs (environment, passed through): LOAD_RATES (default 500,1000), LOAD_SECS (6),
# LOAD_WARMUP (200), LOAD_THREADS (2), FAKE_LATENCY_MS (20), LOAD_JITTER (1), REMOTECLAW_BIN.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

for var in LOAD_RATES LOAD_SECS LOAD_WARMUP LOAD_THREADS FAKE_LATENCY_MS LOAD_JITTER REMOTECLAW_BIN; do
    if [[ -n "${!var:-}" ]]; then
        printf '  %s=%s\n' "$var" "${!var}" >&2
    fi
done

if [[ -z "${REMOTECLAW_BIN:-}" ]]; then
    run cargo build --release --bin remoteclaw
fi
run cargo bench --bench gateway_load "$@"
