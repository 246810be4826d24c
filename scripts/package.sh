#!/usr/bin/env bash
# Builds airlock (scripts/build.sh), then the Debian package: build/airlock_<version>_<arch>.deb.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
cpack -G DEB
ls -l ./*.deb
