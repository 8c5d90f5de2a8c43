#!/usr/bin/env bash
# Build everything and start the server on 127.0.0.1:8787 (flags are passed through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-components.sh >/dev/null
cargo build --release -p realtime-host
exec target/release/realtime-host serve "$@"
