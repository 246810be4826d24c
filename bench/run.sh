#!/usr/bin/env bash
# Runs airlock's benchmarks side by side with bare execution and bubblewrap, on this machine.
# usage: bench/run.sh [RUNS]     (default 60 interleaved rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
command -v bwrap >/dev/null || apt-get install -y -qq bubblewrap >/dev/null
scripts/build.sh >/dev/null
echo "## spawn: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)"
./build/bench/spawn_bench --runs "${1:-60}" --airlock ./build/airlock
