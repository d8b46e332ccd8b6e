"""Validation: an independent reading of what was written (cassettes) and of the scenarios
that use them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from corpus_builder.common import ROOT
from corpus_builder.parse import Call, parse_stream
from corpus_builder.cassette import blake3_hex


SCENARIO_KEYS = {"name", "description", "api", "model", "cassettes", "system", "prompt", "limits", "policy",
                 "tools", "expect"}
LIMIT_KEYS = {"max_steps", "soft_max_steps", "max_retries", "context", "output"}
POLICY_KEYS = {"doom_loop", "doom_action", "retry", "seed", "compaction"}
TOOL_KEYS = {"name", "description", "schema", "results"}
RESULT_KEYS = {"when", "output", "error"}
EXPECT_KEYS = {"finish", "doom_loop", "retries", "steps", "tool_calls", "cost_usd", "tokens"}
TOKEN_KEYS = {"input", "output", "reasoning", "cache_read", "cache_write"}
FINISHES = {"completed", "max-steps", "doom-loop", "retries-exhausted", "context-overflow", "provider-error",
            "aborted", "divergence", "cassette-exhausted"}
DETECTOR_RE = re.compile(r"^(opencode|seed|consecutive:[2-9]\d*|cycle:[1-9]\d*:[2-9]\d*|fanout:[2-9]\d*|"
                         r"no-progress:[2-9]\d*|text-repeat:[2-9]\d*)$")
DOOM_ACTIONS = {"allow", "deny", "ask-reject", "ask-allow"}
RETRY_PRESETS = {"opencode", "opencode-classic", "seed", "openai-sdk", "anthropic-sdk", "ai-sdk", "none"}


def validate_cassette(path: Path) -> tuple[list[str], dict]:
    """Returns (problems, info) where info has the header and the tool calls made per step."""
    problems: list[str] = []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines[-1] != b"":
        problems.append("does not end with a newline")
    lines = lines[:-1]
    objs = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(b'{"kind":'):
            problems.append(f"line {n}: `kind` is not the first field")
        try:
            objs.append(json.loads(line))
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: not JSON ({e})")
            return problems, {}
    if objs[0].get("kind") != "header" or objs[0].get("version") != 1 or objs[0].get("format") != "tapeloop-cassette":
        problems.append("line 1 is not a v1 header")
    footer = objs[-1]
    if footer.get("kind") != "footer":
        problems.append("last line is not a footer")
    else:
        body = b"".join(line + b"\n" for line in lines[:-1])
        if footer["lines"] != len(lines) - 1:
            problems.append(f"footer lines {footer['lines']} != {len(lines) - 1}")
        if "blake3" in footer:
            if footer["blake3"] != blake3_hex(body):
                problems.append("footer blake3 does not match")
        elif "sha256" in footer:
            if footer["sha256"] != hashlib.sha256(body).hexdigest():
                problems.append("footer sha256 does not match")
        else:
            problems.append("footer has neither blake3 nor sha256")
    requests: dict[int, dict] = {}
    state: dict[int, dict] = {}
    last_step, attempts = 0, {}
    tools_by_step: dict[int, list[dict]] = {}
    for n, o in enumerate(objs[1:-1], 2):
        kind = o["kind"]
        if kind == "request":
            i = o["id"]
            if i in requests or i != len(requests) + 1:
                problems.append(f"line {n}: request id {i} out of sequence")
            if o["step"] < last_step:
                problems.append(f"line {n}: step goes backwards")
            expected_attempt = attempts.get(o["step"], 0) + 1
            if o["attempt"] != expected_attempt:
                problems.append(f"line {n}: attempt {o['attempt']} != {expected_attempt}")
            attempts[o["step"]] = o["attempt"]
            last_step = o["step"]
            requests[i] = o
            state[i] = {"status": None, "bytes": b"", "ms": -1, "end": None}
        elif kind in ("response", "chunk", "end"):
            i = o["id"]
            if i not in requests:
                problems.append(f"line {n}: {kind} for unknown id {i}")
                continue
            st = state[i]
            if st["end"] is not None:
                problems.append(f"line {n}: {kind} after end of id {i}")
            if o["ms"] < st["ms"]:
                problems.append(f"line {n}: ms goes backwards")
            st["ms"] = o["ms"]
            if kind == "response":
                st["status"] = o["status"]
                if "content-type" not in o["headers"]:
                    problems.append(f"line {n}: response without content-type")
            elif kind == "chunk":
                if st["status"] is None:
                    problems.append(f"line {n}: chunk before response")
                st["bytes"] += o["data"].encode("utf-8") if "data" in o else base64.b64decode(o["b64"])
                if "b64" in o:
                    try:
                        base64.b64decode(o["b64"]).decode("utf-8")
                        problems.append(f"line {n}: b64 chunk is valid UTF-8 (should be data)")
                    except UnicodeDecodeError:
                        pass
            else:
                st["end"] = o["outcome"]
                if o["outcome"] not in ("complete", "reset", "timeout", "aborted"):
                    problems.append(f"line {n}: bad outcome")
        elif kind == "tool":
            tools_by_step.setdefault(o["step"], []).append(o)
        else:
            problems.append(f"line {n}: unknown kind {kind}")
    for i, st in state.items():
        if st["end"] is None:
            problems.append(f"id {i}: no end line")
    if footer.get("interactions") != len(requests):
        problems.append("footer interactions != requests")
    api = objs[0].get("api")
    calls_by_step: dict[int, list[Call]] = {}
    for i, req in requests.items():
        st = state[i]
        last_attempt = req["attempt"] == attempts[req["step"]]
        if last_attempt and st["status"] == 200 and st["end"] == "complete":
            calls_by_step[req["step"]] = parse_stream(api, st["bytes"].decode("utf-8")).calls
    for step, calls in calls_by_step.items():
        lines_ = tools_by_step.get(step, [])
        if len(lines_) != len(calls):
            problems.append(f"step {step}: {len(calls)} calls but {len(lines_)} tool lines")
        for call, t in zip(calls, lines_):
            if t["tool"] != call.name or t["input"] != json.loads(call.args) or (call.id and t["call_id"] != call.id):
                problems.append(f"step {step}: tool line does not match call {call.name}")
    return problems, {"header": objs[0], "calls": calls_by_step}


def first_request_texts(path: Path) -> tuple[str | None, str | None]:
    """(system, prompt) as sent in a cassette's first request body."""
    with path.open(encoding="utf-8") as f:
        f.readline()
        req = json.loads(f.readline())
    api = json.loads(path.open(encoding="utf-8").readline())["api"]
    b = req["body"]
    if api == "openai-chat":
        sysm = next((m["content"] for m in b["messages"] if m["role"] == "system"), None)
        return sysm, next(m["content"] for m in b["messages"] if m["role"] == "user")
    if api == "openai-responses":
        return b.get("instructions"), b["input"][0]["content"]
    if api == "anthropic":
        return b.get("system"), b["messages"][0]["content"]
    sysm = b.get("systemInstruction", {}).get("parts", [{}])[0].get("text")
    return sysm, b["contents"][0]["parts"][0]["text"]


def validate_scenarios(scen_dir: Path) -> list[str]:
    import tomllib
    problems: list[str] = []
    for path in sorted(scen_dir.glob("**/*.toml")):
        where = path.relative_to(ROOT)
        try:
            sc = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            problems.append(f"{where}: {e}")
            continue

        def keys(obj, allowed, what):
            for k in obj:
                if k not in allowed:
                    problems.append(f"{where}: unknown key `{k}` in {what}")
        keys(sc, SCENARIO_KEYS, "the scenario")
        keys(sc.get("limits", {}), LIMIT_KEYS, "[limits]")
        pol = sc.get("policy", {})
        keys(pol, POLICY_KEYS, "[policy]")
        dl = pol.get("doom_loop", [])
        for d in [dl] if isinstance(dl, str) else dl:
            if not DETECTOR_RE.match(d):
                problems.append(f"{where}: bad detector {d}")
        if pol.get("doom_action", "ask-reject") not in DOOM_ACTIONS:
            problems.append(f"{where}: bad doom_action")
        if pol.get("retry", "opencode") not in RETRY_PRESETS:
            problems.append(f"{where}: bad retry preset")
        declared = set()
        for t in sc.get("tools", []):
            keys(t, TOOL_KEYS, "[[tools]]")
            declared.add(t["name"])
            for r in t.get("results", []):
                keys(r, RESULT_KEYS, "[[tools.results]]")
        exp = sc.get("expect", {})
        keys(exp, EXPECT_KEYS, "[expect]")
        keys(exp.get("tokens", {}), TOKEN_KEYS, "[expect.tokens]")
        if exp.get("finish") not in FINISHES:
            problems.append(f"{where}: bad or missing expect.finish")
        if sc.get("name") != path.stem:
            problems.append(f"{where}: name != file stem")
        for rel in sc.get("cassettes", []):
            cpath = (path.parent / rel).resolve()
            if not cpath.is_file():
                problems.append(f"{where}: cassette {rel} does not exist")
                continue
            cprob, info = validate_cassette(cpath)
            problems += [f"{where}: {cpath.name}: {p}" for p in cprob]
            if not info:
                continue
            hdr = info["header"]
            if len(sc["cassettes"]) == 1 and (hdr["api"] != sc.get("api") or hdr["model"] != sc.get("model")):
                problems.append(f"{where}: api/model differ from {cpath.name}'s header")
            system, prompt = first_request_texts(cpath)
            if (system, prompt) != (sc.get("system"), sc.get("prompt")):
                problems.append(f"{where}: system/prompt differ from {cpath.name}'s first request")
            called = {c.name for calls in info["calls"].values() for c in calls}
            if called - declared:
                problems.append(f"{where}: {cpath.name} calls undeclared tools {sorted(called - declared)}")
    return problems
