#!/usr/bin/env python3
"""A small tool-calling agent loop on the official `openai` SDK, for `tapeloop exec`.

It is the kind of home-grown loop tapeloop puts under test: it streams a chat completion, runs
the tool calls the model asks for, sends the results back, and repeats until the model stops.
Two policies are configurable so tests can show tapeloop catching both a good and a bad loop:

  --doom-check N     stop (exit 3, no further request) when the last N tool calls, across
                     steps, are the same call (name and arguments); `off` never checks.
  --retry-after      honour | ignore: wait what the server's `retry-after` / `retry-after-ms`
                     says before retrying a 429/5xx, or retry after a fixed short backoff.
  --max-retries N    give up (exit 4) after N retries of one step.

The conversation comes from the scenario file (`--scenario`, TOML: `system`, `prompt`,
`[[tools]]`), the endpoint from OPENAI_BASE_URL / OPENAI_API_KEY (what `tapeloop exec` sets).
Tools are not real: each call is answered with a short text naming the call, which is all a
replayed model needs.

Exit codes: 0 completed, 3 stopped a doom loop, 4 gave up after retries, 5 step limit,
1 any other error.

Example (from the repository root, with the `openai` package installed):
  tapeloop exec scenarios/retry-429-retry-after.toml -- \
      python3 examples/agents/loop_agent.py --scenario {scenario} --model {model}
"""

import argparse
import json
import sys
import time
import tomllib

import openai

EXIT_DOOM, EXIT_GAVE_UP, EXIT_MAX_STEPS = 3, 4, 5


def load_scenario(path):
    with open(path, "rb") as f:
        sc = tomllib.load(f)
    tools = [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description", ""),
                "parameters": t.get("schema", {"type": "object", "properties": {}}),
            },
        }
        for t in sc.get("tools", [])
    ]
    messages = []
    if sc.get("system"):
        messages.append({"role": "system", "content": sc["system"]})
    messages.append({"role": "user", "content": sc.get("prompt", "")})
    return sc, messages, tools


def retry_wait_s(err, policy, attempt):
    """Seconds to wait before the next attempt after `err`."""
    if policy == "honour":
        headers = getattr(getattr(err, "response", None), "headers", None) or {}
        ms = headers.get("retry-after-ms")
        if ms is not None:
            try:
                return float(ms) / 1000.0
            except ValueError:
                pass
        secs = headers.get("retry-after")
        if secs is not None:
            try:
                return float(secs)
            except ValueError:
                pass
    return 0.05 * attempt


def stream_step(client, model, messages, tools):
    """One model call: (text, tool_calls, finish_reason)."""
    kwargs = {"model": model, "messages": messages, "stream": True}
    if tools:
        kwargs["tools"] = tools
    text, calls, finish = [], {}, None
    for chunk in client.chat.completions.create(**kwargs):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        if delta and delta.content:
            text.append(delta.content)
        for tc in (delta.tool_calls or []) if delta else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
    return "".join(text), [calls[i] for i in sorted(calls)], finish


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--doom-check", default="3", help="N identical calls in a row, or off")
    ap.add_argument("--retry-after", choices=["honour", "ignore"], default="honour")
    ap.add_argument("--max-retries", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=20)
    args = ap.parse_args()
    doom_n = None if args.doom_check == "off" else int(args.doom_check)

    _, messages, tools = load_scenario(args.scenario)
    # The agent owns its retry policy: the SDK's own retries are off.
    client = openai.OpenAI(max_retries=0)
    history = []  # (name, canonical arguments) of every tool call, in order
    for step in range(1, args.max_steps + 1):
        attempt = 0
        while True:
            try:
                text, calls, finish = stream_step(client, args.model, messages, tools)
                break
            except openai.APIStatusError as err:
                retryable = err.status_code == 429 or err.status_code >= 500
                if not retryable:
                    print(f"step {step}: HTTP {err.status_code}, not retried", file=sys.stderr)
                    return 1
                if attempt >= args.max_retries:
                    print(f"step {step}: gave up after {attempt} retries", file=sys.stderr)
                    return EXIT_GAVE_UP
                attempt += 1
                time.sleep(retry_wait_s(err, args.retry_after, attempt))
            except openai.APIConnectionError as err:
                if attempt >= args.max_retries:
                    print(f"step {step}: gave up after {attempt} retries: {err}", file=sys.stderr)
                    return EXIT_GAVE_UP
                attempt += 1
                time.sleep(0.05 * attempt)
        print(json.dumps({"step": step, "finish": finish, "tool_calls": [c["name"] for c in calls]}))
        if not calls:
            return 0
        messages.append(
            {
                "role": "assistant",
                "content": text or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls
                ],
            }
        )
        for c in calls:
            try:
                canon = json.dumps(json.loads(c["arguments"] or "{}"), sort_keys=True)
            except ValueError:
                canon = c["arguments"]
            history.append((c["name"], canon))
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": f"ok: {c['name']} done"})
        if doom_n and len(history) >= doom_n and len(set(history[-doom_n:])) == 1:
            print(f"step {step}: doom loop: {history[-1][0]} called {doom_n} times in a row; stopping", file=sys.stderr)
            return EXIT_DOOM
    return EXIT_MAX_STEPS


if __name__ == "__main__":
    sys.exit(main())
