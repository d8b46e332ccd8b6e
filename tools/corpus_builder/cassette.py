"""Request bodies in each API's shape, the cassette model, and writing a cassette (chunking,
timings, footer hash)."""

from __future__ import annotations

import base64
import json
import random
import sys
from dataclasses import dataclass, field
from typing import Callable

from corpus_builder.common import RECORDED_AT, RECORDER
from corpus_builder.parse import Call, Parsed, parse_stream
from corpus_builder.synth import rand_id


ENDPOINTS = {
    ("openai-chat", "openai"): "https://api.openai.com/v1/chat/completions",
    ("openai-chat", "groq"): "https://api.groq.com/openai/v1/chat/completions",
    ("openai-chat", "openrouter"): "https://openrouter.ai/api/v1/chat/completions",
    ("openai-chat", "deepseek"): "https://api.deepseek.com/chat/completions",
    ("openai-responses", "openai"): "https://api.openai.com/v1/responses",
    ("anthropic", "anthropic"): "https://api.anthropic.com/v1/messages",
}


def endpoint(api: str, provider: str, model: str) -> str:
    if api == "gemini":
        return f"https://generativelanguage.googleapis.com/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return ENDPOINTS[(api, provider)]


@dataclass
class Tool:
    name: str
    description: str
    schema: dict


@dataclass
class Turn:
    parsed: Parsed
    results: list[tuple[Call, str, bool]]


def request_body(c: "CassetteSpec", history: list[Turn]) -> dict:
    api = c.api
    if api == "openai-chat":
        msgs: list[dict] = []
        if c.system:
            msgs.append({"role": "system", "content": c.system})
        msgs.append({"role": "user", "content": c.prompt})
        for turn in history:
            m = {"role": "assistant", "content": turn.parsed.text or None}
            if turn.parsed.calls:
                m["tool_calls"] = [{"id": k.id, "type": "function", "function": {"name": k.name, "arguments": k.args}}
                                   for k in turn.parsed.calls]
            msgs.append(m)
            for call, output, _err in turn.results:
                msgs.append({"role": "tool", "tool_call_id": call.id, "content": output})
        body = {"model": c.model, "stream": True, "stream_options": {"include_usage": True}, "messages": msgs}
        if c.max_tokens:
            body["max_tokens"] = c.max_tokens
        if c.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.schema}} for t in c.tools]
        return body
    if api == "openai-responses":
        items: list[dict] = [{"role": "user", "content": c.prompt}]
        for turn in history:
            if turn.parsed.text:
                items.append({"role": "assistant", "content": turn.parsed.text})
            for k in turn.parsed.calls:
                items.append({"type": "function_call", "call_id": k.id, "name": k.name, "arguments": k.args})
            for call, output, _err in turn.results:
                items.append({"type": "function_call_output", "call_id": call.id, "output": output})
        body = {"model": c.model, "stream": True}
        if c.system:
            body["instructions"] = c.system
        body["input"] = items
        tools = [{"type": "function", "name": t.name, "description": t.description, "parameters": t.schema}
                 for t in c.tools] + c.provider_tools
        if tools:
            body["tools"] = tools
        return body
    if api == "anthropic":
        msgs = [{"role": "user", "content": c.prompt}]
        for turn in history:
            content: list[dict] = []
            if turn.parsed.reasoning:
                content.append({"type": "thinking", "thinking": turn.parsed.reasoning,
                                "signature": turn.parsed.signature or ""})
            if turn.parsed.text:
                content.append({"type": "text", "text": turn.parsed.text})
            for k in turn.parsed.calls:
                content.append({"type": "tool_use", "id": k.id, "name": k.name, "input": json.loads(k.args)})
            msgs.append({"role": "assistant", "content": content})
            if turn.results:
                msgs.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": output, **({"is_error": True} if err else {})}
                    for call, output, err in turn.results]})
        body = {"model": c.model, "max_tokens": c.max_tokens or 8192, "stream": True}
        if c.system:
            body["system"] = c.system
        body["messages"] = msgs
        if c.thinking:
            body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        if c.tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in c.tools]
        return body
    if api == "gemini":
        contents = [{"role": "user", "parts": [{"text": c.prompt}]}]
        for turn in history:
            parts: list[dict] = []
            if turn.parsed.text:
                parts.append({"text": turn.parsed.text})
            for k in turn.parsed.calls:
                parts.append({"functionCall": {"name": k.name, "args": json.loads(k.args)}})
            contents.append({"role": "model", "parts": parts})
            if turn.results:
                contents.append({"role": "user", "parts": [
                    {"functionResponse": {"name": call.name, "response": {"result": output}}}
                    for call, output, _err in turn.results]})
        body = {"contents": contents}
        if c.system:
            body["systemInstruction"] = {"parts": [{"text": c.system}]}
        if c.tools:
            body["tools"] = [{"functionDeclarations": [
                {"name": t.name, "description": t.description, "parameters": t.schema} for t in c.tools]}]
        if c.thinking:
            body["generationConfig"] = {"thinkingConfig": {"includeThoughts": True}}
        return body
    raise ValueError(api)


# --------------------------------------------------------------------------------------------------
# Cassette model


@dataclass
class Attempt:
    body: str
    status: int = 200
    headers: dict | None = None      # extra response headers (content-type is added when absent)
    outcome: str = "complete"        # end.outcome
    cut_at: int | None = None        # reset: bytes of `body` received before the connection dropped
    origin: str = ""                 # README: where the body came from


@dataclass
class CassetteSpec:
    file: str
    scenarios: list[str]
    api: str
    provider: str
    model: str
    system: str | None
    prompt: str
    tools: list[Tool]
    steps: list[list[Attempt]]
    results: Callable[[int, Call], tuple[str, bool]] | None = None
    synthetic: bool = False
    changes: str = ""
    provider_tools: list[dict] = field(default_factory=list)
    max_tokens: int | None = None
    thinking: bool = False
    mid_utf8: bool = False           # allow chunk cuts inside UTF-8 sequences (those chunks become `b64`)


def response_headers(c: CassetteSpec, att: Attempt, rng: random.Random) -> dict:
    h: dict = {}
    extra = dict(att.headers or {})
    if "content-type" in extra:
        h["content-type"] = extra.pop("content-type")
    elif c.api == "gemini":
        h["content-type"] = "text/event-stream"
    else:
        h["content-type"] = "text/event-stream; charset=utf-8"
    if c.api == "anthropic":
        h["request-id"] = "req_011C" + rand_id(rng, 20)
    elif c.api == "gemini":
        h["server-timing"] = f"gfet4t7; dur={rng.randint(300, 2500)}"
    elif c.provider == "openai":
        h["x-request-id"] = "req_" + rand_id(rng, 32, "0123456789abcdef")
        h["openai-processing-ms"] = str(rng.randint(150, 900))
    else:
        h["x-request-id"] = rand_id(rng, 8, "0123456789abcdef") + "-" + rand_id(rng, 4, "0123456789abcdef")
    h.update(extra)
    return h


def cut_points(raw: bytes, rng: random.Random, allow_mid_utf8: bool) -> list[int]:
    """Irregular read boundaries: mostly at SSE event boundaries (1-3 events per read), some inside an
    event at a line boundary, some mid-line."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    bounds, i = [], 0
    while True:
        j = raw.find(sep, i)
        if j < 0:
            break
        bounds.append(j + len(sep))
        i = j + len(sep)
    if not bounds or bounds[-1] != len(raw):
        bounds.append(len(raw))
    cuts: set[int] = set()
    start = 0
    for b in bounds:
        r = rng.random()
        if r < 0.55:
            cuts.add(b)
        if b - start > 24:
            r2 = rng.random()
            if r2 < 0.18:  # mid-line
                cuts.add(rng.randint(start + 1, b - 2))
            elif r2 < 0.28:  # at a line boundary inside the event (e.g. between `event:` and `data:`)
                nl = raw.find(b"\n", start, b - 2)
                if nl > start:
                    cuts.add(nl + 1)
        start = b
    cuts.add(len(raw))
    if allow_mid_utf8:  # make sure at least one read ends inside a multi-byte character
        lead = next((k for k, byte in enumerate(raw) if byte >= 0xC0), None)
        if lead is not None:
            cuts.add(lead + 1)
    fixed = set()
    for cut in cuts:
        if not allow_mid_utf8:
            while cut < len(raw) and (raw[cut] & 0xC0) == 0x80:
                cut += 1
        fixed.add(cut)
    return sorted(x for x in fixed if 0 < x <= len(raw))


def dump(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def build_cassette(c: CassetteSpec) -> tuple[bytes, list[str]]:
    rng = random.Random("tapeloop-corpus:" + c.file)
    lines: list[str] = []
    sources: list[str] = []
    for step in c.steps:
        for att in step:
            if att.origin and att.origin not in sources and not att.origin.startswith("synthetic"):
                sources.append(att.origin)
    lines.append(dump({"kind": "header", "format": "tapeloop-cassette", "version": 1, "api": c.api,
                       "provider": c.provider, "model": c.model, "scenario": c.scenarios[0],
                       "recorded_at": RECORDED_AT, "recorder": RECORDER, "redacted": [],
                       "synthetic": c.synthetic, "source": sources}))
    history: list[Turn] = []
    iid = 0
    for step_no, attempts in enumerate(c.steps, 1):
        for attempt_no, att in enumerate(attempts, 1):
            iid += 1
            lines.append(dump({"kind": "request", "id": iid, "step": step_no, "attempt": attempt_no,
                               "method": "POST", "url": endpoint(c.api, c.provider, c.model),
                               "headers": {"content-type": "application/json"},
                               "body": request_body(c, history)}))
            head_ms = rng.randint(180, 900) if att.status == 200 else rng.randint(60, 400)
            lines.append(dump({"kind": "response", "id": iid, "status": att.status,
                               "headers": response_headers(c, att, rng), "ms": head_ms}))
            raw = att.body.encode("utf-8")
            if att.cut_at is not None:
                raw = raw[:att.cut_at]
            ms = head_ms
            prev = 0
            points = cut_points(raw, rng, c.mid_utf8) if att.status == 200 else [len(raw)]
            for cut in points:
                ms += rng.randint(1, 4) if prev == 0 else rng.randint(2, 45)
                piece = raw[prev:cut]
                prev = cut
                try:
                    lines.append(dump({"kind": "chunk", "id": iid, "ms": ms, "data": piece.decode("utf-8")}))
                except UnicodeDecodeError:
                    lines.append(dump({"kind": "chunk", "id": iid, "ms": ms, "b64": base64.b64encode(piece).decode()}))
            ms += rng.randint(150, 900) if att.outcome == "reset" else rng.randint(0, 6)
            lines.append(dump({"kind": "end", "id": iid, "ms": ms, "outcome": att.outcome}))
        final = attempts[-1]
        parsed = parse_stream(c.api, final.body) if final.status == 200 and final.outcome == "complete" else Parsed()
        results = []
        for n, call in enumerate(parsed.calls):
            output, is_error = c.results(step_no, call) if c.results else ("", True)
            call_id = call.id or f"{c.api}-step{step_no}-call{n}"
            lines.append(dump({"kind": "tool", "step": step_no, "call_id": call_id, "tool": call.name,
                               "input": json.loads(call.args), "output": output, "error": is_error}))
            results.append((call, output, is_error))
        history.append(Turn(parsed, results))
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    footer = dump({"kind": "footer", "interactions": iid, "lines": len(lines), "blake3": blake3_hex(data)})
    return data + (footer + "\n").encode("utf-8"), sources


def blake3_hex(data: bytes) -> str:
    """The footer hash: hex BLAKE3-256 of every byte before the footer line."""
    try:
        from blake3 import blake3
    except ImportError:
        sys.exit("tools/build_corpus.py: the footer hash needs PyPI's `blake3` package: "
                 "python3 -m pip install blake3 (in a venv if the system Python is externally managed)")
    return blake3(data).hexdigest()
