#!/usr/bin/env bash
# Build the Library web app into web/dist (served by realtime-host at /): install its npm
# packages as locked, generate the Relay artifacts from web/schema.graphql (a test keeps it
# equal to the served schema), bundle with Vite.
set -euo pipefail
cd "$(dirname "$0")/../web"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
