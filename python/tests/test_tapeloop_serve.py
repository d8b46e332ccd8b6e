"""The tapeloop_serve fixture used as a user would: the official openai SDK against a
recording, the request log, reset and a second full replay. Run by tests/pytest_plugin.rs."""

import json
import pathlib

import openai

REPO = pathlib.Path(__file__).resolve().parents[2]
CASSETTE = REPO / "recordings" / "call-with-tools.openai-chat.jsonl"


def recorded_requests(path):
    """The request bodies of a cassette, in order."""
    bodies = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "request":
            bodies.append(rec["body"])
    return bodies


def replay_with_sdk(bodies):
    client = openai.OpenAI()  # the fixture set OPENAI_BASE_URL and OPENAI_API_KEY
    texts = []
    for body in bodies:
        stream = client.chat.completions.create(**body)
        parts = []
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
        texts.append("".join(parts))
    return texts


def test_replays_a_recording_then_again_after_reset(tapeloop_serve):
    server = tapeloop_serve(CASSETTE)
    assert server.openai_base_url.startswith("http://127.0.0.1:")
    bodies = recorded_requests(CASSETTE)
    first = replay_with_sdk(bodies)
    assert first[-1], "the final step streams text"
    log = server.requests
    assert [r["status"] for r in log] == [200] * len(bodies)
    assert all(r["outcome"] == "complete" for r in log)
    server.reset()
    assert replay_with_sdk(bodies) == first
    assert len(server.requests) == 2 * len(bodies)


def test_the_sdk_sees_a_recorded_429_and_retries_within_the_scaled_wait(tapeloop_serve):
    cassette = REPO / "recordings" / "retry-429.openai-chat.jsonl"
    server = tapeloop_serve(cassette, retry_after_scale=0.01)
    bodies = recorded_requests(cassette)
    # The first two request lines are the same step (the 429 and its retry): the SDK retries.
    distinct = [b for i, b in enumerate(bodies) if i == 0 or b != bodies[i - 1]]
    replay_with_sdk(distinct)
    log = server.requests
    assert [r["status"] for r in log][:2] == [429, 200]
    assert log[0]["retry_after"][0]["served"] in ("0.07", "70")
