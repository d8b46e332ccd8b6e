"""Validate tapeloop's assembled non-stream bodies and built SSE streams with the official SDK types.

Usage: check_assembled.py CASES.json
CASES.json is a list of {"label", "api", "body", "stream": [sse event text, ...], "expect": {...}}
written by tests/adapter_nonstream.rs. Prints one line per case; exits 1 on the first failure.
"""

import json
import sys
import typing

import anthropic.types as at
import anthropic.types.beta as atb
import openai.types.chat as oc
import openai.types.responses as orr

try:
    from google.genai import types as gt
except ImportError:  # google-genai is optional here: say so loudly
    gt = None
    print("note: google-genai not installed: Gemini bodies are checked as JSON only")


OWN_ITEMS = ("message", "reasoning", "function_call")


def own_items(response):
    return dict(response, output=[o for o in response["output"] if o["type"] in OWN_ITEMS])


def by_type(union):
    """The member classes of a discriminated SDK union, by their `type` literal."""
    out = {}
    stack = [union]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and hasattr(t, "model_fields") and "type" in t.model_fields:
            for lit in typing.get_args(t.model_fields["type"].annotation):
                out[lit] = t
        else:
            stack.extend(typing.get_args(t))
    return out


def validate_events(union, datas):
    classes = by_type(union)
    for d in datas:
        ev = json.loads(d)
        classes[ev["type"]].model_validate(ev)


def sse_data(text):
    lines = [l[len("data: "):] for l in text.splitlines() if l.startswith("data: ")]
    return "\n".join(lines)


def check(case):
    api, body, expect = case["api"], case["body"], case["expect"]
    datas = [sse_data(e) for e in case["stream"]]
    if api == "openai-chat":
        m = oc.ChatCompletion.model_validate(body)
        msg = m.choices[0].message
        calls = [c.id for c in (msg.tool_calls or [])]
        text = msg.content or ""
        finish = m.choices[0].finish_reason
        usage = m.usage.total_tokens
        assert datas[-1] == "[DONE]", datas[-1]
        for d in datas[:-1]:
            oc.ChatCompletionChunk.model_validate(json.loads(d))
    elif api == "openai-responses":
        # Server-tool items (web_search_call, ...) are the recorded items verbatim, and real
        # ones carry values this SDK's strict types reject (a search source of type "api"): the
        # SDK reads them without validation, so only the items tapeloop builds are validated.
        body = own_items(body)
        events = [json.loads(d) for d in datas]
        events = [e for e in events if e.get("item", {}).get("type", "message") in OWN_ITEMS]
        datas = [json.dumps(dict(e, response=own_items(e["response"])) if "response" in e else e) for e in events]
        m = orr.Response.model_validate(body)
        calls = [o.call_id for o in m.output if o.type == "function_call"]
        text = m.output_text
        finish = m.status
        usage = m.usage.total_tokens
        validate_events(orr.ResponseStreamEvent, datas)
    elif api == "anthropic":
        # Compaction blocks exist only in the beta Messages API (and its SDK types).
        beta = any(b.get("type") == "compaction" for b in body["content"])
        m = (atb.BetaMessage if beta else at.Message).model_validate(body)
        calls = [b.id for b in m.content if b.type == "tool_use"]
        text = "".join(b.text for b in m.content if b.type == "text")
        finish = m.stop_reason
        usage = m.usage.input_tokens + m.usage.output_tokens
        usage += (m.usage.cache_read_input_tokens or 0) + (m.usage.cache_creation_input_tokens or 0)
        validate_events(atb.BetaRawMessageStreamEvent if beta else at.RawMessageStreamEvent, datas)
    elif api == "gemini":
        if gt is not None:
            m = gt.GenerateContentResponse.model_validate(body)
            for d in datas:
                gt.GenerateContentResponse.model_validate(json.loads(d))
        parts = body["candidates"][0]["content"]["parts"]
        calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
        text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        finish = body["candidates"][0]["finishReason"]
        usage = body["usageMetadata"]["totalTokenCount"]
    else:
        raise AssertionError(f"unknown api {api}")
    got = {"calls": calls, "text": text, "finish": finish, "total_tokens": usage}
    assert got == expect, f"SDK reads {got}, tapeloop meant {expect}"


def main():
    cases = json.load(open(sys.argv[1]))
    for case in cases:
        try:
            check(case)
        except Exception as e:  # report which case, then fail
            print(f"FAIL {case['label']}: {type(e).__name__}: {e}"[:3000])
            sys.exit(1)
        print(f"ok {case['label']}")


main()
