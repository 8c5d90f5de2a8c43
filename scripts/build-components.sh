#!/usr/bin/env bash
# Build the WebAssembly components (library, user-channel, graphql) into
# target/wasm32-wasip2/release, installing the wasm32-wasip2 target if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
(cd components && cargo build --release --locked 2>&1 || cargo build --release)
ls -l target/wasm32-wasip2/release/*.wasm
