#!/usr/bin/env bash
# The allocator A/B (issue 21, bench/NOTES.md): release builds of this commit with glibc's
# malloc and with mimalloc (`--features mimalloc`), our server only, alternated twice.
# Results: bench/results/alloc-<glibc|mimalloc>-<round>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/allocator-ab
cargo build --release -p realtime-host --features mimalloc
cp target/release/realtime-host target/allocator-ab/mimalloc
cargo build --release -p realtime-host   # the default build is left in place
cp target/release/realtime-host target/allocator-ab/glibc
for round in 1 2; do
  for alloc in glibc mimalloc; do
    OURS_BIN=target/allocator-ab/$alloc BENCH_RESULTS=bench/results/alloc-$alloc-$round.jsonl \
      bench/run.sh --skip-build --systems ours --scenarios "fanout fanout-all-3tabs latency idle-memory-3tabs live-memory" \
      --out target/allocator-ab/$alloc-$round.md
  done
done
