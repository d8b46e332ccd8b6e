"""recordings/README.md, written from the corpus."""

from __future__ import annotations


from corpus_builder.sources import PROVENANCE, REPOS
from corpus_builder.cassette import CassetteSpec


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
