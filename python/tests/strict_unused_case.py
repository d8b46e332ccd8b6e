"""Not collected by default: tests/pytest_plugin.rs runs it to see strict teardown fail a test
whose recording was not fully consumed."""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_leaves_interactions_unused(tapeloop_serve):
    tapeloop_serve(REPO / "recordings" / "call-with-tools.openai-chat.jsonl")


def test_lenient_when_asked(tapeloop_serve):
    tapeloop_serve(REPO / "recordings" / "call-with-tools.openai-chat.jsonl", strict=False)
