"""A real SDK client for `tapeloop serve` tests.

Usage: serve_sdk_client.py API BASE_URL CALLS_JSON [--session S] [--agent-retries N]
                            [--model MODEL] [--no-stream]

With --no-stream every call is the SDK's non-streaming one (`stream` left out of the body).

API is openai-chat, openai-responses, anthropic or gemini (MODEL needed: Gemini names it in the
path, not the body). CALLS_JSON holds a list of request bodies,
one per agent step. Each is sent through the official SDK (streaming, the SDK's own retries
enabled); an error raised while streaming is retried by this script like an agent would, up to
--agent-retries times. Prints one JSON object on stdout:

  {"sdk": "openai 3.52.0", "calls": [{"text", "reasoning", "tool_calls": [{"id", "name",
   "arguments"}], "errors": [{"type", "status", "message"}], "seconds"}]}

`seconds` is the wall time of the call including the SDK's retry waits.
"""

import argparse
import importlib
import inspect
import json
import sys
import time


def split_kwargs(method, body):
    """Known keyword arguments of the SDK method, everything else as extra_body."""
    params = inspect.signature(method).parameters
    kwargs, extra = {}, {}
    for key, value in body.items():
        if key == "stream":
            continue
        (kwargs if key in params else extra)[key] = value
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def transport_errors():
    """The HTTP library's own errors (a cut stream surfaces as one of these while iterating).
    The SDKs moved from httpx to httpx2; accept whichever is installed."""
    for name in ("httpx2", "httpx"):
        try:
            return (importlib.import_module(name).HTTPError,)
        except ImportError:
            continue
    return ()


def error_record(exc):
    return {
        "type": type(exc).__name__,
        "status": getattr(exc, "status_code", None),
        "message": str(exc)[:300],
    }


def openai_chat(client, body, out):
    stream = client.chat.completions.create(
        stream=True, **split_kwargs(client.chat.completions.create, body)
    )
    calls = {}
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                out["text"] += delta.content
            # DeepSeek's reasoning_content is not in the SDK's model: pydantic keeps it as an
            # extra attribute.
            reasoning = getattr(delta, "reasoning_content", None)
            if reasoning:
                out["reasoning"] += reasoning
            for tc in delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    c["id"] = tc.id
                if tc.function and tc.function.name:
                    c["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    c["arguments"] += tc.function.arguments
    out["tool_calls"] = [calls[i] for i in sorted(calls)]


def openai_responses(client, body, out):
    stream = client.responses.create(stream=True, **split_kwargs(client.responses.create, body))
    for event in stream:
        kind = event.type
        if kind == "response.output_text.delta":
            out["text"] += event.delta
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            out["reasoning"] += event.delta
        elif kind == "response.output_item.done" and event.item.type == "function_call":
            out["tool_calls"].append(
                {"id": event.item.call_id, "name": event.item.name, "arguments": event.item.arguments}
            )
        elif kind in ("response.failed", "error"):
            raise RuntimeError(f"stream reported {kind}")


def anthropic_messages(client, body, out):
    stream = client.messages.create(stream=True, **split_kwargs(client.messages.create, body))
    blocks = {}
    for event in stream:
        if event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                blocks[event.index] = {"id": block.id, "name": block.name, "arguments": ""}
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                out["text"] += delta.text
            elif delta.type == "thinking_delta":
                out["reasoning"] += delta.thinking
            elif delta.type == "input_json_delta":
                blocks[event.index]["arguments"] += delta.partial_json
    out["tool_calls"] = [blocks[i] for i in sorted(blocks)]


GEMINI_CONFIG_KEYS = {
    "systemInstruction": "system_instruction",
    "tools": "tools",
    "toolConfig": "tool_config",
    "safetySettings": "safety_settings",
    "cachedContent": "cached_content",
}


def gemini_config(body):
    """A request body's fields besides `contents`, as google-genai's GenerateContentConfig."""
    config = {}
    for key, value in body.items():
        if key in GEMINI_CONFIG_KEYS:
            config[GEMINI_CONFIG_KEYS[key]] = value
        elif key == "generationConfig":
            config.update(value)
    return config


def gemini_part(part, out, calls):
    if part.function_call:
        fc = part.function_call
        calls.append({"id": fc.id, "name": fc.name, "arguments": json.dumps(fc.args or {})})
    elif part.text and part.thought:
        out["reasoning"] += part.text
    elif part.text:
        out["text"] += part.text


def gemini(client, body, out, model):
    calls = []
    for chunk in client.models.generate_content_stream(
        model=model, contents=body["contents"], config=gemini_config(body)
    ):
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                gemini_part(part, out, calls)
    out["tool_calls"] = calls


def openai_chat_json(client, body, out):
    resp = client.chat.completions.create(**split_kwargs(client.chat.completions.create, body))
    message = resp.choices[0].message
    out["text"] = message.content or ""
    out["reasoning"] = getattr(message, "reasoning_content", None) or ""
    out["tool_calls"] = [
        {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
        for tc in message.tool_calls or []
    ]


def openai_responses_json(client, body, out):
    resp = client.responses.create(**split_kwargs(client.responses.create, body))
    for item in resp.output:
        if item.type == "message":
            for part in item.content:
                if part.type == "output_text":
                    out["text"] += part.text
        elif item.type == "reasoning":
            for part in item.summary or []:
                out["reasoning"] += part.text
            for part in getattr(item, "content", None) or []:
                out["reasoning"] += part.text
        elif item.type == "function_call":
            out["tool_calls"].append(
                {"id": item.call_id, "name": item.name, "arguments": item.arguments}
            )


def anthropic_messages_json(client, body, out):
    resp = client.messages.create(**split_kwargs(client.messages.create, body))
    for block in resp.content:
        if block.type == "text":
            out["text"] += block.text
        elif block.type == "thinking":
            out["reasoning"] += block.thinking
        elif block.type == "tool_use":
            out["tool_calls"].append(
                {"id": block.id, "name": block.name, "arguments": json.dumps(block.input)}
            )


def gemini_json(client, body, out, model):
    calls = []
    resp = client.models.generate_content(
        model=model, contents=body["contents"], config=gemini_config(body)
    )
    for cand in resp.candidates or []:
        for part in (cand.content.parts if cand.content else None) or []:
            gemini_part(part, out, calls)
    out["tool_calls"] = calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("api", choices=["openai-chat", "openai-responses", "anthropic", "gemini"])
    ap.add_argument("base_url")
    ap.add_argument("calls")
    ap.add_argument("--session")
    ap.add_argument("--agent-retries", type=int, default=0)
    ap.add_argument("--model")
    ap.add_argument("--no-stream", action="store_true", help="the SDKs' non-streaming calls")
    args = ap.parse_args()
    with open(args.calls, encoding="utf-8") as f:
        bodies = json.load(f)
    headers = {"x-tapeloop-session": args.session} if args.session else None

    if args.api == "gemini":
        from google import genai
        from google.genai import errors as genai_errors
        from google.genai import types

        client = genai.Client(
            api_key="test-key",
            http_options=types.HttpOptions(base_url=args.base_url, headers=headers or {}),
        )

        def send(client, body, out):
            (gemini_json if args.no_stream else gemini)(client, body, out, args.model)

        sdk = f"google-genai {genai.__version__}"
        errors = (genai_errors.APIError, *transport_errors())
    elif args.api == "anthropic":
        import anthropic

        client = anthropic.Anthropic(
            base_url=args.base_url, api_key="test-key", max_retries=2, default_headers=headers
        )
        send = anthropic_messages_json if args.no_stream else anthropic_messages
        sdk = f"anthropic {anthropic.__version__}"
        errors = (anthropic.APIError, *transport_errors())
    else:
        import openai

        client = openai.OpenAI(
            base_url=args.base_url + "/v1", api_key="test-key", max_retries=2, default_headers=headers
        )
        if args.api == "openai-chat":
            send = openai_chat_json if args.no_stream else openai_chat
        else:
            send = openai_responses_json if args.no_stream else openai_responses
        sdk = f"openai {openai.__version__}"
        errors = (openai.APIError, RuntimeError, *transport_errors())

    calls = []
    for body in bodies:
        record = {"errors": []}
        started = time.monotonic()
        for _ in range(args.agent_retries + 1):
            out = {"text": "", "reasoning": "", "tool_calls": []}
            try:
                send(client, body, out)
            except errors as exc:  # a failed attempt the SDK did not retry itself
                record["errors"].append(error_record(exc))
                continue
            record.update(out)
            break
        else:
            record.update({"text": None, "reasoning": None, "tool_calls": None})
        record["seconds"] = time.monotonic() - started
        calls.append(record)
    json.dump({"sdk": sdk, "calls": calls}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
