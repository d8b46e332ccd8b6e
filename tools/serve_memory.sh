#!/usr/bin/env bash
# Peak RSS and time to the first answered request of `tapeloop serve` on one cassette
# (docs/RELIABILITY.md, "Figures measured this session").
#
#   tools/serve_memory.sh target/release/tapeloop /tmp/big.openai-chat.jsonl [serve flags...]
#
# Starts `serve --pace instant` under /usr/bin/time, POSTs the cassette's first and last request
# bodies to /v1/chat/completions (an OpenAI chat cassette, e.g. one from tools/big_cassette.py),
# checks the first answer byte for byte against interaction 1's recorded body, stops the server
# with SIGINT and prints: seconds until it listened (indexing), until the first answer was
# complete, the last answer's time, and the peak RSS in KiB. Needs python3, curl, GNU time.
set -euo pipefail
BIN=$(realpath "$1"); CASSETTE=$(realpath "$2"); shift 2
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 - "$CASSETTE" "$WORK" <<'PY'
import base64, json, sys
bodies, body, done = [], b"", False
with open(sys.argv[1], "rb") as f:
    for line in f:
        if line.startswith(b'{"kind":"request"'):
            bodies.append(json.loads(line)["body"])
        elif not done and line.startswith(b'{"kind":"chunk","id":1,'):
            c = json.loads(line)
            body += c["data"].encode() if "data" in c else base64.b64decode(c["b64"])
        elif line.startswith(b'{"kind":"end","id":1,'):
            done = True
open(f"{sys.argv[2]}/first.json", "w").write(json.dumps(bodies[0]))
open(f"{sys.argv[2]}/last.json", "w").write(json.dumps(bodies[-1]))
open(f"{sys.argv[2]}/expected", "wb").write(body)
PY
now() { date +%s.%N; }
t0=$(now)
/usr/bin/time -f "peak RSS %M KiB" "$BIN" serve "$CASSETTE" --pace instant --listen 127.0.0.1:0 "$@" \
    2> "$WORK/stderr" &
TIME_PID=$!
until grep -q "http://" "$WORK/stderr"; do
    kill -0 "$TIME_PID" 2>/dev/null || { cat "$WORK/stderr"; exit 1; }
    sleep 0.02
done
t1=$(now)
ADDR=$(grep -o "http://[0-9.:]*" "$WORK/stderr" | head -1)
post() { curl -sf --noproxy '*' -o "$WORK/$1.out" -H 'content-type: application/json' \
    --data-binary "@$WORK/$1.json" "$ADDR/v1/chat/completions"; }
post first; t2=$(now)
post last; t3=$(now)
kill -INT "$(pgrep -P "$TIME_PID")"
wait "$TIME_PID" || true
cmp -s "$WORK/first.out" "$WORK/expected" && exact=yes || exact=NO
python3 -c "import sys; t0,t1,t2,t3=map(float,sys.argv[1:]); print(f'listening after {t1-t0:.2f} s; first answer complete after {t2-t0:.2f} s; last answer {t3-t2:.3f} s')" "$t0" "$t1" "$t2" "$t3"
echo "first answer byte-exact: $exact ($(wc -c < "$WORK/expected") bytes)"
grep "peak RSS" "$WORK/stderr"
