#!/usr/bin/env bash
# The cost of cluster mode (issue 13), A/B on one release build: the fan-out and latency
# scenarios against our server standing alone, and as one node with `--cluster` on a local
# nats-server (every commit appended to JetStream before it is acknowledged, every event
# published on NATS), alternately, ROUNDS times each (default 2; SCENARIOS overrides
# "fanout latency"). Results: bench/results/cluster-cost.jsonl, each line tagged with its
# variant. Restores bench/results/full.jsonl after.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
SCENARIOS=${SCENARIOS:-"fanout latency"}
WORK=$(mktemp -d /tmp/cluster-cost.XXXXXX)
trap 'cp "$WORK/full.jsonl" bench/results/full.jsonl 2>/dev/null || true; rm -rf "$WORK"' EXIT
cp bench/results/full.jsonl "$WORK/full.jsonl"
OUT=bench/results/cluster-cost.jsonl
: > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for variant in alone cluster; do
    cluster=0
    [ "$variant" = cluster ] && cluster=1
    OURS_CLUSTER=$cluster bench/run.sh --skip-build --scenarios "$SCENARIOS" --systems ours --out "$WORK/report.md" >&2
    sed "s/^{/{\"variant\":\"$variant\",\"round\":$round,/" bench/results/full.jsonl >> "$OUT"
  done
done
echo "bench: $OUT" >&2
