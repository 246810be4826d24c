#!/usr/bin/env bash
# Installs the E2B SDKs from the committed lockfile when a clean clone has none, then runs the
# SDK test against the given airlock binary (the test starts `airlock serve` itself, on a free
# port, with a config and API keys of its own, and points E2B_API_URL/E2B_SANDBOX_URL at it).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/e2b ] || [ ! -d node_modules/@e2b/code-interpreter ]; then
  npm ci --no-audit --no-fund
fi
exec node e2b_sdk_test.mjs "$1"
