#!/usr/bin/env bash
# Builds airlock with warnings as errors and runs every test through CTest: here (this machine's
# cgroups, v1 on our build machines), then again as root inside a throwaway VM with a pure
# cgroup-v2 kernel (scripts/cgroup2-vm.sh), where production hosts are. Arguments go to both ctest
# runs. AIRLOCK_SKIP_V2_VM=1 skips the VM stage for a quick local run; CI always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
CMAKE_ARGS="-DAIRLOCK_WERROR=ON ${CMAKE_ARGS:-}" scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j1 "$@")

if [[ ${AIRLOCK_SKIP_V2_VM:-} == 1 && ${CI:-} != true ]]; then
  echo "test.sh: skipping the cgroup-v2 VM stage (AIRLOCK_SKIP_V2_VM=1)" >&2
  exit 0
fi
echo "test.sh: the same tests under a cgroup-v2 kernel (scripts/cgroup2-vm.sh)" >&2
AIRLOCK_TEST_EXCLUSIVE=1 scripts/cgroup2-vm.sh --timeout 2700 -- \
  ctest --test-dir build --output-on-failure --timeout 600 -j1 "$@"
