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
import sys
from pathlib import Path

from corpus_builder.common import DEFAULT_STREAMS, ROOT
from corpus_builder.sources import Streams
from corpus_builder.cassette import build_cassette
from corpus_builder.spec import corpus
from corpus_builder.readme import readme
from corpus_builder.validate import validate_cassette, validate_scenarios


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
