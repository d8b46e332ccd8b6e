#!/usr/bin/env python3
"""Regenerate the bundled tapeloop corpus: every cassette in `recordings/` and `recordings/README.md`.

    python3 tools/build_corpus.py                 # writes recordings/*.jsonl and recordings/README.md
    python3 tools/build_corpus.py --check         # rebuilds in memory, fails if a file on disk differs
    python3 tools/build_corpus.py --validate      # checks recordings/*.jsonl and scenarios/*.toml only
    python3 tools/build_corpus.py --streams DIR   # where the real provider streams live

Inputs:
  * real provider streams from `tests/fixtures/provider-streams/` (vendored; see SOURCES.md there),
    used byte for byte: whole `.sse` files, plus two bodies decoded from the kept vcrpy cassettes (the
    decoder is checked against an interaction that also exists as an `.sse` file, so a decoding slip fails
    the build instead of shipping altered bytes);
  * small synthetic streams built below, each in its provider's exact wire shape (copied from the real
    files), for situations no real recording covers: identical parallel calls, cycles, polling, 429/529/5xx,
    mid-stream overload, connection resets.

Output: cassette format v1 (FORMATS.md). Everything is deterministic: chunk boundaries, timings and
synthetic ids come from `random.Random(<cassette file name>)`, so two runs write the same bytes.
Python 3.11+, standard library plus PyPI's `blake3` package for the footer hash (FORMATS.md, "Footer
hash"): `python3 -m pip install blake3` (in a venv if the system Python is externally managed).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import re
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STREAMS = ROOT / "tests" / "fixtures" / "provider-streams"
RECORDED_AT = "2026-11-20T12:00:00Z"
RECORDER = "tapeloop-corpus-builder"

# --------------------------------------------------------------------------------------------------
# Sources: provenance of the real files (from provider-streams/SOURCES.md), for the README.

REPOS = {
    "pydantic-ai": ("https://github.com/pydantic/pydantic-ai", "4fda38988f29", "MIT"),
    "mirascope": ("https://github.com/Mirascope/mirascope", "41d433578653", "MIT"),
    "llm-anthropic": ("https://github.com/simonw/llm-anthropic", "3ae428f3b514", "Apache-2.0"),
    "vercel": ("https://github.com/vercel/ai", "ed857f50f112", "Apache-2.0"),
}

# file (relative to provider-streams/) -> (repo key, upstream path and interaction)
PROVENANCE = {
    "anthropic/llm-anthropic__tool_chain_thinking.turn1.sse": (
        "llm-anthropic", "tests/cassettes/test_anthropic/test_fixed_version_tool_chain_with_thinking_display_regression.yaml (#0)"),
    "anthropic/llm-anthropic__tool_chain_thinking.turn2.sse": (
        "llm-anthropic", "tests/cassettes/test_anthropic/test_fixed_version_tool_chain_with_thinking_display_regression.yaml (#1)"),
    "anthropic/mirascope__parallel_tool_use.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml (#0)"),
    "anthropic/mirascope__parallel_tool_use.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/anthropic_claude_sonnet_4_0/stream.yaml (#1)"),
    "anthropic/pydantic-ai__cache_read_compaction.sse": (
        "pydantic-ai", "tests/models/cassettes/test_anthropic/test_anthropic_compaction_usage_with_cache_streaming.yaml (#0)"),
    "openai-chat/mirascope__parallel_tool_calls.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_completions/stream.yaml (#0)"),
    "openai-chat/mirascope__parallel_tool_calls.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_completions/stream.yaml (#1)"),
    "openai-chat/mirascope__finish_length.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_max_tokens/openai_gpt_4o_completions/stream.yaml (#0)"),
    "openai-chat/pydantic-ai__parallel_tool_calls_empty_args.sse": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#0)"),
    "cassettes/pydantic-ai/tests/cassettes/test_temporal/test_complex_agent_run.yaml#1": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#1), decoded from the kept cassette"),
    "openai-chat/pydantic-ai__tool_args_many_chunks.sse": (
        "pydantic-ai", "tests/cassettes/test_temporal/test_complex_agent_run.yaml (#2)"),
    "openai-responses/pydantic-ai__function_call.turn1.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_stream.yaml (#0)"),
    "openai-responses/pydantic-ai__function_call.turn2.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_stream.yaml (#1)"),
    "openai-responses/mirascope__parallel_function_calls.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml (#0)"),
    "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml#1": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml (#1), decoded from the kept cassette"),
    "openai-responses/pydantic-ai__web_search_cached_tokens.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openai_responses/test_openai_responses_model_web_search_tool_stream.yaml (#0)"),
    "gemini/mirascope__parallel_function_calls.turn1.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/google_gemini_2_5_flash/stream.yaml (#0)"),
    "gemini/mirascope__parallel_function_calls.turn2.sse": (
        "mirascope", "python/tests/e2e/output/cassettes/test_call_with_tools/google_gemini_2_5_flash/stream.yaml (#1)"),
    "gemini/pydantic-ai__thinking_parts.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_model_thinking_part_iter.yaml (#0)"),
    "gemini/pydantic-ai__tool_call_thought_signature.turn1.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_streaming_tool_call_thought_signature.yaml (#0)"),
    "gemini/pydantic-ai__tool_call_thought_signature.turn2.sse": (
        "pydantic-ai", "tests/models/cassettes/test_google/test_google_streaming_tool_call_thought_signature.yaml (#1)"),
    "http-errors/google__429_retry_info.json": (
        "vercel", "packages/google/src/__fixtures__/google-429-retry-info.json"),
    "openai-compatible/deepseek__reasoning_content.sse": (
        "pydantic-ai", "tests/models/cassettes/test_deepseek/test_deepseek_model_thinking_stream.yaml (#0)"),
    "openai-compatible/groq__error_event_midstream.sse": (
        "pydantic-ai", "tests/models/cassettes/test_groq/test_tool_use_failed_error_streaming.yaml (#0)"),
    "openai-compatible/openrouter__error_chunk_midstream.sse": (
        "pydantic-ai", "tests/models/cassettes/test_openrouter/test_openrouter_stream_error.yaml (#0)"),
}

# --------------------------------------------------------------------------------------------------
# Reading real streams


class Streams:
    def __init__(self, root: Path):
        self.root = root
        self._yaml_checked: set[str] = set()

    def real(self, rel: str) -> str:
        return (self.root / rel).read_bytes().decode("utf-8")

    def from_kept_cassette(self, rel_yaml: str, index: int, check_index: int, check_file: str) -> str:
        """Body of interaction `index` of a kept vcrpy cassette. The decoder is verified first: interaction
        `check_index` must decode to exactly the bytes of `check_file`."""
        text = (self.root / rel_yaml).read_text(encoding="utf-8")
        bodies = vcr_bodies(text)
        if rel_yaml not in self._yaml_checked:
            if bodies[check_index] != self.real(check_file):
                raise SystemExit(f"vcrpy decoder check failed: {rel_yaml} #{check_index} != {check_file}")
            self._yaml_checked.add(rel_yaml)
        return bodies[index]


def vcr_bodies(text: str) -> list[str]:
    """The `body: string:` scalars of a vcrpy YAML cassette, in order. Handles the two forms the kept
    cassettes use for SSE bodies: single-quoted flow scalars and `|+` / `|` block literals."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m_block = re.match(r"^\s*string: \|([+-]?)$", line)
        m_quote = re.match(r"^\s*string: '(.*)$", line)
        if m_block:
            i += 1
            indent = None
            buf: list[str] = []
            while i < len(lines):
                cur = lines[i]
                if cur.strip() == "":
                    buf.append("")
                    i += 1
                    continue
                width = len(cur) - len(cur.lstrip(" "))
                if indent is None:
                    indent = width
                if width < indent:
                    break
                buf.append(cur[indent:])
                i += 1
            body = "\n".join(buf) + "\n"
            if m_block.group(1) != "+":
                body = body.rstrip("\n") + "\n"
            out.append(body)
            continue
        if m_quote:
            buf = [m_quote.group(1)]
            while "'" not in buf[-1].replace("''", ""):
                i += 1
                buf.append(lines[i])
            last = buf[-1]
            j = 0
            while j < len(last):
                if last[j] == "'":
                    if j + 1 < len(last) and last[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            buf[-1] = last[:j]
            if len(buf) == 1:
                body = buf[0]
            else:  # YAML line folding: a break is a space, each empty line a newline
                segs = [buf[0].rstrip(" \t")] + [s.strip(" \t") for s in buf[1:-1]] + [buf[-1].lstrip(" \t")]
                body = segs[0]
                empties = 0
                for k, seg in enumerate(segs[1:], 1):
                    if seg == "" and k != len(segs) - 1:
                        empties += 1
                        continue
                    body += ("\n" * empties if empties else " ") + seg
                    empties = 0
            out.append(body.replace("''", "'"))
        i += 1
    return out


# --------------------------------------------------------------------------------------------------
# Parsing a stream back into what the assistant said (for the next request body and the tool lines)


@dataclass
class Call:
    id: str | None
    name: str
    args: str  # the argument JSON text exactly as streamed (key order preserved)


@dataclass
class Parsed:
    text: str = ""
    reasoning: str = ""
    signature: str | None = None
    calls: list[Call] = field(default_factory=list)


def sse_events(body: str) -> list[tuple[str | None, str]]:
    out = []
    for block in re.split(r"\r?\n\r?\n", body):
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


def parse_stream(api: str, body: str) -> Parsed:
    p = Parsed()
    by_index: dict[int, Call] = {}
    for _event, data in sse_events(body):
        if data == "[DONE]":
            continue
        try:
            j = json.loads(data)
        except json.JSONDecodeError:
            continue
        if api == "openai-chat":
            for c in j.get("choices") or []:
                d = c.get("delta") or {}
                if isinstance(d.get("content"), str):
                    p.text += d["content"]
                for key in ("reasoning_content", "reasoning"):
                    if isinstance(d.get(key), str):
                        p.reasoning += d[key]
                for tc in d.get("tool_calls") or []:
                    call = by_index.setdefault(tc["index"], Call(None, "", ""))
                    if tc.get("id"):
                        call.id = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name"):
                        call.name = fn["name"]
                    call.args += fn.get("arguments") or ""
        elif api == "anthropic":
            t = j.get("type")
            if t == "content_block_start":
                cb = j["content_block"]
                if cb["type"] == "tool_use":
                    by_index[j["index"]] = Call(cb["id"], cb["name"], "")
            elif t == "content_block_delta":
                d = j["delta"]
                if d["type"] == "text_delta":
                    p.text += d["text"]
                elif d["type"] == "thinking_delta":
                    p.reasoning += d["thinking"]
                elif d["type"] == "signature_delta":
                    p.signature = d["signature"]
                elif d["type"] == "input_json_delta" and j["index"] in by_index:
                    by_index[j["index"]].args += d["partial_json"]
        elif api == "openai-responses":
            t = j.get("type")
            if t == "response.output_item.added" and j["item"]["type"] == "function_call":
                by_index[j["output_index"]] = Call(j["item"]["call_id"], j["item"]["name"], "")
            elif t == "response.function_call_arguments.delta":
                by_index[j["output_index"]].args += j["delta"]
            elif t == "response.output_text.delta":
                p.text += j["delta"]
        elif api == "gemini":
            for cand in j.get("candidates") or []:
                for part in (cand.get("content") or {}).get("parts") or []:
                    if "functionCall" in part:
                        fc = part["functionCall"]
                        by_index[len(by_index)] = Call(fc.get("id"), fc["name"], gemini_json(fc.get("args", {})))
                    elif "text" in part:
                        if part.get("thought"):
                            p.reasoning += part["text"]
                        else:
                            p.text += part["text"]
    p.calls = [by_index[k] for k in sorted(by_index)]
    for c in p.calls:
        if c.args == "":
            c.args = "{}"
    return p


# --------------------------------------------------------------------------------------------------
# Synthetic streams, in each provider's exact wire shape


def rand_id(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def gemini_json(obj) -> str:
    # Gemini writes `": "` after keys and no space after commas.
    return json.dumps(obj, separators=(",", ": "), ensure_ascii=False)


def split_text(rng: random.Random, text: str, lo: int = 2, hi: int = 9) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randint(lo, hi)
        out.append(text[i:i + n])
        i += n
    return out or [""]


def words(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+$", text) or [text]


def openai_chat_stream(rng: random.Random, model: str, *, text: str | None = None,
                       calls: list[tuple[str, str, str]] = (), finish: str | None = None,
                       usage: tuple[int, int] = (100, 20), reasoning_tokens: int = 0) -> str:
    """OpenAI Chat Completions SSE, shaped like openai-chat/mirascope__parallel_tool_calls.turn1.sse:
    role chunk, content deltas, tool-call fragments keyed by index, finish chunk, usage-only chunk, [DONE].
    calls: (call_id, name, arguments JSON text)."""
    cid = "chatcmpl-" + rand_id(rng, 29)
    created = 1763640000 + rng.randint(0, 86400)
    fp = "fp_" + rand_id(rng, 10, "0123456789abcdef")

    def chunk(choices, usage_obj=None):
        return "data: " + compact({
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": fp, "usage": usage_obj, "choices": choices,
            "obfuscation": rand_id(rng, rng.randint(0, 14)),
        }) + "\n\n"

    def choice(delta, finish_reason=None):
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    out = [chunk(choice({"role": "assistant", "content": "" if text else None, "refusal": None}))]
    if text:
        for piece in words(text):
            out.append(chunk(choice({"content": piece})))
    for idx, (call_id, name, args) in enumerate(calls):
        out.append(chunk(choice({"tool_calls": [{"index": idx, "id": call_id, "type": "function",
                                                 "function": {"name": name, "arguments": ""}}]})))
        for frag in split_text(rng, args, 3, 8):
            out.append(chunk(choice({"tool_calls": [{"index": idx, "function": {"arguments": frag}}]})))
    out.append(chunk(choice({}, finish or ("tool_calls" if calls else "stop"))))
    prompt, completion = usage
    out.append(chunk([], {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}))
    out.append("data: [DONE]\n\n")
    return "".join(out)


def anthropic_stream(rng: random.Random, model: str, *, blocks: list[tuple], stop_reason: str | None,
                     usage: tuple[int, int], error: dict | None = None, error_after_deltas: int = 0) -> str:
    """Anthropic Messages SSE, shaped like anthropic/mirascope__parallel_tool_use.turn1.sse (including the
    space padding inside `data:` JSON and the `{"type": "ping"}` spelling).
    blocks: ("text", text) | ("tool_use", id, name, arguments JSON text).
    With `error`, the stream stops after `error_after_deltas` text deltas with `event: error` and no
    message_delta / message_stop (the shape of an in-stream overloaded_error)."""
    msg_id = "msg_01" + rand_id(rng, 22)
    input_tokens, output_tokens = usage

    def ev(obj, pad=True):
        data = compact(obj)
        if pad:
            data = data[:-1] + " " * rng.randint(0, 16) + "}"
        return f"event: {obj['type']}\ndata: {data}\n\n"

    out = [ev({"type": "message_start", "message": {
        "model": model, "id": msg_id, "type": "message", "role": "assistant", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                  "output_tokens": 1, "service_tier": "standard"}}})]
    deltas = 0
    for index, block in enumerate(blocks):
        if block[0] == "text":
            out.append(ev({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))
            if index == 0:
                out.append('event: ping\ndata: {"type": "ping"}\n\n')
            for piece in words(block[1]):
                out.append(ev({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": piece}}))
                deltas += 1
                if error is not None and deltas == error_after_deltas:
                    out.append("event: error\ndata: " + compact(error) + "\n\n")
                    return "".join(out)
            out.append(ev({"type": "content_block_stop", "index": index}))
        else:
            _, call_id, name, args = block
            out.append(ev({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": call_id, "name": name, "input": {}}}))
            out.append(ev({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": ""}}))
            if args != "{}":
                for frag in split_text(rng, args, 4, 14):
                    out.append(ev({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "input_json_delta", "partial_json": frag}}))
            out.append(ev({"type": "content_block_stop", "index": index}))
    out.append(ev({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                   "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": output_tokens}}))
    out.append(ev({"type": "message_stop"}))
    return "".join(out)


def gemini_stream(rng: random.Random, model: str, *, text: str | None, calls: list[tuple[str, dict]],
                  usage: tuple[int, int]) -> str:
    """Gemini streamGenerateContent?alt=sse, shaped like gemini/mirascope__parallel_function_calls.turn1.sse:
    CRLF framing, `": "` separators, cumulative usageMetadata on every chunk, function calls whole in the
    last chunk with finishReason STOP and finishMessage."""
    response_id = rand_id(rng, 23, string.ascii_letters + string.digits + "-_")
    prompt, total_out = usage
    pieces = words(text) if text else []
    chunks: list[list[dict]] = [[{"text": p}] for p in pieces]
    if calls:
        call_parts = [{"functionCall": {"name": n, "args": a}} for n, a in calls]
        call_parts[0]["thoughtSignature"] = base64.b64encode(rng.randbytes(96)).decode()
        chunks.append(call_parts)
    out = []
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1
        produced = max(1, round(total_out * (i + 1) / len(chunks)))
        cand = {"content": {"parts": parts, "role": "model"}}
        if last:
            cand["finishReason"] = "STOP"
            cand["index"] = 0
            if calls:
                cand["finishMessage"] = "Model generated function call(s)."
        obj = {"candidates": [cand], "usageMetadata": {
            "promptTokenCount": prompt, "candidatesTokenCount": produced, "totalTokenCount": prompt + produced,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]},
            "modelVersion": model, "responseId": response_id}
        out.append("data: " + gemini_json(obj) + "\r\n\r\n")
    return "".join(out)


def pretty_error(obj) -> str:
    """OpenAI-style error body: 4-space indented JSON and a trailing newline."""
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------
# Request bodies (plausible, in each API's shape)


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


# --------------------------------------------------------------------------------------------------
# The corpus

CODING_SYSTEM = "You are a coding agent working in a Rust repository. Use the tools to inspect and change files."

READ = Tool("read", "Read a file from the workspace", {
    "type": "object", "properties": {"path": {"type": "string"}, "offset": {"type": "integer"},
                                     "limit": {"type": "integer"}}, "required": ["path"]})
GREP = Tool("grep", "Search the workspace for a regular expression", {
    "type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]})
SECRET = Tool("secret_retrieval_tool", "A tool that requires a password to retrieve a secret.", {
    "type": "object", "properties": {"password": {"title": "Password", "type": "string"}},
    "required": ["password"], "additionalProperties": False})
SECRETS = {"mellon": "Welcome to Moria!", "radiance": "Life before Death"}
MIRASCOPE_SYSTEM = "Use parallel tool calling."
MIRASCOPE_PROMPT = "Please retrieve the secrets associated with each of these passwords: mellon,radiance"


def by_tool(table: dict) -> Callable[[int, Call], tuple[str, bool]]:
    """Results keyed by tool name; a value may be a function of the parsed arguments."""
    def answer(_step: int, call: Call):
        v = table[call.name]
        if callable(v):
            v = v(json.loads(call.args))
        return (v, False)
    return answer


def by_step(table: dict) -> Callable[[int, Call], tuple[str, bool]]:
    def answer(step: int, _call: Call):
        return (table[step], False)
    return answer


def secret(args):
    return SECRETS[args["password"]]


def corpus(s: Streams) -> list[CassetteSpec]:
    out: list[CassetteSpec] = []

    def real(rel: str) -> Attempt:
        return Attempt(s.real(rel), origin=rel)

    # ---- doom-parallel-identical: three identical calls in ONE response (opencode's only catch) --------
    rng = random.Random("synthetic:doom-parallel-identical")
    model = "claude-sonnet-4-20250514"
    lib_rs = "mod parser;\nuse crate::lexer::Token;\n\npub fn parse(src: &str) -> Vec<Token> {\n    parser::parse(src)\n}\n"
    ids = ["toolu_01" + rand_id(rng, 22) for _ in range(3)]
    step1 = anthropic_stream(rng, model, blocks=[("text", "I'll read src/lib.rs to check the imports.")] +
                             [("tool_use", i, "read", '{"path": "src/lib.rs"}') for i in ids],
                             stop_reason="tool_use", usage=(1480, 142))
    step2 = anthropic_stream(rng, model, blocks=[("text", "The build fails because src/lib.rs imports "
                             "`crate::lexer::Token` but the crate never declares `mod lexer;`. Add `mod lexer;` "
                             "next to `mod parser;`.")], stop_reason="end_turn", usage=(1962, 58))
    out.append(CassetteSpec(
        "doom-parallel-identical.anthropic.jsonl", ["doom-parallel-identical"], "anthropic", "anthropic", model,
        CODING_SYSTEM, "Why does `cargo build` fail with error E0432 in src/lib.rs?", [READ, GREP],
        [[Attempt(step1, origin="synthetic")], [Attempt(step2, origin="synthetic")]],
        by_tool({"read": lib_rs}), synthetic=True,
        changes="synthetic (no real stream holds three identical parallel calls): step 1 = text + three identical "
                "`read` tool_use blocks; step 2 = final text, so `doom_action = \"allow\"` can finish"))

    # ---- repeated real tool turn across steps (opencode misses; seed/consecutive fire; max-steps) ------
    t1, t2 = "anthropic/llm-anthropic__tool_chain_thinking.turn1.sse", "anthropic/llm-anthropic__tool_chain_thinking.turn2.sse"
    out.append(CassetteSpec(
        "doom-sequential-repeat.anthropic.jsonl", ["doom-sequential-repeat", "max-steps"], "anthropic", "anthropic",
        "claude-haiku-4-5-20251001", None,
        "Use the fixed_version tool to find out the version, then tell me the version and make a short joke about "
        "it. Think about it first.",
        [Tool("fixed_version", "Return the fixed version number", {"type": "object", "properties": {}})],
        [[real(t1)] for _ in range(6)] + [[real(t2)]],
        by_tool({"fixed_version": "0.32a0"}), thinking=True,
        changes="re-sequenced: the real thinking + tool_use turn 1 repeated for steps 1-6 (same tool_use id "
                "every time), then the real final-text turn 2 as step 7; chunked; request bodies rebuilt"))

    # ---- A,B,A,B,A,B cycle ---------------------------------------------------------------------------
    rng = random.Random("synthetic:doom-cycle")
    model = "gpt-4o-mini"
    steps = []
    for n in range(6):
        call = ("read", '{"path":"src/config.rs"}') if n % 2 == 0 else ("grep", '{"pattern":"fn parse_config"}')
        steps.append([Attempt(openai_chat_stream(rng, model, calls=[("call_" + rand_id(rng, 24), *call)],
                                                 usage=(612 + 95 * n, 18)), origin="synthetic")])
    steps.append([Attempt(openai_chat_stream(rng, model, text="`parse_config` is defined in src/config.rs:12 and "
                                             "panics on an empty file because it unwraps the first line. Return "
                                             "`Config::default()` when the input is empty.", usage=(1240, 41)),
                          origin="synthetic")])
    config_rs = "use std::collections::HashMap;\n\npub struct Config { pub values: HashMap<String, String> }\n\n" \
                "pub fn parse_config(text: &str) -> Config {\n    let first = text.lines().next().unwrap();\n" \
                "    todo!(\"{first}\")\n}\n"
    out.append(CassetteSpec(
        "doom-cycle.openai-chat.jsonl", ["doom-cycle"], "openai-chat", "openai", model, CODING_SYSTEM,
        "Find where parse_config is defined and fix the panic on an empty config file.", [READ, GREP], steps,
        by_tool({"read": config_rs, "grep": "src/config.rs:5:pub fn parse_config(text: &str) -> Config {"}),
        synthetic=True,
        changes="synthetic (needs different calls per step): read/grep alternating for 6 steps with fresh call "
                "ids, then a final text step"))

    # ---- key-reordered identical arguments in one response -------------------------------------------
    rng = random.Random("synthetic:doom-key-reorder")
    main_rs = "fn main() {\n    let args: Vec<String> = std::env::args().collect();\n    tapeloop::cli::run(args);\n}\n"
    calls = [("call_" + rand_id(rng, 24), "read", a) for a in
             ('{"path":"src/main.rs","limit":40}', '{"limit":40,"path":"src/main.rs"}', '{"path":"src/main.rs","limit":40}')]
    out.append(CassetteSpec(
        "doom-key-reorder.openai-chat.jsonl", ["doom-key-reorder"], "openai-chat", "openai", model, CODING_SYSTEM,
        "Show me the first 40 lines of src/main.rs.", [READ],
        [[Attempt(openai_chat_stream(rng, model, calls=calls, usage=(402, 71)), origin="synthetic")],
         [Attempt(openai_chat_stream(rng, model, text="src/main.rs has only 4 lines: `main` collects the arguments "
                                     "and calls `tapeloop::cli::run`.", usage=(598, 24)), origin="synthetic")]],
        by_tool({"read": main_rs}), synthetic=True,
        changes="synthetic (no real stream has reordered keys): one response with three `read` calls whose "
                "arguments differ only in key order, then a final text step"))

    # ---- repeated identical parallel fan-out (real) ---------------------------------------------------
    f1, f2 = "openai-chat/mirascope__parallel_tool_calls.turn1.sse", "openai-chat/mirascope__parallel_tool_calls.turn2.sse"
    out.append(CassetteSpec(
        "doom-fanout.openai-chat.jsonl", ["doom-fanout"], "openai-chat", "openai", "gpt-4o",
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET], [[real(f1)] for _ in range(4)] + [[real(f2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="re-sequenced: the real two-call parallel turn 1 repeated for steps 1-4 (same call ids every "
                "time), then the real final-text turn 2 as step 5; chunked; request bodies rebuilt"))

    # ---- no progress: same call, same result (real Responses) -----------------------------------------
    r1, r2 = "openai-responses/pydantic-ai__function_call.turn1.sse", "openai-responses/pydantic-ai__function_call.turn2.sse"
    capital = Tool("get_capital", "Get the capital of a country", {
        "type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"],
        "additionalProperties": False})
    out.append(CassetteSpec(
        "doom-no-progress.openai-responses.jsonl", ["doom-no-progress"], "openai-responses", "openai",
        "gpt-4o", None, "What is the capital of France?", [capital],
        [[real(r1)] for _ in range(4)] + [[real(r2)]], by_tool({"get_capital": "Paris"}),
        changes="re-sequenced: the real function_call turn 1 repeated for steps 1-4 (same call_id every time, "
                "same tool output `Paris`), then the real text turn 2 as step 5; chunked"))

    # ---- text repeat (Gemini) -------------------------------------------------------------------------
    rng = random.Random("synthetic:text-repeat")
    model = "gemini-2.5-flash"
    search = Tool("search_logs", "Search the service logs", {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
    queries = ["7f3a", "request_id=7f3a", "7f3a status=500", "7f3a error"]
    steps = [[Attempt(gemini_stream(rng, model, text="Let me search the logs for the failing request.",
                                    calls=[("search_logs", {"query": q})], usage=(310 + 40 * n, 24)),
                      origin="synthetic")] for n, q in enumerate(queries)]
    steps.append([Attempt(gemini_stream(rng, model, text="I could not find request 7f3a in the logs; it may have "
                                        "been served by another region.", calls=[], usage=(480, 23)),
                          origin="synthetic")])
    out.append(CassetteSpec(
        "text-repeat.gemini.jsonl", ["text-repeat"], "gemini", "google", model, "You are an on-call assistant.",
        "Find out why request 7f3a returned HTTP 500.", [search], steps,
        by_tool({"search_logs": "no matches"}), synthetic=True,
        changes="synthetic (needs the same text with different calls): 4 steps each saying the same sentence "
                "and calling search_logs with a different query, then a final text step"))

    # ---- polling a job whose status changes ------------------------------------------------------------
    rng = random.Random("synthetic:polling")
    model = "gpt-4o-mini"
    check = Tool("check_job", "Get the status of a deployment job", {
        "type": "object", "properties": {"job_id": {"type": "string"}}, "required": ["job_id"]})
    statuses = {1: '{"status":"running","progress":12}', 2: '{"status":"running","progress":48}',
                3: '{"status":"running","progress":91}',
                4: '{"status":"succeeded","progress":100,"url":"https://staging.example.com"}'}
    steps = [[Attempt(openai_chat_stream(rng, model, calls=[("call_" + rand_id(rng, 24), "check_job",
                                                            '{"job_id":"job-7f3a"}')], usage=(380 + 30 * n, 17)),
                      origin="synthetic")] for n in range(4)]
    steps.append([Attempt(openai_chat_stream(rng, model, text="Job job-7f3a succeeded: build 512 is live at "
                                             "https://staging.example.com.", usage=(520, 22)), origin="synthetic")])
    out.append(CassetteSpec(
        "polling-job-status.openai-chat.jsonl", ["polling-job-status", "polling-job-status-consecutive"],
        "openai-chat", "openai", model, "You are a deployment assistant.",
        "Job job-7f3a is deploying build 512 to staging. Tell me when it is live.", [check], steps,
        by_step(statuses), synthetic=True,
        changes="synthetic (needs a changing tool result per step): check_job with the same arguments 4 times, "
                "fresh call ids, tool lines carrying progress 12/48/91/succeeded, then a final text step"))

    # ---- re-running tests after a fix (productive repetition) -----------------------------------------
    rng = random.Random("synthetic:rerun-tests")
    model = "claude-sonnet-4-20250514"
    run_tests = Tool("run_tests", "Run the test suite", {"type": "object", "properties": {}})
    edit = Tool("edit", "Replace text in a file", {
        "type": "object", "properties": {"path": {"type": "string"}, "old": {"type": "string"},
                                         "new": {"type": "string"}}, "required": ["path", "old", "new"]})
    plan = [
        ("I'll run the test suite first.", "run_tests", "{}"),
        ("The empty-input case panics on `unwrap`. Fixing it.", "edit",
         '{"path": "src/config.rs", "old": "text.lines().next().unwrap()", "new": "match text.lines().next() { Some(l) => l, None => return Config::default() }"}'),
        ("Re-running the tests.", "run_tests", "{}"),
        ("One failure left: the default is missing a key.", "edit",
         '{"path": "src/config.rs", "old": "values: HashMap::new()", "new": "values: HashMap::from([(\\"mode\\".into(), \\"dev\\".into())])"}'),
        ("Running the tests again to confirm.", "run_tests", "{}"),
    ]
    steps = []
    for n, (text, tool, args) in enumerate(plan):
        steps.append([Attempt(anthropic_stream(rng, model, blocks=[("text", text), ("tool_use", "toolu_01" + rand_id(rng, 22), tool, args)],
                                               stop_reason="tool_use", usage=(2100 + 260 * n, 60 + 10 * n)),
                              origin="synthetic")])
    steps.append([Attempt(anthropic_stream(rng, model, blocks=[("text", "All 42 tests pass. `parse_config` now returns "
                                           "the default config for an empty file.")], stop_reason="end_turn",
                                           usage=(3500, 31)), origin="synthetic")])
    test_results = {1: "running 42 tests\ntest config::tests::empty_file ... FAILED\ntest config::tests::defaults ... FAILED\n"
                       "test result: FAILED. 40 passed; 2 failed",
                    2: "edited src/config.rs (1 replacement)",
                    3: "running 42 tests\ntest config::tests::defaults ... FAILED\ntest result: FAILED. 41 passed; 1 failed",
                    4: "edited src/config.rs (1 replacement)",
                    5: "running 42 tests\ntest result: ok. 42 passed; 0 failed"}
    out.append(CassetteSpec(
        "rerun-tests-after-fix.anthropic.jsonl", ["rerun-tests-after-fix"], "anthropic", "anthropic", model,
        CODING_SYSTEM, "The test suite fails. Fix it.", [run_tests, edit], steps, by_step(test_results),
        synthetic=True,
        changes="synthetic (needs a test/fix/test sequence): run_tests, edit, run_tests, edit, run_tests with "
                "changing results, then a final text step"))

    # ---- 429 with retry-after, then success (real success bodies) -------------------------------------
    rate_body = pretty_error({"error": {
        "message": "Rate limit reached for gpt-4o in organization org-[REDACTED] on requests per min (RPM): "
                   "Limit 500, Used 500, Requested 1. Please try again in 6.2s. Visit "
                   "https://platform.openai.com/account/rate-limits to learn more.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}})
    out.append(CassetteSpec(
        "retry-429.openai-chat.jsonl", ["retry-429-retry-after"], "openai-chat", "openai", "gpt-4o",
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET],
        [[Attempt(rate_body, status=429, origin="synthetic 429", headers={
            "content-type": "application/json; charset=utf-8", "retry-after": "7",
            "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "6.2s"}), real(f1)], [real(f2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="step 1 attempt 1 is a synthetic HTTP 429 (no real 429 with headers exists, notes §8) with "
                "`retry-after: 7`; attempt 2 and step 2 are the real mirascope turns; chunked"))

    # ---- Anthropic 529, then an in-stream overloaded_error, then success --------------------------------
    rng = random.Random("synthetic:overloaded")
    model = "claude-sonnet-4-20250514"
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                  "request_id": "req_011C" + rand_id(rng, 20)}
    midstream = anthropic_stream(rng, model, blocks=[("text", "I'll retrieve the secrets for both passwords you provided.")],
                                 stop_reason=None, usage=(416, 1),
                                 error={"type": "error", "error": {"details": None, "type": "overloaded_error",
                                                                   "message": "Overloaded"},
                                        "request_id": "req_011C" + rand_id(rng, 20)},
                                 error_after_deltas=3)
    a1, a2 = "anthropic/mirascope__parallel_tool_use.turn1.sse", "anthropic/mirascope__parallel_tool_use.turn2.sse"
    out.append(CassetteSpec(
        "retry-overloaded.anthropic.jsonl", ["retry-anthropic-overloaded"], "anthropic", "anthropic", model,
        MIRASCOPE_SYSTEM, MIRASCOPE_PROMPT, [SECRET],
        [[Attempt(compact(overloaded), status=529, origin="synthetic 529",
                  headers={"content-type": "application/json", "x-should-retry": "true"}),
          Attempt(midstream, origin="synthetic overloaded_error mid-stream"), real(a1)], [real(a2)]],
        by_tool({"secret_retrieval_tool": secret}),
        changes="step 1 attempt 1: synthetic HTTP 529 overloaded_error JSON; attempt 2: synthetic 200 stream "
                "cut by `event: error` overloaded_error after 3 text deltas (no real recording exists, notes §2/§8); "
                "attempt 3 and step 2: the real mirascope turns"))

    # ---- 5xx storm that exhausts the retries --------------------------------------------------------------
    model = "gpt-4o-mini"
    e500 = pretty_error({"error": {"message": "The server had an error while processing your request. Sorry about that!",
                                   "type": "server_error", "param": None, "code": None}})
    e503 = pretty_error({"error": {"message": "The engine is currently overloaded, please try again later",
                                   "type": "server_error", "param": None, "code": None}})
    e502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            "</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
    storm = []
    for n in range(11):
        kind = n % 3
        if kind == 0:
            storm.append(Attempt(e500, status=500, origin="synthetic 500",
                                 headers={"content-type": "application/json; charset=utf-8"}))
        elif kind == 1:
            storm.append(Attempt(e502, status=502, origin="synthetic 502",
                                 headers={"content-type": "text/html", "server": "cloudflare"}))
        else:
            storm.append(Attempt(e503, status=503, origin="synthetic 503",
                                 headers={"content-type": "application/json; charset=utf-8"}))
    issues = Tool("list_issues", "List open issues with a label", {
        "type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]})
    out.append(CassetteSpec(
        "retry-5xx-storm.openai-chat.jsonl", ["retry-5xx-exhausted", "retry-5xx-exhausted-seed"], "openai-chat",
        "openai", model, "You are a triage assistant.", "Summarise the open issues labelled bug.", [issues],
        [storm], None, synthetic=True,
        changes="synthetic (no real 5xx recording exists, notes §8): 11 failed attempts of step 1 cycling "
                "500 / 502 (Cloudflare HTML) / 503, no retry-after headers; no success"))

    # ---- connection reset mid-stream, then success (real bytes) -------------------------------------------
    body1 = s.real(r1)
    cut = body1.index("event: response.function_call_arguments.done") + 37
    out.append(CassetteSpec(
        "retry-reset.openai-responses.jsonl", ["retry-connection-reset"], "openai-responses", "openai",
        "gpt-4o", None, "What is the capital of France?", [capital],
        [[Attempt(body1, outcome="reset", cut_at=len(body1[:cut].encode()), origin=r1), real(r1)], [real(r2)]],
        by_tool({"get_capital": "Paris"}),
        changes="step 1 attempt 1: the real turn 1 bytes cut 37 bytes into the `function_call_arguments.done` "
                "event, `end.outcome = reset` (a synthetic cut of real bytes); attempt 2 and step 2: the real turns"))

    # ---- context overflow on a real three-step loop -----------------------------------------------------
    c_yaml = "cassettes/pydantic-ai/tests/cassettes/test_temporal/test_complex_agent_run.yaml"
    c0, c2 = "openai-chat/pydantic-ai__parallel_tool_calls_empty_args.sse", "openai-chat/pydantic-ai__tool_args_many_chunks.sse"
    weather = Attempt(s.from_kept_cassette(c_yaml, 1, 0, c0), origin=c_yaml + "#1")
    obj = lambda props, req: {"type": "object", "properties": props, "required": req, "additionalProperties": False}
    out.append(CassetteSpec(
        "complex-agent-run.openai-chat.jsonl", ["context-overflow"], "openai-chat", "openai", "gpt-4o",
        None, "Tell me: the capital of the country; the weather there; the product name",
        [Tool("get_country", "", obj({}, [])), Tool("get_product_name", "", obj({}, [])),
         Tool("get_weather", "", obj({"city": {"type": "string"}}, ["city"])),
         Tool("final_result", "The final response which ends this conversation", obj({"answers": {
             "type": "array", "items": obj({"label": {"type": "string"}, "answer": {"type": "string"}},
                                           ["label", "answer"])}}, ["answers"]))],
        [[real(c0)], [weather], [real(c2)]],
        by_tool({"get_country": "Mexico", "get_product_name": "Pydantic AI", "get_weather": "sunny",
                 "final_result": "Final result processed."}),
        changes="real three-step loop in recorded order (interaction #1 decoded from the kept vcrpy cassette, "
                "checked byte-exact against #0); tool outputs from the recorded follow-up requests; chunked"))

    # ---- one task in all four wire APIs (tapeloop compare) ---------------------------------------------
    g1, g2 = "gemini/mirascope__parallel_function_calls.turn1.sse", "gemini/mirascope__parallel_function_calls.turn2.sse"
    rs_yaml = "cassettes/mirascope/python/tests/e2e/output/cassettes/test_call_with_tools/openai_gpt_4o_responses/stream.yaml"
    rs1 = "openai-responses/mirascope__parallel_function_calls.sse"
    rs2 = Attempt(s.from_kept_cassette(rs_yaml, 1, 0, rs1), origin=rs_yaml + "#1")
    common = dict(system=MIRASCOPE_SYSTEM, prompt=MIRASCOPE_PROMPT, tools=[SECRET],
                  results=by_tool({"secret_retrieval_tool": secret}))
    out.append(CassetteSpec("call-with-tools.anthropic.jsonl", ["call-with-tools"], "anthropic", "anthropic",
                            "claude-sonnet-4-20250514", steps=[[real(a1)], [real(a2)]],
                            changes="real turns 1 and 2 in recorded order; chunked", **common))
    out.append(CassetteSpec("call-with-tools.openai-chat.jsonl", ["call-with-tools"], "openai-chat", "openai",
                            "gpt-4o", steps=[[real(f1)], [real(f2)]],
                            changes="real turns 1 and 2 in recorded order; chunked", **common))
    out.append(CassetteSpec("call-with-tools.openai-responses.jsonl", ["call-with-tools"], "openai-responses",
                            "openai", "gpt-4o", steps=[[real(rs1)], [rs2]],
                            changes="real turn 1; turn 2 decoded from the kept vcrpy cassette (#1), decoder checked "
                                    "byte-exact against #0; chunked", **common))
    out.append(CassetteSpec("call-with-tools.gemini.jsonl", ["call-with-tools"], "gemini", "google",
                            "gemini-2.5-flash", steps=[[real(g1)], [real(g2)]],
                            changes="real turns 1 and 2 in recorded order; CRLF framing kept; Gemini sends no call "
                                    "ids, so the tool lines' call_ids are the builder's; chunked", **common))

    # ---- reasoning models ---------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "reasoning-thinking.anthropic.jsonl", ["reasoning-anthropic-thinking"], "anthropic", "anthropic",
        "claude-haiku-4-5-20251001", None,
        "Use the fixed_version tool to find out the version, then tell me the version and make a short joke about "
        "it. Think about it first.",
        [Tool("fixed_version", "Return the fixed version number", {"type": "object", "properties": {}})],
        [[real(t1)], [real(t2)]], by_tool({"fixed_version": "0.32a0"}), thinking=True, mid_utf8=True,
        changes="real turns 1 and 2 in recorded order; chunked, with reads allowed to split the emoji in turn 2 "
                "(those chunks are `b64`)"))
    out.append(CassetteSpec(
        "reasoning-deepseek.openai-chat.jsonl", ["reasoning-deepseek"], "openai-chat", "deepseek", "deepseek-reasoner",
        None, "Hello", [], [[real("openai-compatible/deepseek__reasoning_content.sse")]], None,
        changes="real single turn; chunked"))
    out.append(CassetteSpec(
        "reasoning-thoughts.gemini.jsonl", ["reasoning-gemini-thoughts"], "gemini", "google", "gemini-2.5-pro",
        "You are a helpful assistant.", "How do I cross the street?", [],
        [[real("gemini/pydantic-ai__thinking_parts.sse")]], None, thinking=True,
        changes="real single turn (thought parts, then answer); chunked"))

    # ---- prompt caching --------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "prompt-cache.anthropic.jsonl", ["prompt-cache-anthropic"], "anthropic", "anthropic", "claude-sonnet-4-6",
        "You are a helpful assistant. Be very brief.",
        "Remember this context: " + "The quick brown fox jumps over the lazy dog. " * 20 + "Now just say hello.", [],
        [[real("anthropic/pydantic-ai__cache_read_compaction.sse")]], None,
        changes="real single turn; chunked; prompt shortened (the recorded one repeats the sentence far more)"))
    out.append(CassetteSpec(
        "prompt-cache.openai-responses.jsonl", ["prompt-cache-responses"], "openai-responses", "openai",
        "gpt-5", "You are a helpful assistant.", "What is the weather in San Francisco today?", [],
        [[real("openai-responses/pydantic-ai__web_search_cached_tokens.sse")]], None,
        provider_tools=[{"type": "web_search"}], changes="real single turn; chunked"))

    # ---- provider errors ----------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "groq-tool-use-failed.openai-chat.jsonl", ["groq-tool-use-failed"], "openai-chat", "groq",
        "openai/gpt-oss-120b", "Be concise. Never use pretty double quotes, just regular ones.",
        'Please call the "get_something_by_name" tool with non-existent parameters to test error handling; on '
        "the second try you can use valid args",
        [Tool("get_something_by_name", "", {"type": "object", "properties": {"name": {"type": "string"}},
                                            "required": ["name"], "additionalProperties": False})],
        [[real("openai-compatible/groq__error_event_midstream.sse")]], None,
        changes="real single interaction (reasoning deltas, then `event: error` tool_use_failed, then EOF); chunked"))
    out.append(CassetteSpec(
        "openrouter-error-chunk.openai-chat.jsonl", ["openrouter-error-chunk"], "openai-chat", "openrouter",
        "minimax/minimax-m2:free", None, "Hello there", [],
        [[real("openai-compatible/openrouter__error_chunk_midstream.sse")]], None,
        changes="real single interaction (keep-alive comments, two `length` finish chunks, a chunk with a "
                "top-level error {code 400}, [DONE]); chunked"))

    # ---- finish_reason length ------------------------------------------------------------------------------
    out.append(CassetteSpec(
        "finish-length.openai-chat.jsonl", ["finish-length"], "openai-chat", "openai", "gpt-4o", None,
        "List all U.S. states.", [], [[real("openai-chat/mirascope__finish_length.sse")]], None,
         max_tokens=50, changes="real single turn; chunked"))

    # ---- Gemini 429 whose retry hint lives in the body ------------------------------------------------------
    gt1, gt2 = "gemini/pydantic-ai__tool_call_thought_signature.turn1.sse", "gemini/pydantic-ai__tool_call_thought_signature.turn2.sse"
    out.append(CassetteSpec(
        "retry-429-body-hint.gemini.jsonl", ["retry-gemini-429-body-hint"], "gemini", "google", "gemini-3-pro-preview",
        None, "What is the capital of the user country? Call the tool",
        [Tool("get_country", "", {"type": "object", "properties": {}, "additionalProperties": False})],
        [[Attempt(s.real("http-errors/google__429_retry_info.json"), status=429,
                  origin="http-errors/google__429_retry_info.json",
                  headers={"content-type": "application/json; charset=UTF-8"}), real(gt1)], [real(gt2)]],
        by_tool({"get_country": "Mexico"}),
        changes="step 1 attempt 1: the real Gemini 429 body (RetryInfo retryDelay 34.4s in the body) under "
                "synthetic headers without retry-after; attempt 2 and step 2: the real pydantic-ai turns; chunked"))
    return out


# --------------------------------------------------------------------------------------------------
# README


def readme(specs: list[CassetteSpec], sources_by_file: dict[str, list[str]], sizes: dict[str, int]) -> str:
    rows = []
    for c in specs:
        srcs = sources_by_file[c.file]
        if srcs:
            cells = []
            for src in srcs:
                repo, path = PROVENANCE[src]
                url, commit, _lic = REPOS[repo]
                cells.append(f"`{src}` ← {url} `{path}` @ `{commit}`")
            src_cell = "<br>".join(cells)
        else:
            src_cell = "—"
        kind = "synthetic" if c.synthetic else ("real + synthetic errors" if any(
            a.origin.startswith("synthetic") for st in c.steps for a in st) else "real")
        n = sum(len(st) for st in c.steps)
        rows.append(f"| `{c.file}` | {', '.join('`' + s + '`' for s in c.scenarios)} | {c.api} / {c.provider} / "
                    f"`{c.model}` | {kind} | {n} | {sizes[c.file] // 1024 + 1} KB | {src_cell} | {c.changes} |")
    licences = "\n".join(f"- {url} — {lic}" for url, _c, lic in REPOS.values())
    return f"""# Bundled recordings

Cassettes (format v1, see FORMATS.md) replayed by the scenarios in `../scenarios/`. Every file here is
generated; do not edit by hand. Regenerate from the repository root with

```sh
python3 tools/build_corpus.py          # rewrite recordings/*.jsonl and this README
python3 tools/build_corpus.py --check  # fail if anything on disk differs from a fresh build
python3 tools/build_corpus.py --validate  # check every cassette (footer hash, ids, tool lines) and every
                                          # scenario (FORMATS.md keys, cassette paths, tools, prompts)
```

The footer hash is BLAKE3, from PyPI's `blake3` package: `python3 -m pip install blake3` first (in a venv
if the system Python is externally managed).

The builder reads the real provider streams from `../tests/fixtures/provider-streams/` (vendored in the
repository, or `--streams DIR`; provenance in its `SOURCES.md`, licences in its `LICENSES.md`) and writes
the same bytes on every run: chunk boundaries, timings and synthetic ids come from a random generator
seeded with the cassette's file name.

## What every cassette has in common

- Header: `recorder` is `tapeloop-corpus-builder`, `recorded_at` is fixed, `redacted` is empty (nothing
  secret was ever present), plus two extra fields: `synthetic` (true when no interaction body is real) and
  `source` (the real files used, relative to `../tests/fixtures/provider-streams/`).
- Real bodies are byte-exact copies of the recorded response bodies (Anthropic's padding inside `data:` JSON,
  Gemini's CRLF framing, OpenRouter's `: OPENROUTER PROCESSING` comments all kept). No source preserved the
  original TCP chunking (notes §0), so every body is split into irregular reads: mostly at SSE event
  boundaries, sometimes at a line boundary inside an event, sometimes mid-line. Reads never split a UTF-8
  sequence except in `reasoning-thinking.anthropic.jsonl`, whose emoji split lands in `b64` chunks. Error
  bodies (non-200) are one chunk. `ms` offsets are monotonic and synthetic.
- Request lines are rebuilt by the builder in each API's shape (model, stream, messages/input/contents,
  tools, the assistant turns and tool results so far); request headers are only `content-type`. Response
  headers are synthetic except where a row says otherwise (`content-type` matches the recorded one).
  They keep what the original requests carried and a scenario cannot express (`max_tokens = 50` behind
  `finish-length`'s real `length` finish, Anthropic `max_tokens = 8192`, thinking and provider-tool
  settings, Gemini `additionalProperties`, arguments as the provider streamed them), so the corpus is
  replayed in the default `sequence` match mode; `tapeloop run --strict` stops most of these cassettes
  with `divergence` at the first such field. Strict matching is for cassettes written by
  `tapeloop record`, whose requests are tapeloop's own.
- `tool` lines carry the tool results for each step (after the step's last attempt). When a real turn is
  repeated, its tool call ids repeat too (`toolu_…`/`call_…` from the recording); the results for a repeated
  id are identical, so replay by `call_id` or by order gives the same answer. Gemini sends no call ids: its
  tool lines use builder ids `gemini-stepN-callM`, and the Gemini scenarios script their tools instead.
- Synthetic streams copy the exact wire shape of a real file of the same API: OpenAI chat chunks as in
  `openai-chat/mirascope__parallel_tool_calls.turn1.sse` (role chunk, `tool_calls[{{index,id,type,function}}]`
  fragments, finish chunk, usage-only chunk with `choices:[]`, `data: [DONE]`, `obfuscation`); Anthropic as
  in `anthropic/mirascope__parallel_tool_use.turn1.sse` (padding, `{{"type": "ping"}}`, `input_json_delta`
  fragments); Gemini as in `gemini/mirascope__parallel_function_calls.turn1.sse` (CRLF, `": "` separators,
  whole `functionCall` parts with one `thoughtSignature`, `finishMessage`). Synthetic error bodies follow the
  providers' documented shapes: OpenAI `{{"error":{{message,type,param,code}}}}` pretty-printed, Anthropic
  `{{"type":"error","error":{{type,message}},"request_id"}}`, and the in-stream Anthropic `event: error` with
  `details: null` (notes §2). They exist because no real recording does (notes §8 "Gaps").

## Cassettes

| cassette | scenarios | api / provider / model | kind | interactions | size | real sources (file ← upstream repo path @ commit) | what was changed / why synthetic |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

## Licences of the sources

The real bodies are test data from these repositories (see `../tests/fixtures/provider-streams/SOURCES.md`
and its `LICENSES.md`):

{licences}

Used here only as test data; the synthetic streams were written for tapeloop.
"""


# --------------------------------------------------------------------------------------------------
# Validation: an independent reading of what was written (cassettes) and of the scenarios that use them


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


# --------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=Path, default=DEFAULT_STREAMS, help="the provider-streams directory")
    ap.add_argument("--out", type=Path, default=ROOT / "recordings", help="where to write the cassettes")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    ap.add_argument("--validate", action="store_true",
                    help="only validate recordings/*.jsonl and scenarios/*.toml (no provider streams needed)")
    args = ap.parse_args()
    if args.validate:
        problems = []
        for path in sorted(args.out.glob("*.jsonl")):
            problems += [f"{path.name}: {p}" for p in validate_cassette(path)[0]]
        problems += validate_scenarios(ROOT / "scenarios")
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{'FAILED' if problems else 'ok'}: {len(list(args.out.glob('*.jsonl')))} cassettes, "
              f"{len(list((ROOT / 'scenarios').glob('**/*.toml')))} scenarios")
        return 1 if problems else 0
    if not (args.streams / "SOURCES.md").is_file():
        print(f"error: {args.streams} does not look like tests/fixtures/provider-streams (no SOURCES.md)", file=sys.stderr)
        return 2
    streams = Streams(args.streams)
    specs = corpus(streams)
    names = [c.file for c in specs]
    assert len(names) == len(set(names)), "duplicate cassette names"
    files: dict[str, bytes] = {}
    sources: dict[str, list[str]] = {}
    for c in specs:
        data, srcs = build_cassette(c)
        if len(data) >= 300 * 1024:
            raise SystemExit(f"{c.file} is {len(data)} bytes; keep cassettes under 300 KB")
        files[c.file] = data
        sources[c.file] = srcs
    files["README.md"] = readme(specs, sources, {k: len(v) for k, v in files.items()}).encode("utf-8")
    if args.check:
        bad = [n for n, d in files.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != d]
        stale = sorted(p.name for p in args.out.glob("*.jsonl") if p.name not in files)
        for n in bad:
            print(f"differs: recordings/{n}", file=sys.stderr)
        for n in stale:
            print(f"not generated (stale?): recordings/{n}", file=sys.stderr)
        return 1 if bad or stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, d in files.items():
        (args.out / n).write_bytes(d)
    print(f"wrote {len(files) - 1} cassettes and README.md to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
