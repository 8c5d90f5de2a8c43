#!/usr/bin/env bash
# Build everything (components, web app, host) and start the server on 127.0.0.1:8787
# (flags are passed through): open http://127.0.0.1:8787 in two tabs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-components.sh >/dev/null
scripts/build-web.sh >/dev/null
cargo build --release -p realtime-host
exec target/release/realtime-host serve "$@"
