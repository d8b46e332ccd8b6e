"""Parsing a stream back into what the assistant said, for the next request body and the
tool lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from corpus_builder.synth import gemini_json


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
