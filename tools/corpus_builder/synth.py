"""Synthetic streams, in each provider's exact wire shape (copied from the real files)."""

from __future__ import annotations

import base64
import json
import random
import re
import string



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
