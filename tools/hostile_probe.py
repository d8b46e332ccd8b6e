#!/usr/bin/env python3
"""Feed mutated inputs to the tapeloop binary and count how each command ends.

Reproduces the "hostile corpora per command" figures in docs/RELIABILITY.md. Every input is
derived from the repository's own files (recordings/, scenarios/, the vendored provider
streams and vcrpy cassettes) by a seeded mutation, so a run is repeatable:

    cargo build --release
    python3 tools/hostile_probe.py --bin target/release/tapeloop --per-kind 200 --seed 1

For each command it prints how many inputs ended with exit 0, 1 and 2, and how many ended any
other way: a panic (exit 101 or "panicked at" on stderr), a signal (abort, stack overflow,
out of memory) or a hang (no exit within --timeout seconds). tapeloop promises 0 of the last
three. Inputs that end badly are kept under --keep (default target/hostile-probe/) with the
command that ran them.
"""

import glob
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from probe_common import ROOT, arguments, start_tapeloop
STREAMS = os.path.join(ROOT, "tests", "fixtures", "provider-streams")
# Raw stream folders and the --api that decodes them.
STREAM_APIS = {
    "openai-chat": "openai-chat",
    "openai-compatible": "openai-chat",
    "openai-responses": "openai-responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits of a kind that breaks parsers in practice."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b = bytearray(b"{")
        op = rng.choice(
            ["truncate", "flip", "insert", "delete", "dup_line", "swap_lines",
             "number", "nest", "long_string", "null_byte", "splice_utf8"]
        )
        i = rng.randrange(len(b))
        if op == "truncate":
            del b[i:]
        elif op == "flip":
            b[i] ^= 1 << rng.randrange(8)
        elif op == "insert":
            b[i:i] = bytes(rng.choice(b'{}[]":,\\\n0-eE.') for _ in range(rng.randint(1, 8)))
        elif op == "delete":
            del b[i:i + rng.randint(1, 64)]
        elif op in ("dup_line", "swap_lines"):
            lines = bytes(b).split(b"\n")
            if len(lines) > 1:
                a, c = rng.randrange(len(lines)), rng.randrange(len(lines))
                if op == "dup_line":
                    lines.insert(c, lines[a])
                else:
                    lines[a], lines[c] = lines[c], lines[a]
                b = bytearray(b"\n".join(lines))
        elif op == "number":
            b[i:i] = rng.choice([b"1e999999", b"-0", b"18446744073709551616", b"9" * 400,
                                 b"-9223372036854775809", b"0.0000000000000000000001"])
        elif op == "nest":
            depth = rng.choice([200, 5_000, 100_000])
            b[i:i] = b"[" * depth + b"]" * depth
        elif op == "long_string":
            b[i:i] = b'"' + b"x" * rng.choice([10_000, 1_000_000]) + b'"'
        elif op == "null_byte":
            b[i:i] = b"\x00"
        elif op == "splice_utf8":
            b[i:i] = rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", "\u2028".encode()])
    return bytes(b)


def mutate_chunks(data: bytes, rng: random.Random) -> bytes:
    """Mutate the stream text inside one to three `chunk` lines and re-encode them, so every
    line stays valid JSON and the damage reaches the SSE decoder and the API's adapter."""
    lines = data.split(b"\n")
    chunks = [i for i, l in enumerate(lines) if l.startswith(b'{"kind":"chunk"')]
    for i in rng.sample(chunks, min(len(chunks), rng.randint(1, 3))):
        line = json.loads(lines[i])
        if isinstance(line.get("data"), str):
            text = mutate(line["data"].encode(), rng).decode("utf-8", "replace")
            line["data"] = text
            lines[i] = json.dumps(line, separators=(",", ":")).encode()
    return b"\n".join(lines)


def unseal(data: bytes, rng: random.Random) -> bytes:
    """Two times in three, drop the footer line: a mutated cassette whose footer stays fails its
    hash check before much else is parsed, while one without a footer (cut short while
    recording) is read, decoded and replayed to the end, which is what reaches the decoders."""
    if rng.randrange(3) == 0:
        return data
    return b"\n".join(l for l in data.split(b"\n") if b'"kind":"footer"' not in l)


def run(cmd, timeout, cwd):
    """(label, detail): label is exit-N, panic, signal-N or hang."""
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", f"no exit in {timeout}s"
    stderr = p.stderr.decode("utf-8", "replace")
    if p.returncode == 101 or "panicked at" in stderr:
        return "panic", stderr[-2000:]
    if p.returncode < 0:
        return f"signal-{-p.returncode}", stderr[-2000:]
    if p.returncode not in (0, 1, 2):
        return f"exit-{p.returncode}", stderr[-2000:]
    return f"exit-{p.returncode}", f"{time.monotonic() - t:.2f}s"


def serve_probe(binary, cassette, count, rng, timeout):
    """Send `count` mutated HTTP requests to one `tapeloop serve`, each on its own connection,
    and after each check the server still answers the recorded request byte for byte.

    Returns {outcome: count}: `status NNN` (an HTTP answer), `closed` (the server closed the
    connection without one), `hang` (nothing within timeout), plus `server died` and
    `good request failed` — the two tapeloop promises never happen."""
    with open(cassette, "rb") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    req = next(l for l in lines if l["kind"] == "request")
    body = [l for l in lines if l["kind"] == "chunk" and l["id"] == req["id"]]
    payload = json.dumps(req["body"]).encode()
    path = "/" + req["url"].split("/", 3)[3]
    good = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n").encode() + payload

    proc, port = start_tapeloop(
        [binary, "serve", cassette, "--pace", "instant", "--listen", "127.0.0.1:0",
         "--header-read-timeout", "2"])
    if port is None:
        proc.kill()
        return {"server did not start": 1}

    def exchange(raw, half_close):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            try:
                sock.sendall(raw)
                if half_close:
                    # The end of a mutated request is the end of the input.
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            got = b""
            try:
                while True:
                    part = sock.recv(65536)
                    if not part:
                        break
                    got += part
            except socket.timeout:
                return "hang", got
            except OSError:
                pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
        return (f"status {m.group(1).decode()}" if m else "closed"), got

    out = {}
    try:
        for _ in range(count):
            label, _ = exchange(mutate(good, rng), True)
            out[label] = out.get(label, 0) + 1
            if proc.poll() is not None:
                out["server died"] = out.get("server died", 0) + 1
                break
            # Every request gets a fresh session, so the first recorded answer comes back.
            label, got = exchange(good.replace(
                b"\r\n\r\n", f"\r\nx-tapeloop-session: s{rng.random()}\r\n\r\n".encode(), 1), False)
            # The recorded bytes arrive chunked: compare what is left after removing framing.
            if label != "status 200" or not all(
                c["data"].encode() in got for c in body
            ):
                out["good request failed"] = out.get("good request failed", 0) + 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def main():
    args = arguments(__doc__, per_kind=100, timeout=30.0,
                     keep=os.path.join(ROOT, "target", "hostile-probe"))

    rng = random.Random(args.seed)
    cassettes = sorted(glob.glob(os.path.join(ROOT, "recordings", "*.jsonl")))
    scenarios = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.toml")))
    streams = [
        (p, api)
        for d, api in STREAM_APIS.items()
        for p in sorted(glob.glob(os.path.join(STREAMS, d, "*")))
        if os.path.isfile(p)
    ]
    vcr = sorted(glob.glob(os.path.join(STREAMS, "cassettes", "**", "*.yaml"), recursive=True))
    if not (cassettes and scenarios and streams and vcr):
        sys.exit("missing inputs: run from a tapeloop checkout")

    results = {}
    bad = []
    disagree = []
    work = tempfile.mkdtemp(prefix="tapeloop-probe-")
    try:
        def probe(kind, cmd, files):
            label, detail = run(cmd, args.timeout, work)
            results.setdefault(kind, {}).setdefault(label, 0)
            results[kind][label] += 1
            if label in ("panic", "hang") or label.startswith("signal") or label not in (
                "exit-0", "exit-1", "exit-2"
            ):
                n = len(bad)
                dest = os.path.join(args.keep, f"{n:04}-{kind.replace(' ', '_')}")
                os.makedirs(dest, exist_ok=True)
                for f in files:
                    shutil.copy(f, dest)
                with open(os.path.join(dest, "command.txt"), "w") as fh:
                    fh.write(" ".join(cmd) + "\n" + detail + "\n")
                bad.append((kind, label, dest))
            return label

        total = 4 * args.per_kind + args.per_kind // 2 * 2
        done = 0
        for i in range(args.per_kind):
            # A mutated cassette: check it, and run a scenario that replays it.
            src = rng.choice(cassettes)
            cas = os.path.join(work, f"c{i}.jsonl")
            with open(src, "rb") as f, open(cas, "wb") as g:
                raw = f.read()
                bent = mutate_chunks(raw, rng) if rng.randrange(2) else mutate(raw, rng)
                g.write(unseal(bent, rng))
            checked = probe("check CASSETTE", [args.bin, "check", cas], [cas])
            stem = os.path.basename(src).split(".")[0]
            base = [s for s in scenarios if os.path.basename(s).startswith(stem)] or scenarios
            with open(rng.choice(base), encoding="utf-8") as f:
                text = f.read()
            sc = os.path.join(work, f"s{i}.toml")
            # The scenario's `cassettes = [...]` (one line or several) names only this cassette.
            text = re.sub(r"^cassettes\s*=\s*\[.*?\]", f"cassettes = [{json.dumps(cas)}]",
                          text, count=1, flags=re.S | re.M)
            with open(sc, "w", encoding="utf-8") as g:
                g.write(text)
            ran = probe("run (mutated cassette)", [args.bin, "run", "--no-progress", sc], [cas, sc])
            # `check` promises to report what `run` would refuse.
            if ran == "exit-2" and checked == "exit-0":
                disagree.append(cas)
                keep = os.path.join(args.keep, f"disagree-{len(disagree):04}")
                os.makedirs(keep, exist_ok=True)
                shutil.copy(cas, keep)
                shutil.copy(sc, keep)
            probe("events CASSETTE", [args.bin, "events", cas], [cas])

            # A mutated scenario against its real cassette.
            src = rng.choice(scenarios)
            sc = os.path.join(work, f"m{i}.toml")
            with open(src, "rb") as f:
                text = f.read().replace(b'"../recordings/', f'"{ROOT}/recordings/'.encode())
            with open(sc, "wb") as g:
                g.write(mutate(text, rng))
            probe("run (mutated scenario)", [args.bin, "run", "--no-progress", sc], [sc])

            if i % 2 == 0:
                # A mutated raw stream, decoded with its API.
                src, api = rng.choice(streams)
                raw = os.path.join(work, f"r{i}.sse")
                with open(src, "rb") as f, open(raw, "wb") as g:
                    g.write(mutate(f.read(), rng))
                probe("events --api RAW", [args.bin, "events", "--api", api, raw], [raw])
                # A mutated vcrpy cassette, imported.
                src = rng.choice(vcr)
                y = os.path.join(work, f"v{i}.yaml")
                with open(src, "rb") as f, open(y, "wb") as g:
                    g.write(mutate(f.read(), rng))
                out = os.path.join(work, f"v{i}.jsonl")
                probe("import VCRPY", [args.bin, "import", "--force", "-o", out, y], [y])
                done += 2
            done += 4
            if i % 50 == 49:
                print(f"\r{done}/{total} inputs", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        serve = serve_probe(args.bin, os.path.join(ROOT, "recordings",
                                                   "call-with-tools.openai-chat.jsonl"),
                            args.per_kind, rng, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"seed {args.seed}, {args.per_kind} per command, timeout {args.timeout}s")
    print(f"{'command':26} {'inputs':>7} {'exit 0':>7} {'exit 1':>7} {'exit 2':>7} {'other':>6}")
    for kind, r in results.items():
        n = sum(r.values())
        other = n - r.get("exit-0", 0) - r.get("exit-1", 0) - r.get("exit-2", 0)
        print(f"{kind:26} {n:7} {r.get('exit-0', 0):7} {r.get('exit-1', 0):7} "
              f"{r.get('exit-2', 0):7} {other:6}")
    print("serve, mutated HTTP requests: " + ", ".join(
        f"{k} {v}" for k, v in sorted(serve.items())))
    broken = serve.get("server died", 0) + serve.get("good request failed", 0) + serve.get(
        "hang", 0) + serve.get("server did not start", 0)
    print(f"cassettes `run` refused (exit 2) that `check` passed: {len(disagree)}")
    for kind, label, dest in bad:
        print(f"BAD {kind}: {label}, kept in {dest}")
    sys.exit(1 if bad or disagree or broken else 0)


if __name__ == "__main__":
    main()
