#!/usr/bin/env bash
# Build everything (release) and run every benchmark scenario against all three systems
# side by side -- Library Realtime (ours), the Node.js graphql-ws reference, and the
# native Rust async-graphql peer -- then write BENCHMARKS.md.
#
#   bench/run.sh            full run (a few minutes after the builds)
#   bench/run.sh --short    smoke run: small counts, a few seconds each, asserts no timing
#   bench/run.sh --short --debug   the same with the dev-profile binaries (what scripts/test.sh runs)
#
# Options: --skip-build (use what is built), --debug (dev-profile binaries), --systems "ours node native",
#          --scenarios "idle-memory latency fanout wake swap restart live-memory idle-memory-3tabs
#          fanout-all fanout-3tabs fanout-all-3tabs signup-burst", --out FILE (default BENCHMARKS.md,
#          or bench/results/BENCHMARKS-short.md with --short).
# Everything runs on 127.0.0.1; every load loop is bounded in count and time. Each scenario
# gets a freshly started server (our server keeps its data dir, and so its accounts,
# across scenarios, so users are signed up -- argon2 -- only once); the restart scenario
# stops that server (SIGTERM) and starts it again before the load. See bench/NOTES.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMAND="bench/run.sh $*"
# The load comes from one address (127.0.0.1): lift our server's per-address shares.
export REALTIME_MAX_SIGNUPS_PER_ADDRESS=1000000/1s REALTIME_MAX_CONNECTIONS_PER_ADDRESS=1000000 \
  REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS=1000000

MODE=full
BUILD=1
PROFILE=release
SYSTEMS="ours node native"
SCENARIOS="idle-memory latency fanout wake swap restart live-memory idle-memory-3tabs fanout-all fanout-3tabs fanout-all-3tabs signup-burst"
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --short) MODE=short ;;
    --skip-build) BUILD=0 ;;
    --debug) PROFILE=debug ;;
    --systems) SYSTEMS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

if [ -z "$OUT" ]; then
  if [ "$MODE" = short ]; then OUT="$ROOT/bench/results/BENCHMARKS-short.md"; else OUT="$ROOT/BENCHMARKS.md"; fi
fi

# Up to 15,000 sockets on each side, in separate processes, each under its own limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 16000 ] && [ "$MODE" = full ]; then
  echo "bench: ulimit -n is $(ulimit -n); the idle-memory scenario needs ~15,100 files per process" >&2
fi

if [ "$BUILD" = 1 ]; then
  echo "== build ($PROFILE)" >&2
  scripts/build-components.sh >&2
  # The host on its own, so its dependencies' features are the same as in `cargo build -p
  # realtime-host` (scripts/test.sh) and that build is reused, not redone.
  flags=(); [ "$PROFILE" = release ] && flags=(--release)
  nice -n 10 cargo build "${flags[@]}" -p realtime-host >&2
  nice -n 10 cargo build "${flags[@]}" -p loadgen -p native-peer >&2
  (cd bench/peers/node && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# OURS_BIN and OURS_COMPONENTS (a directory with library.wasm, user_channel.wasm and
# graphql.wasm) run another build of our server, e.g. a baseline for a before/after A/B.
HOST_BIN="${OURS_BIN:-$TARGET/$PROFILE/realtime-host}"
LOADGEN="$TARGET/$PROFILE/loadgen"
NATIVE_BIN="$TARGET/$PROFILE/native-peer"
for bin in "$HOST_BIN" "$LOADGEN" "$NATIVE_BIN"; do
  [ -x "$bin" ] || { echo "bench: $bin is not built" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/library-bench.XXXXXX)
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Our server loads its own copy of the components, so a rebuild elsewhere in the checkout
# cannot hot-swap them in the middle of a run.
mkdir -p "$WORK/components" "$WORK/ours-data"
cp "${OURS_COMPONENTS:-$TARGET/wasm32-wasip2/release}"/{library,user_channel,graphql}.wasm "$WORK/components/"

# OURS_CLUSTER=1: our server runs as one node of a cluster (`--cluster`), on a nats-server
# started here for the run (bench/cluster-cost.sh compares it with the node standing alone).
OURS_CLUSTER_FLAGS=()
if [ "${OURS_CLUSTER:-0}" = 1 ]; then
  NATS_PORT=$(( ${BENCH_PORT_BASE:-28700} + 222 ))
  # NATS_SYNC=always: JetStream syncs every write before acknowledging it (docs/nats.conf).
  NATS_CONF=(); [ "${NATS_SYNC:-}" = always ] && NATS_CONF=(-c "$ROOT/docs/nats.conf")
  "$(scripts/nats-server.sh)" "${NATS_CONF[@]}" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
  NATS_PID=$!
  trap 'stop_server; kill "$NATS_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
  for _ in $(seq 1 100); do grep -q "Server is ready" "$WORK/nats.log" && break; sleep 0.05; done
  OURS_CLUSTER_FLAGS=(--cluster "nats://127.0.0.1:$NATS_PORT" --node-id bench)
fi

PORT_BASE=${BENCH_PORT_BASE:-28700}
port_of() { case "$1" in ours) echo $((PORT_BASE + 87));; node) echo $((PORT_BASE + 89));; native) echo $((PORT_BASE + 90));; esac; }

# start_server SYSTEM [extra flags for our server]
start_server() {
  local system=$1; shift
  local port; port=$(port_of "$system")
  local log="$WORK/$system.log"
  case "$system" in
    ours)
      "$HOST_BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/ours-data" \
        --components-dir "$WORK/components" "${OURS_CLUSTER_FLAGS[@]}" "$@" >>"$log" 2>&1 &
      ;;
    node)
      (cd bench/peers/node && exec node server.mjs --listen "127.0.0.1:$port") >>"$log" 2>&1 &
      ;;
    native)
      "$NATIVE_BIN" --listen "127.0.0.1:$port" >>"$log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "bench: $system exited; log:" >&2; tail -20 "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "bench: $system did not become healthy" >&2
  return 1
}

if [ "$MODE" = short ]; then
  IDLE_ARGS="--users 20 --tabs 5 --settle 2"
  LATENCY_ARGS="--users 50 --tabs 3 --rate 100 --duration 4 --warmup 1"
  FANOUT_ARGS="--users 10 --tabs 5 --mutators 5 --concurrency 2 --duration 3"
  WAKE_ARGS="--users 10 --rounds 2 --idle-wait 2"
  RESTART_ARGS="--users 50 --tabs 3 --rate 100 --duration 3"
  LIVE_ARGS="--users 30 --socket-users 30 --tabs 3 --settle 0.5"
  IDLE3_ARGS="--users 40 --tabs 3 --settle 1"
  BURST_ARGS="--users 40 --concurrency 32 --observe 1"
  FANOUT_ALL_ARGS="--users 10 --tabs 5 --mutators 10 --senders 4 --duration 1"
  FANOUT_3TABS_ARGS="--users 10 --tabs 3 --mutators 5 --concurrency 2 --duration 1"
  FANOUT_ALL_3TABS_ARGS="--users 10 --tabs 3 --mutators 10 --senders 4 --duration 1"
  MAX_SECONDS=120
else
  IDLE_ARGS="--users 1000 --tabs 15 --settle 15"
  LATENCY_ARGS="--users 1000 --tabs 3 --rate 1000 --duration 15 --warmup 3"
  FANOUT_ARGS="--users 100 --tabs 10 --mutators 10 --concurrency 4 --duration 10"
  WAKE_ARGS="--users 100 --rounds 5 --idle-wait 2.5"
  RESTART_ARGS="--users 1000 --tabs 3 --rate 1000 --duration 10"
  LIVE_ARGS="--users 300 --socket-users 1000 --tabs 3 --settle 2"
  IDLE3_ARGS="--users 2000 --tabs 3 --settle 15"
  BURST_ARGS="--users 2000 --concurrency 32 --observe 10"
  FANOUT_ALL_ARGS="--users 100 --tabs 10 --mutators 100 --senders 16 --duration 10"
  FANOUT_3TABS_ARGS="--users 100 --tabs 3 --mutators 10 --concurrency 4 --duration 10"
  FANOUT_ALL_3TABS_ARGS="--users 100 --tabs 3 --mutators 100 --senders 16 --duration 10"
  MAX_SECONDS=600
fi
# The swap scenario: the latency load while each component is replaced through the admin
# API. Each file gets a custom section appended, so it is a new version with a new digest
# (compiled afresh, as a real deploy would be), with the same code. Only our server swaps.
ADMIN_TOKEN=bench-admin
mkdir -p "$WORK/swap"
SWAP_ARGS="$LATENCY_ARGS --admin-token $ADMIN_TOKEN"
for c in library user_channel graphql; do
  cp "$WORK/components/$c.wasm" "$WORK/swap/$c.wasm"
  printf '\x00\x0c\x0abench-swap1' >>"$WORK/swap/$c.wasm"
  SWAP_ARGS="$SWAP_ARGS --component ${c/_/-}=$WORK/swap/$c.wasm"
done
# Our server evicts idle actors after this in the wake scenario (the default is 10s).
WAKE_IDLE_TIMEOUT=1s
# ... and in the live-memory scenario, not before the scenario is over.
LIVE_IDLE_TIMEOUT=120s

# scenario_args SCENARIO: sets CMD (the loadgen command) and ARGS. A variant of a command
# runs under its own name (--label), which is how the report tells them apart.
scenario_args() {
  case "$1" in
    idle-memory) CMD=idle-memory; ARGS=$IDLE_ARGS ;;
    idle-memory-3tabs) CMD=idle-memory; ARGS="$IDLE3_ARGS --label $1" ;;
    latency) CMD=latency; ARGS=$LATENCY_ARGS ;;
    # Right after the restart: no priming, every second recorded, at most 512 in flight.
    restart) CMD=latency; ARGS="$RESTART_ARGS --no-prime --warmup 0 --max-in-flight 512 --label $1" ;;
    fanout) CMD=fanout; ARGS=$FANOUT_ARGS ;;
    fanout-all) CMD=fanout; ARGS="$FANOUT_ALL_ARGS --label $1" ;;
    fanout-3tabs) CMD=fanout; ARGS="$FANOUT_3TABS_ARGS --label $1" ;;
    fanout-all-3tabs) CMD=fanout; ARGS="$FANOUT_ALL_3TABS_ARGS --label $1" ;;
    wake) CMD=wake; ARGS=$WAKE_ARGS ;;
    swap) CMD=swap; ARGS=$SWAP_ARGS ;;
    live-memory) CMD=live-memory; ARGS=$LIVE_ARGS ;;
    signup-burst) CMD=signup-burst; ARGS=$BURST_ARGS ;;
    *) echo "unknown scenario $1" >&2; exit 64 ;;
  esac
}

# users_needed "ARGS": the signed-up users a scenario's arguments use (--users + --socket-users).
users_needed() {
  local n=0
  # shellcheck disable=SC2086
  set -- $1
  while [ $# -gt 1 ]; do
    case "$1" in --users|--socket-users) n=$((n + $2)) ;; esac
    shift
  done
  echo "$n"
}

# server_flags SYSTEM SCENARIO: sets EXTRA, the flags our server runs with in that scenario.
server_flags() {
  EXTRA=()
  [ "$1" = ours ] || return 0
  case "$2" in
    wake) EXTRA=(--idle-timeout "$WAKE_IDLE_TIMEOUT") ;;
    live-memory) EXTRA=(--idle-timeout "$LIVE_IDLE_TIMEOUT") ;;
    swap) EXTRA=(--admin-token "$ADMIN_TOKEN") ;;
  esac
}

# restart_server SYSTEM [flags]: stop the running server (SIGTERM) and start it again; our
# server on the same data dir, a peer as a fresh process (its state lived in memory).
# Sets RESTARTED_AT_MS, the Unix time in ms just before the new process was started.
restart_server() {
  stop_server
  RESTARTED_AT_MS=$(date +%s%3N)
  start_server "$@"
}

mkdir -p bench/results
RESULTS="${BENCH_RESULTS:-bench/results/$MODE.jsonl}"
: >"$RESULTS"
FAILED=0

# Our server hashes passwords with argon2 (19 MiB each): sign every user up once, in a
# server process of its own, so no scenario's server carries that work or its memory.
# The signup-burst scenario signs up users of its own.
most=0
for scenario in $SCENARIOS; do
  scenario_args "$scenario"
  if [ "$CMD" = signup-burst ]; then continue; fi
  n=$(users_needed "$ARGS")
  if [ "$n" -gt "$most" ]; then most=$n; fi
done
if [[ " $SYSTEMS " == *" ours "* ]] && [ "$most" -gt 0 ]; then
  echo "== sign up $most users on our server" >&2
  start_server ours
  "$LOADGEN" signup --addr "127.0.0.1:$(port_of ours)" --system ours --tokens-file "$WORK/ours.tokens" \
    --users "$most" --max-seconds "$MAX_SECONDS" >&2
  stop_server
fi

for scenario in $SCENARIOS; do
  scenario_args "$scenario"
  for system in $SYSTEMS; do
    if [ "$scenario" = swap ] && [ "$system" != ours ]; then continue; fi
    echo "== $scenario: $system" >&2
    server_flags "$system" "$scenario"
    start_server "$system" "${EXTRA[@]}" || { FAILED=1; stop_server; continue; }
    restarted=()
    if [ "$scenario" = restart ]; then
      restart_server "$system" "${EXTRA[@]}" || { FAILED=1; stop_server; continue; }
      restarted=(--restarted-at-ms "$RESTARTED_AT_MS")
    fi
    tokens=()
    # In-memory peers sign up afresh; our server keeps its accounts, so reuse its tokens.
    if [ "$system" = ours ]; then tokens=(--tokens-file "$WORK/ours.tokens"); fi
    # shellcheck disable=SC2086
    if timeout $((MAX_SECONDS + 30)) "$LOADGEN" "$CMD" --addr "127.0.0.1:$(port_of "$system")" \
        --system "$system" --server-pid "$SERVER_PID" --max-seconds "$MAX_SECONDS" "${tokens[@]}" "${restarted[@]}" $ARGS \
        >"$WORK/line.json"; then
      cat "$WORK/line.json" | tee -a "$RESULTS"
    else
      echo "bench: $scenario against $system failed" >&2
      echo "{\"scenario\":\"$scenario\",\"system\":\"$system\",\"failed\":true}" >>"$RESULTS"
      FAILED=1
    fi
    stop_server
  done
done

"$LOADGEN" report --results "$RESULTS" --out "$OUT" --mode "$MODE" --command "$COMMAND" \
  --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --commit "$(git rev-parse --short HEAD 2>/dev/null || true)$(git diff --quiet HEAD -- host components wit bench/loadgen bench/peers bench/run.sh 2>/dev/null || echo ' + uncommitted changes')" \
  --notes bench/NOTES.md
echo "bench: wrote $OUT" >&2
if [ "$MODE" = short ]; then
  # The smoke check: every scenario produced a result for every system; no event was lost, no
  # mutation failed, no socket failed to open or was dropped, and every swap was installed.
  lines=$(grep -c '"scenario"' "$RESULTS" || true)
  if [ "$FAILED" != 0 ] || grep -q '"failed":true' "$RESULTS"; then echo "bench: smoke FAILED" >&2; exit 1; fi
  if grep -Eq '"events_lost":[1-9]' "$RESULTS"; then echo "bench: smoke FAILED: events lost" >&2; exit 1; fi
  if grep -Eq '"(mutations_failed|sockets_failed|sockets_dropped)":[1-9]' "$RESULTS"; then echo "bench: smoke FAILED: failed mutations, failed or dropped sockets" >&2; exit 1; fi
  if grep -o '"status":[0-9]*' "$RESULTS" | grep -vq '"status":200'; then echo "bench: smoke FAILED: a swap was refused" >&2; exit 1; fi
  echo "bench: smoke passed ($lines results)" >&2
fi
exit $FAILED
