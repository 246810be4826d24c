#!/usr/bin/env bash
# Builds airlock with warnings as errors and runs every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
CMAKE_ARGS="-DAIRLOCK_WERROR=ON ${CMAKE_ARGS:-}" scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 -j1 "$@"
