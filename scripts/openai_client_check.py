#!/usr/bin/env python3
"""Drive a RemoteClaw gateway with the official OpenAI Python client.

Usage: REMOTECLAW_URL=http://127.0.0.1:PORT [REMOTECLAW_TOKEN=...] python3 openai_client_check.py
Expects the gateway's provider to answer "fake reply to: <last user message>" (the test
fake) unless EXPECT_PREFIX is set. Exits non-zero with a message on any mismatch.
"""
import os
import sys

from openai import OpenAI, APIStatusError

url = os.environ["REMOTECLAW_URL"].rstrip("/") + "/v1"
token = os.environ.get("REMOTECLAW_TOKEN", "unused")
prefix = os.environ.get("EXPECT_PREFIX", "fake reply to: ")
client = OpenAI(base_url=url, api_key=token, max_retries=0, timeout=30)


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


# Non-streaming.
r = client.chat.completions.create(model="remoteclaw", messages=[{"role": "user", "content": "hello"}])
check(r.choices[0].message.content == prefix + "hello", f"non-streaming reply: {r.choices[0].message.content!r}")
check(r.choices[0].finish_reason == "stop", "finish_reason stop")
check(r.usage is not None and r.usage.completion_tokens > 0, "usage reported")

# Streaming.
stream = client.chat.completions.create(
    model="remoteclaw", stream=True, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "stream me"}]
)
parts, finish = [], None
for chunk in stream:
    if chunk.choices:
        if chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        finish = chunk.choices[0].finish_reason or finish
check("".join(parts) == prefix + "stream me", f"streamed reply: {''.join(parts)!r} in {len(parts)} chunks")
check(len(parts) > 1, "reply arrived in several chunks")
check(finish == "stop", "stream finish_reason stop")

# Model listing and an error the client turns into an exception.
models = [m.id for m in client.models.list()]
check("remoteclaw" in models, f"models.list includes remoteclaw: {models}")
try:
    client.chat.completions.create(model="nosuch/model-x", messages=[{"role": "user", "content": "x"}])
    check(False, "unknown model raises")
except APIStatusError as e:
    check(e.status_code == 400, f"unknown model -> HTTP 400 ({e.message[:80]})")

print("openai client check passed")
