#!/usr/bin/env bash
# E2B through the official SDK against airlock on this machine: Sandbox.create() to the first
# runCode result, with the same run's REST-session and cold-CLI baselines (bench/e2b_bench.mjs).
# Builds airlock, installs the pinned SDKs (tests/e2b/package-lock.json) when missing, prints a
# Markdown table. Extra arguments go to e2b_bench.mjs (e.g. --config-line 'warm_pool: []').
# usage: bench/e2b_bench.sh [ITERATIONS, default 40] [e2b_bench.mjs options...]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-40}
shift || true
scripts/build.sh >/dev/null
if [ ! -d tests/e2b/node_modules/@e2b/code-interpreter ]; then
  (cd tests/e2b && npm ci --no-audit --no-fund >/dev/null)
fi
exec node bench/e2b_bench.mjs --airlock build/airlock --iterations "$iterations" "$@"
