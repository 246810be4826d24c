#!/usr/bin/env bash
# Installs the Debian 12 packages airlock builds, tests and benchmarks with; installs only what is missing.
# With arguments, ensures those packages instead (scripts/cgroup2-vm.sh asks for its own this way).
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libseccomp-dev libboost1.81-dev libyaml-cpp-dev libprotobuf-dev zlib1g-dev protobuf-compiler catch2
  libsystemd-dev
  curl bubblewrap sqlite3 python3
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer harnesses
  podman mmdebstrap runc    # scripts/container.sh: the OCI image (runc: crun refuses hybrid cgroups)
)
if (($#)); then packages=("$@"); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
