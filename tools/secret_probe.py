#!/usr/bin/env python3
"""Plant secrets in recorded traffic and count how many reach disk.

Reproduces the "secrets planted vs found" figure in docs/RELIABILITY.md:

    cargo build --release
    python3 tools/secret_probe.py --bin target/release/tapeloop --rounds 20 --seed 1

A local fake upstream (127.0.0.1) answers OpenAI-style requests; `tapeloop record --proxy`
records the traffic an agent (this script) sends through it, and `tapeloop record` records a
scenario live against the same upstream with a planted API key. Every round plants fresh
random secrets where real ones travel:

- request headers: `authorization` (Bearer, opaque), `x-api-key`, `x-goog-api-key`, `api-key`,
  `cookie`, `openai-organization`, `openai-project`;
- URL query parameters named like secrets (`key`, `access_token`, `Token`, `sig`, `api_key`);
- key-shaped strings (`sk-proj-…`, `sk-ant-…`, `AIza…`) in a JSON request body, in a
  gzip-encoded JSON request body and in a non-JSON request body;
- the response: key-shaped strings split across two body reads of an SSE stream, inside a
  gzip-encoded response, and in response headers (`set-cookie`, `openai-organization`, a
  custom `x-session-token`);
- live `record`: the API key itself, sent by tapeloop and echoed back by the upstream split
  across two reads.

Then every file written is searched for every planted value, as is the decoded content of
each `body_b64` field. tapeloop promises 0 found. Secrets without a key shape that travel
only inside free text are out of scope (no tool can tell them from prose) and not planted.
"""

import base64
import glob
import gzip
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from probe_common import ROOT, arguments, chat_event, send_chunked, start_tapeloop


def token(rng, n, alphabet=string.ascii_letters + string.digits):
    return "".join(rng.choice(alphabet) for _ in range(n))


class Upstream(BaseHTTPRequestHandler):
    """Answers every POST as `plan` says. The plan is set by the script before each request
    (requests are sent one at a time), never sent through tapeloop, so nothing the probe uses
    to steer the upstream can itself be recorded."""

    protocol_version = "HTTP/1.1"
    plan = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        secret = self.plan.get("echo", "")
        if self.plan.get("gzip"):
            body = gzip.compress(json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"key {secret}"}}],
            }).encode())
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for name in ("set-cookie", "openai-organization", "x-session-token"):
            value = self.plan.get(name)
            if value:
                self.send_header(name, value)
        self.end_headers()
        echo_split(self, secret)


def echo_split(handler, secret):
    """Answer with an SSE stream whose text holds `secret`, cut in its middle across two body
    reads with a pause between them."""
    event = chat_event(f"your key is {secret} ok")
    split = event.index(secret) + len(secret) // 2 if secret else len(event) // 2
    stop = chat_event(None, "stop") + "data: [DONE]\n\n"
    send_chunked(handler, (event[:split], event[split:], stop))


def send(port, path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def proxy_round(binary, upstream_port, out, rng):
    """One proxy session with secrets planted in every place; returns {placement: value}."""
    planted = {}

    def plant(place, value):
        planted[place] = value
        return value

    proc, port = start_tapeloop(
        [binary, "record", "--proxy", "--listen", "127.0.0.1:0",
         "--upstream", f"http://127.0.0.1:{upstream_port}", "-o", out])
    if port is None:
        raise SystemExit("record --proxy did not start")
    try:
        base_headers = {
            "content-type": "application/json",
            "authorization": "Bearer " + plant("header authorization (opaque)", token(rng, 24)),
            "x-api-key": plant("header x-api-key", "sk-ant-api03-" + token(rng, 40)),
            "x-goog-api-key": plant("header x-goog-api-key", "AIza" + token(rng, 35)),
            "api-key": plant("header api-key", token(rng, 32)),
            "cookie": "session=" + plant("header cookie", token(rng, 30)),
            "openai-organization": plant("header openai-organization", "org-" + token(rng, 24)),
            "openai-project": plant("header openai-project", "proj_" + token(rng, 24)),
        }
        Upstream.plan = {
            "set-cookie": "sid=" + plant("response header set-cookie", token(rng, 30)),
            "openai-organization": plant("response header openai-organization",
                                         "org-" + token(rng, 24)),
            "x-session-token": plant("response header x-session-token", token(rng, 30)),
            "echo": plant("response body split across reads", "sk-proj-" + token(rng, 40)),
        }
        query = "&".join(f"{name}={plant('query ' + name, token(rng, 28))}"
                         for name in ("key", "access_token", "Token", "sig", "api_key"))
        messages = [{"role": "user", "content": "use " + plant(
            "request body (JSON)", "sk-proj-" + token(rng, 40)) + " please"}]
        body = json.dumps({"model": "gpt-4o", "stream": True, "messages": messages}).encode()
        send(port, f"/v1/chat/completions?{query}", body, base_headers)

        # A gzip-encoded request body, answered with a gzip-encoded response.
        gz_headers = dict(base_headers)
        gz_headers["content-encoding"] = "gzip"
        Upstream.plan = {"gzip": True,
                         "echo": plant("gzip response body", "sk-ant-api03-" + token(rng, 40))}
        gz_body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": plant(
            "gzip request body", "AIza" + token(rng, 35))}]}).encode()
        send(port, "/v1/chat/completions", gzip.compress(gz_body), gz_headers)

        # A body that is not JSON.
        raw_headers = dict(base_headers)
        raw_headers["content-type"] = "text/plain"
        Upstream.plan = {}
        send(port, "/v1/chat/completions",
             ("key=" + plant("non-JSON request body", "sk-proj-" + token(rng, 40))).encode(),
             raw_headers)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return planted


def live_round(binary, upstream_port, out, rng):
    """`tapeloop record` of a bundled scenario against the fake upstream with a planted key."""
    key = "sk-proj-" + token(rng, 40)
    env = dict(os.environ, PROBE_KEY=key)
    scenario = os.path.join(ROOT, "scenarios", "call-with-tools.toml")
    # The upstream (EchoAuth) echoes the bearer key tapeloop sends, split across two reads.
    subprocess.run(
        [binary, "record", scenario, "--api", "openai-chat", "--model", "gpt-4o",
         "--base-url", f"http://127.0.0.1:{upstream_port}/v1", "--api-key-env", "PROBE_KEY",
         "-o", out],
        env=env, capture_output=True, timeout=120)
    return {"live record API key (sent, and echoed split across reads)": key}


def found_on_disk(paths, value):
    needle = value.encode()
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        if needle in data:
            return p
        for line in data.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            for field in ("body_b64", "b64"):
                enc = obj.get(field) if isinstance(obj, dict) else None
                if isinstance(enc, str):
                    try:
                        if needle in base64.b64decode(enc):
                            return p
                    except ValueError:
                        pass
    return None


class EchoAuth(Upstream):
    """The live-record upstream: echoes the bearer key it was sent, split across reads."""

    def do_POST(self):
        key = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        echo_split(self, key)


def main():
    args = arguments(__doc__, rounds=10)
    rng = random.Random(args.seed)

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    echo = ThreadingHTTPServer(("127.0.0.1", 0), EchoAuth)
    for s in (upstream, echo):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="tapeloop-secrets-")
    per_place = {}
    leaks = []
    written = 0
    try:
        for r in range(args.rounds):
            out = os.path.join(work, f"proxy{r}")
            planted = proxy_round(args.bin, upstream.server_address[1], out, rng)
            live = os.path.join(work, f"live{r}.jsonl")
            planted.update(live_round(args.bin, echo.server_address[1], live, rng))
            files = [p for p in glob.glob(os.path.join(work, "**", "*"), recursive=True)
                     if os.path.isfile(p)]
            if not any(p.startswith(out) for p in files) or not os.path.exists(live):
                sys.exit(f"round {r}: nothing was recorded (proxy: {out}, live: {live})")
            written = len(files)
            for place, value in planted.items():
                hit = found_on_disk(files, value)
                stat = per_place.setdefault(place, [0, 0])
                stat[0] += 1
                if hit:
                    stat[1] += 1
                    leaks.append((place, hit))
            print(f"\rround {r + 1}/{args.rounds}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        upstream.shutdown()
        echo.shutdown()
        keep = leaks and os.path.join(ROOT, "target", "secret-probe")
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(work, keep)
        shutil.rmtree(work, ignore_errors=True)

    print(f"seed {args.seed}, {args.rounds} rounds, {written} files written in the last round")
    print(f"{'placement':58} {'planted':>8} {'found':>6}")
    for place, (n, hit) in per_place.items():
        print(f"{place:58} {n:8} {hit:6}")
    total = sum(n for n, _ in per_place.values())
    print(f"{'total':58} {total:8} {len(leaks):6}")
    for place, path in leaks:
        print(f"LEAK {place}: {path} (copied to target/secret-probe/)")
    sys.exit(1 if leaks else 0)


if __name__ == "__main__":
    main()
