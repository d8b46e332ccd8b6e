#!/usr/bin/env python3
"""The seeds' Python SessionProcessor, as a throughput reference for tapeloop.

Written from the seeds' `000_*.txt` (not in this repository): the doom-loop detector hashes
`json.dumps(args, sort_keys=True)` with md5 and fires when the last three (tool, hash) signatures
are equal; steps are tracked with start/finish times, tool calls and status; `get_summary` reports
them.
pydantic models are replaced by dataclasses (no third-party packages needed); the logic is
unchanged. `--verify-footer` on a cassette with a `blake3` footer (every bundled one) needs PyPI's
`blake3` package (the Rust crate's bindings): `python3 -m pip install blake3`.

The driver reads tapeloop cassettes (JSONL), decodes each interaction's SSE body
incrementally, JSON-parses every data payload, assembles OpenAI Chat Completions tool calls
and feeds the processor: the same bytes and the same work as tapeloop's replay path, for
`openai-chat` cassettes. It prints one JSON object with the timing, so a bench script can
compute the ratio against `tapeloop bench` on the same files.

Usage: seed_processor.py [--iterations N] [--verify-footer] CASSETTE.jsonl...
"""

import argparse
import base64
import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional


class DoomLoopDetector:
    """Same tool + same arguments three times in a row (the seed's detector)."""

    def __init__(self, threshold: int = 3):
        self.threshold = threshold
        self.history: List[tuple] = []

    def record(self, tool_name: str, args: Optional[Dict[str, Any]] = None) -> bool:
        args_str = json.dumps(args or {}, sort_keys=True, default=str)
        args_hash = hashlib.md5(args_str.encode()).hexdigest()[:8]
        self.history.append((tool_name, args_hash))
        if len(self.history) >= self.threshold:
            recent = self.history[-self.threshold:]
            if len(set(recent)) == 1:
                return True
        return False


@dataclass
class StepInfo:
    step: int
    started_at: datetime
    finished_at: Optional[datetime] = None
    tool_calls: List[str] = field(default_factory=list)
    status: str = "running"


class SessionProcessor:
    def __init__(self, session_id: str, max_steps: int = 50, doom_threshold: int = 3):
        self.session_id = session_id
        self.max_steps = max_steps
        self.doom_detector = DoomLoopDetector(threshold=doom_threshold)
        self.steps: List[StepInfo] = []
        self.current_step: Optional[StepInfo] = None
        self.aborted = False

    def start_step(self) -> StepInfo:
        self.current_step = StepInfo(step=len(self.steps) + 1, started_at=datetime.utcnow())
        self.steps.append(self.current_step)
        return self.current_step

    def finish_step(self, status: str = "completed") -> StepInfo:
        if self.current_step:
            self.current_step.finished_at = datetime.utcnow()
            self.current_step.status = status
        return self.current_step

    def record_tool_call(self, tool_name: str, tool_args=None) -> bool:
        if self.current_step:
            self.current_step.tool_calls.append(tool_name)
        return self.doom_detector.record(tool_name, tool_args)

    def is_doom_loop(self) -> bool:
        h = self.doom_detector.history
        t = self.doom_detector.threshold
        return len(h) >= t and len(set(h[-t:])) == 1

    def should_continue(self) -> bool:
        if self.aborted or len(self.steps) >= self.max_steps:
            return False
        return not self.is_doom_loop()

    def get_summary(self) -> Dict[str, Any]:
        return {
            "session_id": self.session_id,
            "total_steps": len(self.steps),
            "max_steps": self.max_steps,
            "aborted": self.aborted,
            "doom_loop_detected": self.is_doom_loop(),
            "steps": [
                {
                    "step": s.step,
                    "status": s.status,
                    "tool_calls": s.tool_calls,
                    "duration": (s.finished_at - s.started_at).total_seconds() if s.finished_at else None,
                }
                for s in self.steps
            ],
        }


class SseDecoder:
    """Incremental SSE decoder (LF/CRLF/CR, comments, multi-line data)."""

    def __init__(self):
        self.buf = ""
        self.data: List[str] = []
        self.event = None
        self.pending_cr = False

    def feed(self, text: str, out: list):
        if self.pending_cr and text.startswith("\n"):
            text = text[1:]
        self.pending_cr = False
        text = self.buf + text
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if text.endswith("\r"):
            self.pending_cr = True
        self.buf = lines.pop()
        for line in lines:
            self._line(line, out)

    def finish(self, out: list):
        if self.buf:
            self._line(self.buf, out)
            self.buf = ""
        self._line("", out)

    def _line(self, line: str, out: list):
        if line == "":
            if self.data:
                out.append((self.event, "\n".join(self.data)))
            self.data = []
            self.event = None
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value


class FooterMismatch(Exception):
    pass


def footer_hasher(f):
    """The hasher for the footer at the end of `f` (left at its start), as tapeloop chooses it:
    `blake3` when the footer has it, else `sha256` (cassettes written before BLAKE3)."""
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 4096))
    last = f.read().rstrip().rsplit(b"\n", 1)[-1]
    f.seek(0)
    try:
        footer = json.loads(last)
    except ValueError:
        footer = {}
    if isinstance(footer, dict) and "blake3" in footer:
        try:
            from blake3 import blake3
        except ImportError:
            sys.exit("--verify-footer: this cassette's footer hash is blake3, which needs PyPI's "
                     "blake3 package: python3 -m pip install blake3")
        return "blake3", blake3()
    return "sha256", hashlib.sha256()


def replay_cassette(path: str, verify_footer: bool = False) -> Dict[str, Any]:
    """Replay one openai-chat cassette through the seed processor; return counters.

    With `verify_footer`, also do the integrity work tapeloop always does: SHA-256 of every
    byte before the footer line (BLAKE3, or SHA-256 for older cassettes), checked against the
    footer (the seeds do not).
    """
    proc = SessionProcessor(session_id=path)
    events = 0
    decoder = None
    calls: Dict[int, Dict[str, str]] = {}
    ok = False
    with open(path, "rb") as f:
        field, hasher = footer_hasher(f) if verify_footer else (None, None)
        for raw in f:
            line = json.loads(raw)
            kind = line.get("kind")
            if hasher is not None:
                if kind == "footer":
                    if hasher.hexdigest() != line.get(field):
                        raise FooterMismatch(f"{path}: footer {field} does not match")
                else:
                    hasher.update(raw)
            if kind == "request":
                proc.start_step()
                decoder = SseDecoder()
                calls = {}
            elif kind == "response":
                ok = 200 <= line.get("status", 0) < 300
            elif kind == "chunk" and decoder is not None:
                text = line["data"] if "data" in line else base64.b64decode(line["b64"]).decode("utf-8", "replace")
                out: list = []
                decoder.feed(text, out)
                events += handle(out, calls, ok)
            elif kind == "end" and decoder is not None:
                out = []
                decoder.finish(out)
                events += handle(out, calls, ok)
                doom = False
                for idx in sorted(calls):
                    c = calls[idx]
                    try:
                        args = json.loads(c["arguments"] or "{}")
                    except ValueError:
                        args = {"_raw": c["arguments"]}
                    doom = proc.record_tool_call(c["name"], args) or doom
                proc.finish_step("doom_loop" if doom else ("completed" if ok else "error"))
                decoder = None
    summary = proc.get_summary()
    return {"events": events, "steps": summary["total_steps"], "doom_loop": summary["doom_loop_detected"]}


def handle(out: list, calls: Dict[int, Dict[str, str]], ok: bool) -> int:
    n = 0
    for _event, data in out:
        n += 1
        if not ok or data == "[DONE]":
            continue
        chunk = json.loads(data)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for tc in delta.get("tool_calls") or []:
                c = calls.setdefault(tc.get("index", 0), {"name": "", "arguments": ""})
                fn = tc.get("function") or {}
                if fn.get("name"):
                    c["name"] = fn["name"]
                c["arguments"] += fn.get("arguments") or ""
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cassettes", nargs="+")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--verify-footer", action="store_true",
                    help="also check each cassette's footer hash, as tapeloop does")
    args = ap.parse_args()
    totals = {"events": 0, "steps": 0, "bytes": 0}
    for p in args.cassettes:  # warm-up and counts
        r = replay_cassette(p, args.verify_footer)
        totals["events"] += r["events"]
        totals["steps"] += r["steps"]
        totals["bytes"] += os.path.getsize(p)
    start = time.perf_counter()
    for _ in range(args.iterations):
        for p in args.cassettes:
            replay_cassette(p, args.verify_footer)
    elapsed = time.perf_counter() - start
    n = args.iterations
    print(json.dumps({
        "iterations": n,
        "verify_footer": args.verify_footer,
        "cassettes": len(args.cassettes),
        "bytes": totals["bytes"],
        "elapsed_s": elapsed,
        "bytes_per_s": totals["bytes"] * n / elapsed if elapsed else 0.0,
        "sse_events_per_s": totals["events"] * n / elapsed if elapsed else 0.0,
        "steps_per_s": totals["steps"] * n / elapsed if elapsed else 0.0,
        "cassettes_per_s": len(args.cassettes) * n / elapsed if elapsed else 0.0,
        # ru_maxrss is KiB on Linux.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
