#!/usr/bin/env python3
"""Write a large, valid tapeloop cassette for memory and start-up measurements (docs/RELIABILITY.md).

    python3 tools/big_cassette.py --size 1G --out /tmp/big.openai-chat.jsonl
    python3 tools/big_cassette.py --size 200M --out /tmp/big.jsonl \\
        --from recordings/call-with-tools.openai-chat.jsonl --scenario /tmp/big.toml

The interactions of a bundled recording (default: the DeepSeek reasoning stream, one 83 KB
interaction with a 300-byte request, so the file is almost all response bodies) are repeated with
new ids until the file holds at least --size bytes. The last copy's first user message is changed
to "<message>, for the last time", so a server matching by conversation answers it from the end
of the file; the first copy is the recording's own request. Tool lines are dropped. The footer is
correct: line and interaction counts, and `blake3` of every byte before it when PyPI's `blake3`
package is installed (tests/python/requirements.txt), else `sha256` (the older form, which the
reader still verifies; `tapeloop check --rewrite-footer` turns it into blake3).

--scenario also writes a copy of the recording's scenario (scenarios/<name>.toml, found by its
`cassettes` entry) that names the new cassette, for `tapeloop check` and `tapeloop run`.

Standard library only otherwise; memory stays flat (the file is streamed out, hashed as written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FROM = ROOT / "recordings" / "reasoning-deepseek.openai-chat.jsonl"

try:  # the footer tapeloop writes; sha256 is the older, still valid form
    import blake3  # type: ignore

    def new_hasher():
        return "blake3", blake3.blake3()
except ImportError:  # pragma: no cover - depends on the environment

    def new_hasher():
        return "sha256", hashlib.sha256()


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"`{text}`: expected a size like 1G, 200M or 5000000")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
    return int(float(m.group(1)) * scale)


def interactions(lines: list[dict]) -> list[list[dict]]:
    """The recording's interactions, each as its lines in file order (request first)."""
    by_id: dict[int, list[dict]] = {}
    for line in lines:
        if line["kind"] in ("request", "response", "chunk", "end"):
            by_id.setdefault(line["id"], []).append(line)
    return list(by_id.values())


def dumps(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write(source: Path, out: Path, size: int) -> tuple[int, int, str]:
    lines = [json.loads(l) for l in source.read_text(encoding="utf-8").splitlines() if l.strip()]
    header = lines[0]
    if header.get("kind") != "header":
        sys.exit(f"{source}: the first line is not a cassette header")
    inters = interactions(lines)
    if not inters:
        sys.exit(f"{source}: no interactions to repeat")
    # Lines as text with a placeholder id, so repeating them is string work, not JSON work.
    templates = [[dumps({**l, "id": -4242}) for l in inter] for inter in inters]
    per_copy = sum(len(t.encode()) + 1 for inter in templates for t in inter)
    copies = max(1, -(-size // per_copy))
    last_request = inters[-1][0]
    name, hasher = new_hasher()
    count = 0
    written = 0
    next_id = 0
    with out.open("wb") as f:

        def put(text: str) -> None:
            nonlocal count, written
            data = (text + "\n").encode()
            hasher.update(data)
            f.write(data)
            count += 1
            written += len(data)

        put(dumps(header))
        for copy in range(copies):
            for k, inter in enumerate(templates):
                next_id += 1
                for j, text in enumerate(inter):
                    if copy == copies - 1 and k == len(templates) - 1 and j == 0:
                        text = dumps({**last_unique(last_request), "id": -4242})
                    put(text.replace('"id":-4242', f'"id":{next_id}', 1))
        footer = {"kind": "footer", "interactions": next_id, "lines": count, name: hasher.hexdigest()}
        put(dumps(footer))
    return written, next_id, name


def last_unique(request: dict) -> dict:
    """`request` with its first user message changed (so only the last copy matches it)."""
    body = json.loads(json.dumps(request.get("body")))
    for key in ("messages", "input", "contents"):
        items = body.get(key) if isinstance(body, dict) else None
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("role") == "user":
                    content = item.get("content")
                    if isinstance(content, str):
                        item["content"] = content + ", for the last time"
                        return {**request, "body": body}
                    parts = content if isinstance(content, list) else item.get("parts")
                    for part in parts or []:
                        if isinstance(part, dict) and isinstance(part.get("text"), str):
                            part["text"] += ", for the last time"
                            return {**request, "body": body}
    sys.exit("the recording's last request has no user text to make unique")


def write_scenario(source: Path, cassette: Path, out: Path) -> None:
    rel = f"../recordings/{source.name}"
    for sc in sorted((ROOT / "scenarios").glob("*.toml")):
        text = sc.read_text(encoding="utf-8")
        if rel in text:
            text = text.replace(rel, str(cassette.resolve()))
            text = re.sub(r'(?m)^name = "([^"]*)"', r'name = "\1-large"', text, count=1)
            out.write_text(text, encoding="utf-8")
            return
    sys.exit(f"no scenario in scenarios/ names {rel}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, required=True, help="at least this many bytes (1G, 200M)")
    ap.add_argument("--out", type=Path, required=True, help="the cassette to write")
    ap.add_argument("--from", dest="source", type=Path, default=DEFAULT_FROM, help="the recording to repeat")
    ap.add_argument("--scenario", type=Path, help="also write a scenario naming the new cassette")
    args = ap.parse_args()
    written, n, hash_name = write(args.source, args.out, args.size)
    print(f"{args.out}: {written} bytes, {n} interactions, {hash_name} footer", file=sys.stderr)
    if args.scenario:
        write_scenario(args.source, args.out, args.scenario)
        print(f"{args.scenario}: scenario for it", file=sys.stderr)


if __name__ == "__main__":
    main()
