"""Paths and the fixed header values every cassette of the corpus carries."""

from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_STREAMS = ROOT / "tests" / "fixtures" / "provider-streams"
RECORDED_AT = "2026-11-20T12:00:00Z"
RECORDER = "tapeloop-corpus-builder"
