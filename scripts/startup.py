#!/usr/bin/env python3
"""Start-up time of `remoteclaw models status`: median wall time over repeated runs,
with an empty state dir and with 50 stored profiles (+ 20 environment keys).

Usage: scripts/startup.py [path/to/remoteclaw] [runs]   (default: target/release/remoteclaw, 50)
Build first: cargo build --release --bin remoteclaw
"""
import json, os, statistics, subprocess, sys, tempfile, time

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "remoteclaw")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50


def measure(env, args):
    times = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        p = subprocess.run([binary, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t0) * 1000
        if p.returncode != 0:
            sys.exit(f"{args} failed: {p.stderr.decode()[:300]}")
        if i >= 3:  # warm-up runs (page cache) are not counted
            times.append(dt)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def home(profiles):
    d = tempfile.mkdtemp(prefix="rc-startup-")
    state = os.path.join(d, "state")
    os.makedirs(state)
    env = {"HOME": d, "REMOTECLAW_STATE_DIR": state, "PATH": os.environ.get("PATH", "")}
    if profiles:
        agent = os.path.join(state, "agents", "main", "agent")
        os.makedirs(agent)
        doc = {"version": 1, "profiles": {f"anthropic:p{i:02}": {"type": "api_key", "provider": "anthropic", "key": f"sk-ant-api03-bench-{i:02}"} for i in range(profiles)}}
        path = os.path.join(agent, "auth-profiles.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        os.chmod(path, 0o600)
        for i in range(20):
            env[f"ANTHROPIC_API_KEY_{i:02}"] = f"sk-ant-api03-env-{i:02}"
    return env


print(f"binary: {os.path.abspath(binary)}; {runs} runs each (after 3 warm-up runs)")
for label, profiles in [("empty state dir", 0), ("50 profiles + 20 env keys", 50)]:
    env = home(profiles)
    for args in (["models", "status"], ["models", "status", "--json"]):
        med, p90 = measure(env, args)
        print(f"{label:<28} {' '.join(args):<24} median {med:6.2f} ms   p90 {p90:6.2f} ms")
