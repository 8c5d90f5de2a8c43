#!/usr/bin/env bash
# What `sync_interval: always` costs (issue 23): our server as one cluster node on a local
# nats-server with JetStream's default (sync every two minutes) and with `always`
# (docs/nats.conf: every write synced before it is acknowledged), alternately, ROUNDS times
# each (default 2; SCENARIOS overrides "fanout latency"), on one release build. Results:
# bench/results/nats-sync-cost.jsonl, each line tagged with its variant. Restores
# bench/results/full.jsonl after.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
SCENARIOS=${SCENARIOS:-"fanout latency"}
WORK=$(mktemp -d /tmp/nats-sync-cost.XXXXXX)
trap 'cp "$WORK/full.jsonl" bench/results/full.jsonl 2>/dev/null || true; rm -rf "$WORK"' EXIT
cp bench/results/full.jsonl "$WORK/full.jsonl"
OUT=bench/results/nats-sync-cost.jsonl
: > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for variant in default always; do
    sync=""
    [ "$variant" = always ] && sync=always
    OURS_CLUSTER=1 NATS_SYNC=$sync bench/run.sh --skip-build --scenarios "$SCENARIOS" --systems ours --out "$WORK/report.md" >&2
    sed "s/^{/{\"variant\":\"$variant\",\"round\":$round,/" bench/results/full.jsonl >> "$OUT"
  done
done
echo "bench: $OUT" >&2
