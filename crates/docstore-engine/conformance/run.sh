#!/usr/bin/env bash
# Serves the docstore engine on a loopback port (examples/serve.rs) and drives
# it with the official azure-cosmos Python SDK (sdk_conformance.py).
# Needs: cargo, python3 with `pip install azure-cosmos`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${DOCSTORE_PORT:-18081}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-docstore}"
cargo build -q -p docstore-engine --example serve
work="$(mktemp -d)"
key="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')"
DOCSTORE_KEY="$key" DOCSTORE_ADDR="127.0.0.1:$port" DOCSTORE_DB="$work/store.sqlite" \
  "$CARGO_TARGET_DIR/debug/examples/serve" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  grep -q listening "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
COSMOS_ENDPOINT="http://127.0.0.1:$port" COSMOS_KEY="$key" python3 "$here/sdk_conformance.py"
