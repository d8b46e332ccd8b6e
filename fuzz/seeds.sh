#!/usr/bin/env bash
# Build the seed corpora in fuzz/corpus/<target>/ (not committed: see .gitignore) from the
# repository's own recordings, scenarios, vendored provider streams and vcrpy cassettes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus
rm -rf "$out"
mkdir -p "$out"/{sse,adapters,cassette_reader,scenario,vcrpy_import,serve_request}
streams=tests/fixtures/provider-streams
n=0
# Raw provider bodies: SSE and JSON-array streams. The adapters target's first byte picks the
# API (index into openai-chat, openai-responses, anthropic, gemini) and the read size.
api_byte() {
    case "$1" in
        *openai-responses*) printf '\x01' ;;
        *anthropic*) printf '\x02' ;;
        *gemini*) printf '\x03' ;;
        *) printf '\x00' ;;
    esac
}
while IFS= read -r -d '' f; do
    n=$((n + 1))
    { printf '\x07'; head -c 65536 "$f"; } > "$out/sse/$n"
    { api_byte "$f"; head -c 65536 "$f"; } > "$out/adapters/$n"
done < <(find "$streams" -type f \( -name '*.sse' -o -name '*.txt' -o -name '*.json' \) -size -256k -print0)
for f in recordings/*.jsonl; do
    cp "$f" "$out/cassette_reader/$(basename "$f")"
done
for f in scenarios/*.toml; do
    cp "$f" "$out/scenario/$(basename "$f")"
done
while IFS= read -r -d '' f; do
    cp "$f" "$out/vcrpy_import/$(basename "$f")"
done < <(find "$streams/cassettes" -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 2>/dev/null)
# serve_request: path, session header, body.
i=0
for f in recordings/*.jsonl; do
    i=$((i + 1))
    body=$(sed -n 2p "$f" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps(d.get("body",{})))' 2>/dev/null || echo '{}')
    printf '/v1/chat/completions\nsession-%s\n%s' "$i" "$body" > "$out/serve_request/$i"
done
printf '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse\n\n{"contents":[]}' > "$out/serve_request/gemini"
printf '/v1/messages\n\n{"model":"m","messages":[{"role":"user","content":"hi"}]}' > "$out/serve_request/anthropic"
# The issue-16 reproducers, small versions: deep and amplifying JSON paths.
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name, path in [("deep", "$" + ".a" * 3000), ("wide", "$" + "[10000]" * 300)]:
    chunk = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "partialArgs": [{"jsonPath": path, "stringValue": "x"}]}}]}}]}
    body = "data: " + json.dumps(chunk) + "\n\n"
    open(f"{out}/adapters/gemini-{name}", "wb").write(b"\x03" + body.encode())
PY
for t in "$out"/*; do
    echo "$(basename "$t"): $(find "$t" -type f | wc -l) seeds"
done
