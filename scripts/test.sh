#!/usr/bin/env bash
# Builds airlock with warnings as errors and runs every test through CTest on this machine (its
# cgroups: v1 on our build machines); then runs the integration tests again as root inside a
# throwaway VM with a pure cgroup-v2 kernel (scripts/cgroup2-vm.sh), where production hosts are.
# Arguments go to the first ctest run. AIRLOCK_SKIP_V2_VM=1 skips the VM stage for a quick local
# run; CI always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
CMAKE_ARGS="-DAIRLOCK_WERROR=ON ${CMAKE_ARGS:-}" scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j1 "$@")

if [[ ${AIRLOCK_SKIP_V2_VM:-} == 1 && ${CI:-} != true ]]; then
  echo "test.sh: skipping the cgroup-v2 VM stage (AIRLOCK_SKIP_V2_VM=1)" >&2
  exit 0
fi
# The integration tests: the sandbox, the runner, the service, sessions and MCP, which use cgroups.
# Left out: unit tests of plain data (they do not touch the kernel and ran above), and the two
# that run every shipped language's hello world, compilers included: under the VM's emulated CPU
# g++ alone outlasts the runtimes' time limits. They ran above.
integration='^(sandbox|runner)[: _]|^(api_serve_test|api_curl_test|api_serve_ops_test|sessions_test|mcp_client_test)$'
every_language='hello world runs in every shipped language'
echo "test.sh: the integration tests under a cgroup-v2 kernel (scripts/cgroup2-vm.sh)" >&2
AIRLOCK_TEST_EXCLUSIVE=1 scripts/cgroup2-vm.sh --timeout 2700 -- \
  ctest --test-dir build --output-on-failure --timeout 600 -j1 -R "$integration" -E "$every_language"
# Once more under a real systemd as the VM's PID 1, where airlock started from a cgroup it shares
# asks systemd for a delegated scope over D-Bus.
echo "test.sh: the cgroup-v2 scenarios under systemd (scripts/cgroup2-vm.sh --systemd)" >&2
AIRLOCK_TEST_EXCLUSIVE=1 scripts/cgroup2-vm.sh --systemd --timeout 1200 -- \
  ctest --test-dir build --output-on-failure --timeout 600 -j1 -R '^sandbox_cgroup_v2_scenarios_test$'
