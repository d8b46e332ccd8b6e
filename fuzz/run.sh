#!/usr/bin/env bash
# Run one fuzz target for SECONDS, or every target in turn:
#   fuzz/run.sh TARGET SECONDS
#   fuzz/run.sh all SECONDS
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Builds the seed
# corpora first when they are missing (fuzz/seeds.sh). A crash leaves its input in
# fuzz/artifacts/TARGET/ and exits non-zero: turn it into a regression test in tests/.
set -euo pipefail
cd "$(dirname "$0")"
TARGETS=(sse adapters cassette_reader scenario vcrpy_import serve_request)
target=${1:?usage: fuzz/run.sh TARGET|all SECONDS}
secs=${2:?usage: fuzz/run.sh TARGET|all SECONDS}
[ -d corpus ] || ./seeds.sh
run_one() {
    local t=$1
    mkdir -p "corpus/$t"
    echo "== fuzz $t for ${secs}s"
    # -rss_limit_mb: a decoder that allocates past the limits is a crash too.
    local log status
    log=$(mktemp "${TMPDIR:-/tmp}/tapeloop-fuzz-$t.XXXXXX")
    set +e
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len=262144 -print_final_stats=1 \
        >"$log" 2>&1
    status=$?
    set -e
    grep -E '^(stat::|==|INFO: Done|SUMMARY|.*ERROR)' "$log" || true
    # A build that fails (a compile error, a full disk) or a run that finds a crash, an
    # out-of-memory or a timeout both fail the step: nothing may pass without fuzzing.
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$log" >&2
        echo "error: fuzz target $t failed (exit $status); full log: $log" >&2
        return 1
    fi
    if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
        echo "error: fuzz target $t found a failing input: $(ls artifacts/"$t")" >&2
        return 1
    fi
    rm -f "$log"
}
if [ "$target" = all ]; then
    for t in "${TARGETS[@]}"; do run_one "$t"; done
else
    run_one "$target"
fi
