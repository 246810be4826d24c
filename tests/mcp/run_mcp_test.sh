#!/usr/bin/env bash
# Installs the MCP SDK from the committed lockfile when a clean clone has none, then runs the
# client test against the given airlock binary.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@modelcontextprotocol/sdk ]; then
  npm ci --no-audit --no-fund
fi
exec node mcp_client_test.mjs "$1"
