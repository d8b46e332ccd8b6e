"""What the reliability probes (hostile_probe.py, secret_probe.py, sigkill_probe.py) share:
their command line, starting a tapeloop server on a free port, and a fake upstream's
chunked SSE reply."""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arguments(doc, **counts):
    """Parse --bin and --seed plus one integer option per `counts` (name=default); exit with
    a clear message when the binary is missing."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tapeloop"))
    ap.add_argument("--seed", type=int, default=1)
    for name, default in counts.items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin}: not an executable (build it: cargo build --release)")
    return args


def start_tapeloop(cmd):
    """Start a tapeloop server (`serve` or `record --proxy` on 127.0.0.1:0); return the process
    and the port it announced, or (process, None) if it exited first. Its output is drained in
    the background so it never blocks on a full pipe."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        m = re.search(rb"127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(m.group(1))
    return proc, None


def chat_event(content, finish=None):
    """One OpenAI Chat Completions stream event."""
    delta = {} if content is None else {"content": content}
    return "data: " + json.dumps({
        "id": "c", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }, separators=(",", ":")) + "\n\n"


def send_chunked(handler, parts, pause=0.03):
    """Send `parts` as separate HTTP/1.1 chunks, flushed and `pause` seconds apart, so each is
    its own read on the other side; then end the body. False if the peer went away."""
    try:
        for part in parts:
            data = part.encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()
            time.sleep(pause)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        return True
    except OSError:
        return False
