#!/usr/bin/env bash
# 100,000 subscribed sockets on this machine across NODES cluster nodes (issue 13), every
# socket receiving its user's events. One nats-server; NODES realtime-host nodes (each
# process may open at most 20,000 files: NODES=7 puts about 14,300 sockets on each); one
# load generator per node (its own process, for the same limit), whose USERS_PER_NODE users
# each keep TABS tabs on that node and send their mutations to the next node, so that
# every event crosses nodes (the user's owner is where its first mutation landed). Each
# load generator reports its node's RSS before its tabs opened and once they were all
# subscribed, and its tabs' mutation-to-event latency.
# Usage: bench/cluster/scale.sh [--skip-build]   (NODES, USERS_PER_NODE, TABS, RATE, DURATION)
# Result: bench/results/cluster-scale.jsonl (one line per node) and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The load comes from loopback addresses: lift the per-address shares.
export REALTIME_MAX_SIGNUPS_PER_ADDRESS=1000000/1s REALTIME_MAX_CONNECTIONS_PER_ADDRESS=1000000 \
  REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS=1000000
NODES=${NODES:-7}
USERS_PER_NODE=${USERS_PER_NODE:-143}
TABS=${TABS:-100}
RATE=${RATE:-5}
DURATION=${DURATION:-20}
if [ "${1:-}" != --skip-build ]; then
  scripts/build-components.sh >&2
  cargo build --release -p realtime-host -p loadgen >&2
fi
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
HOST_BIN="$TARGET/release/realtime-host"
LOADGEN="$TARGET/release/loadgen"
WORK=$(mktemp -d /tmp/cluster-scale.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
BASE=${BENCH_PORT_BASE:-29700}
"$(scripts/nats-server.sh)" -js -a 127.0.0.1 -p "$BASE" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "Server is ready" "$WORK/nats.log" && break; sleep 0.05; done
mkdir -p "$WORK/components"
cp "$TARGET"/wasm32-wasip2/release/{library,user_channel,graphql}.wasm "$WORK/components/"
NODE_PIDS=()
for i in $(seq 1 "$NODES"); do
  "$HOST_BIN" serve --listen "127.0.0.1:$((BASE + i))" --data-dir "$WORK/node-$i" --components-dir "$WORK/components" \
    --cache-dir "$WORK/compiled" --cluster "nats://127.0.0.1:$BASE" --node-id "node-$i" \
    --max-connections 19500 --max-instances 2000 >"$WORK/node-$i.log" 2>&1 &
  PIDS+=($!)
  NODE_PIDS+=($!)
  # The first node compiles the components into the shared cache; the others load it.
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$((BASE + i))/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "== $NODES nodes up; signing up $((NODES * USERS_PER_NODE)) users" >&2
for i in $(seq 1 "$NODES"); do
  "$LOADGEN" signup --addr "127.0.0.1:$((BASE + i))" --system ours-cluster --tokens-file "$WORK/users-$i.tokens" \
    --users "$USERS_PER_NODE" --signup-concurrency 4 >/dev/null
done
echo "== $((NODES * USERS_PER_NODE * TABS)) sockets, $RATE mutations/s per node for ${DURATION}s" >&2
LOADGENS=()
for i in $(seq 1 "$NODES"); do
  next=$(( i % NODES + 1 ))
  "$LOADGEN" latency --addr "127.0.0.1:$((BASE + i))" --mutate-addr "127.0.0.1:$((BASE + next))" --system ours-cluster \
    --label "cluster-scale-node-$i" --server-pid "${NODE_PIDS[$((i - 1))]}" --tokens-file "$WORK/users-$i.tokens" \
    --users "$USERS_PER_NODE" --tabs "$TABS" --rate "$RATE" --duration "$DURATION" --warmup 5 \
    --connect-concurrency 16 --max-seconds 1200 --start-file "$WORK/start" >"$WORK/result-$i.json" 2>"$WORK/loadgen-$i.log" &
  LOADGENS+=($!)
done
# Every load starts once every generator has its tabs subscribed (connecting 100,000
# sockets keeps both cores busy; a load running meanwhile would measure that).
for _ in $(seq 1 12000); do
  ready=$(cat "$WORK"/loadgen-*.log 2>/dev/null | grep -c "\] ready$" || true)
  [ "$ready" -ge "$NODES" ] && break
  sleep 0.1
done
touch "$WORK/start"
FAILED=0
for pid in "${LOADGENS[@]}"; do wait "$pid" || FAILED=1; done
if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/; fi
mkdir -p bench/results
cat "$WORK"/result-*.json > bench/results/cluster-scale.jsonl
for i in $(seq 1 "$NODES"); do
  echo "node-$i: $(grep -c . "$WORK/node-$i.log") log lines, RSS now $(awk '/VmRSS/ {print $2 " kB"}' "/proc/${NODE_PIDS[$((i - 1))]}/status" 2>/dev/null)" >&2
done
node -e '
const lines = require("fs").readFileSync("bench/results/cluster-scale.jsonl", "utf8").trim().split("\n").map(JSON.parse);
const sum = (f) => lines.reduce((a, l) => a + (f(l) ?? 0), 0);
const sockets = sum((l) => l.sockets);
const grew = sum((l) => l.server_rss_subscribed - l.server_rss_before_tabs);
const p99s = lines.map((l) => l.event_latency?.p99_ms ?? l.event_latency?.p99).filter((x) => x != null);
console.log(JSON.stringify({
  nodes: lines.length, sockets, sockets_failed: sum((l) => l.sockets_failed), sockets_dropped: sum((l) => l.sockets_dropped),
  mutations_ok: sum((l) => l.mutations_ok), mutations_failed: sum((l) => l.mutations_failed),
  events_received: sum((l) => l.events_received), events_expected: sum((l) => l.events_expected), events_lost: sum((l) => l.events_lost),
  rss_bytes_per_socket: Math.round(grew / sockets), connect_s_max: Math.max(...lines.map((l) => l.connect_s)),
  event_p99_ms_worst_node: Math.max(...p99s), event_p99_ms_by_node: p99s,
}));'
exit $FAILED
