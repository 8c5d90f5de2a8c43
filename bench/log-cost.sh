#!/usr/bin/env bash
# The cost of the event log (issue 12), A/B on one host build: the fan-out and latency
# scenarios against our server with library.wasm built as usual, and built with the
# `bench-without-log` feature (events keep a position but are not written to the log),
# alternately, ROUNDS times each (default 2; SCENARIOS overrides "fanout latency"). Results: bench/results/log-cost.jsonl, each line
# tagged with its variant. Restores the usual library.wasm and bench/results/full.jsonl after.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
SCENARIOS=${SCENARIOS:-"fanout latency"}
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BUILT="$TARGET/wasm32-wasip2/release/library.wasm"
WORK=$(mktemp -d /tmp/log-cost.XXXXXX)
trap 'cp "$WORK/library-log.wasm" "$BUILT" 2>/dev/null || true; cp "$WORK/full.jsonl" bench/results/full.jsonl 2>/dev/null || true; rm -rf "$WORK"' EXIT
cp bench/results/full.jsonl "$WORK/full.jsonl"
(cd components && cargo build --release -p library --features bench-without-log >&2)
cp "$BUILT" "$WORK/library-nolog.wasm"
(cd components && cargo build --release -p library >&2)
cp "$BUILT" "$WORK/library-log.wasm"
OUT=bench/results/log-cost.jsonl
: > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for variant in nolog log; do
    cp "$WORK/library-$variant.wasm" "$BUILT"
    bench/run.sh --skip-build --scenarios "$SCENARIOS" --systems ours --out "$WORK/report.md" >&2
    sed "s/^{/{\"variant\":\"$variant\",\"round\":$round,/" bench/results/full.jsonl >> "$OUT"
  done
done
echo "bench: $OUT" >&2
