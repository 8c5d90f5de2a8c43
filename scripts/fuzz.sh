#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, stable Rust) of what clients send: graphql-ws frames as
# the user-channel component parses them, and GraphQL requests as the graphql component
# prepares and executes them. Usage: scripts/fuzz.sh [seconds per target, default 60].
# Each target first replays fuzz/regressions/<target>/ (inputs that once failed), then runs
# from the seed corpus fuzz/corpus/<target>/ for the given time. A finding fails the run and
# is left in target/fuzz/findings/<target>/: copy it into fuzz/regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
TARGETS=(graphql_ws_message graphql_request)
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
# Instrument the targets (not build scripts: hence the explicit --target) for libFuzzer.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
(cd fuzz && cargo build --release --locked --target "$TRIPLE" --target-dir ../target/fuzz 2>&1 \
  || cargo build --release --target "$TRIPLE" --target-dir ../target/fuzz)
for target in "${TARGETS[@]}"; do
  bin="target/fuzz/$TRIPLE/release/$target"
  regressions=(fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $target: replaying ${#regressions[@]} regression inputs"
    "$bin" "${regressions[@]}"
  fi
  work="target/fuzz/corpus/$target"
  findings="target/fuzz/findings/$target"
  mkdir -p "$work" "$findings"
  echo "== $target: fuzzing for ${SECONDS_PER_TARGET}s"
  "$bin" "$work" "fuzz/corpus/$target" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 2>&1 | tail -n 12
done
