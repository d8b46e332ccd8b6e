#!/usr/bin/env bash
# tapeloop vs the seeds' Python SessionProcessor, same cassette bytes, one run, one machine.
#
#   [JOBS=N] [PY_VERIFY=1] benches/reference/compare.sh [ITERATIONS] [SCENARIO...]
#
# Builds the release binary (unless TAPELOOP=/path/to/tapeloop is set), runs
# `tapeloop bench <openai-chat scenarios> --format json`, then `seed_processor.py` on exactly
# the cassettes that report lists (one per scenario, duplicates kept), and prints both rates
# and their ratio. Both sides read every cassette from disk and parse it on every iteration.
# Default scenarios: every scenario with `api = "openai-chat"` under scenarios/ (the Python
# reference decodes only OpenAI Chat Completions streams).
#
# JOBS=N (default 1) is passed to `tapeloop bench --jobs` (0 = one per core). The Python
# reference always runs on one thread, so only JOBS=1 gives a per-core ratio; with more jobs
# the ratio is tapeloop on N threads against Python on one, and the output says so.
#
# PY_VERIFY=1 makes the Python side also check each cassette's footer hash (blake3, from PyPI's
# `blake3` package: PYTHON=/path/to/venv/bin/python), which tapeloop always does and the seeds do
# not: the same work on both sides.
set -euo pipefail

cd "$(dirname "$0")/../.."
iterations="${1:-50}"
shift || true
if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <(grep -l '^api = "openai-chat"' scenarios/*.toml | sort)
fi
python="${PYTHON:-python3}"
jobs="${JOBS:-1}"

if [ -z "${TAPELOOP:-}" ]; then
  cargo build --release --quiet --bin tapeloop
  TAPELOOP="$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tapeloop"
fi

rust_json="$(CI=1 "$TAPELOOP" bench "${scenarios[@]}" --iterations "$iterations" --jobs "$jobs" --format json)"
mapfile -t cassettes < <(printf '%s' "$rust_json" | "$python" -c '
import json, sys
for s in json.load(sys.stdin)["per_scenario"]:
    print(s["cassette"])')
py_flags=()
if [ "${PY_VERIFY:-0}" = 1 ]; then
  py_flags+=(--verify-footer)
fi
py_json="$("$python" benches/reference/seed_processor.py --iterations "$iterations" "${py_flags[@]}" "${cassettes[@]}")"

RUST="$rust_json" PY="$py_json" "$python" - <<'EOF'
import json, os
r = json.loads(os.environ["RUST"])
p = json.loads(os.environ["PY"])
rust_bytes = sum(s["bytes"] for s in r["per_scenario"])
assert rust_bytes == p["bytes"], f"different inputs: tapeloop {rust_bytes} B, python {p['bytes']} B"
print(f"{r['scenarios']} openai-chat scenarios, {rust_bytes} cassette bytes per iteration, "
      f"{r['iterations']} iterations each")
jobs = r.get("jobs", 1)
used = ""
if r.get("cpu_s") is not None and r["elapsed_s"] > 0:
    used = f", {r['cpu_s'] / r['elapsed_s']:.2f} cores used"
if jobs == 1:
    print(f"tapeloop on 1 thread{used}, python on 1 thread: per-core ratio")
else:
    print(f"tapeloop on {jobs} threads{used}, python on 1 thread: NOT a per-core ratio "
          "(JOBS=1 for that)")
if p.get("verify_footer"):
    print("python also checks the footer hash (the same integrity work as tapeloop)")
print(f"{'':28}{f'tapeloop -j{jobs}':>14}{'python seed':>14}{'ratio':>9}")
rows = [
    ("cassette bytes/s", r["bytes_per_s"], p["bytes_per_s"]),
    ("scenarios (cassettes)/s", r["scenarios_per_s"], p["cassettes_per_s"]),
]
for name, a, b in rows:
    print(f"{name:28}{a:14.4g}{b:14.4g}{a / b:8.1f}x")
print(f"{'events/s (own units)':28}{r['events_per_s']:14.4g}{p['sse_events_per_s']:14.4g}"
      "   (tapeloop: normalized events; python: SSE events)")
print(f"peak RSS: tapeloop {r['peak_rss_bytes'] / 2**20:.1f} MiB, python {p['peak_rss_bytes'] / 2**20:.1f} MiB")
EOF
