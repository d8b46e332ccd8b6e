#!/usr/bin/env python3
"""SIGKILL the recording proxy mid-stream and count what the cassette lost.

Reproduces the "SIGKILLs mid-record vs lines lost" figure in docs/RELIABILITY.md:

    cargo build --release
    python3 tools/sigkill_probe.py --bin target/release/tapeloop --kills 20 --seed 1

A local fake upstream (127.0.0.1) answers a conversation's first turn with 3 SSE events and
its second with 300, 5 ms apart. Each round starts `tapeloop record --proxy` in front of it,
sends both turns through it, and kills the proxy with SIGKILL at a random moment while events are flowing. Then it compares
the events the client had received with the events in the cassette on disk: an event the
client saw but the cassette lacks is lost. tapeloop promises at most the line being written
(one read) is lost, and that the cut cassette stays readable: `tapeloop check` must accept it
(exit 0, "cut short" warning) and `tapeloop events` must decode it.
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from probe_common import arguments, chat_event, send_chunked, start_tapeloop
EVENTS = 300


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        # The conversation's first turn is short; the second streams long enough to be cut.
        events = 3 if len(request["messages"]) == 1 else EVENTS
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        # Returns early when the proxy is killed.
        send_chunked(self, (chat_event(f"word{i} ") for i in range(events)), pause=0.005)


def one_round(binary, upstream_port, out, rng):
    """Returns (events the client saw, events on disk, check exit, events exit)."""
    proc, port = start_tapeloop(
        [binary, "record", "--proxy", "--listen", "127.0.0.1:0",
         "--upstream", f"http://127.0.0.1:{upstream_port}", "-o", out])
    if port is None:
        raise SystemExit("the proxy did not start")

    # A first turn that completes, so the cassette holds one usable interaction before the
    # one cut by the kill (a cassette with none is an error by design).
    first = [{"role": "user", "content": "count"}]
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": first}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                  b"content-type: application/json\r\n"
                  + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        while s.recv(65536):
            pass
    second = first + [{"role": "assistant", "content": "word0 word1 word2"},
                      {"role": "user", "content": "go on"}]
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": second}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                 b"content-type: application/json\r\n"
                 + f"content-length: {len(body)}\r\n\r\n".encode() + body)
    kill_at = time.monotonic() + rng.uniform(0.1, 1.2)
    got = b""
    sock.settimeout(0.01)
    while time.monotonic() < kill_at:
        try:
            part = sock.recv(65536)
            if not part:
                break
            got += part
        except socket.timeout:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sock.close()
    seen = len(re.findall(rb'"content":"word\d+ "', got)) + 3

    on_disk = 0
    files = glob.glob(os.path.join(out, "*.jsonl"))
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue  # the line being written when the process died
                if obj.get("kind") == "chunk":
                    on_disk += len(re.findall(r'"content":"word\d+ "', obj.get("data", "")))
    check = events = None
    if files:
        check = subprocess.run([binary, "check", *files], capture_output=True).returncode
        events = subprocess.run([binary, "events", *files], capture_output=True).returncode
    return seen, on_disk, check, events, len(files)


def main():
    args = arguments(__doc__, kills=20)
    rng = random.Random(args.seed)
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="tapeloop-sigkill-")
    rows = []
    try:
        for k in range(args.kills):
            out = os.path.join(work, f"k{k}")
            rows.append(one_round(args.bin, upstream.server_address[1], out, rng))
            print(f"\rkill {k + 1}/{args.kills}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        upstream.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    worst = max(seen - disk for seen, disk, *_ in rows)
    total_lost = sum(max(0, seen - disk) for seen, disk, *_ in rows)
    unreadable = sum(1 for *_, check, events, files in rows
                     if files == 0 or check != 0 or events != 0)
    print(f"seed {args.seed}, {args.kills} SIGKILLs mid-stream ({EVENTS} events, 5 ms apart)")
    print(f"events the client saw before the kill: {sum(r[0] for r in rows)}")
    print(f"events on disk afterwards:             {sum(r[1] for r in rows)}")
    print(f"events seen but lost, in all:          {total_lost} (worst kill: {max(worst, 0)})")
    print(f"cassettes check/events could not read: {unreadable}")
    for seen, disk, check, events, files in rows:
        print(f"  seen {seen:4}  on disk {disk:4}  check exit {check}  events exit {events}")
    # One read may be in flight; a read holds at most one event here.
    sys.exit(1 if worst > 1 or unreadable else 0)


if __name__ == "__main__":
    main()
