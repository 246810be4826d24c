#!/usr/bin/env bash
# Installs missing dependencies, then configures and builds airlock into build/ (binary: build/airlock).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
