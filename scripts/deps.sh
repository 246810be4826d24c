#!/usr/bin/env bash
# Installs the Debian 12 packages airlock builds, tests and benchmarks with; installs only what is missing.
# With arguments, ensures those packages instead (scripts/cgroup2-vm.sh asks for its own this way).
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libseccomp-dev libboost1.81-dev libyaml-cpp-dev libprotobuf-dev zlib1g-dev protobuf-compiler catch2
  libsystemd-dev
  curl bubblewrap sqlite3 python3
  python3-numpy python3-pandas python3-matplotlib python3-scipy  # the python runtime's data stack
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer harnesses
  podman mmdebstrap runc    # scripts/container.sh: the OCI image (runc: crun refuses hybrid cgroups)
  crun                      # tests/container/container_v2_test.sh: a user-namespaced container's
                            # cgroup v2 delegated to its root (runc 1.1 leaves it the host's)
  nginx                     # tests/balancer: replicas behind the shipped balancer config
)
if (($#)); then packages=("$@"); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

# Debian 12's python3-scipy depends on python3-pythran, the compiler its build used (scipy's
# installed modules never import it), and pythran on libboost-dev, which is Boost 1.74 and
# conflicts with the libboost1.81-dev airlock builds with. An empty local package that provides
# python3-pythran lets apt install scipy beside Boost 1.81; a real pythran would replace it.
provide_pythran() {
  dpkg-query -W -f='${Status}' python3-pythran 2>/dev/null | grep -q 'install ok installed' && return
  dpkg-query -W -f='${Status}' airlock-pythran-absent 2>/dev/null | grep -q 'install ok installed' && return
  local dir
  dir=$(mktemp -d)
  mkdir "$dir/pkg" "$dir/pkg/DEBIAN"
  cat >"$dir/pkg/DEBIAN/control" <<'CONTROL'
Package: airlock-pythran-absent
Version: 1.0
Architecture: all
Maintainer: airlock developers <airlock@localhost>
Provides: python3-pythran
Description: python3-scipy without pythran, beside libboost1.81-dev
 scipy's Debian package depends on pythran, which only its build uses; pythran needs
 libboost-dev (1.74), which conflicts with libboost1.81-dev. See airlock's scripts/deps.sh.
CONTROL
  dpkg-deb --build "$dir/pkg" "$dir/airlock-pythran-absent.deb" >/dev/null
  "${sudo_cmd[@]}" dpkg -i "$dir/airlock-pythran-absent.deb" >/dev/null
  rm -rf "$dir"
}

# The balancer test runs its own nginx on loopback; the package's system service (a web server on
# port 80) is neither started by the install nor enabled for the next boot.
without_nginx_service() {
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    added=1
  fi
  "$@"
  local status=$?
  ((added)) && "${sudo_cmd[@]}" rm -f "$policy"
  if command -v systemctl >/dev/null && [[ -e /lib/systemd/system/nginx.service ]]; then
    "${sudo_cmd[@]}" systemctl disable --quiet nginx.service 2>/dev/null || true
  fi
  return $status
}

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  [[ " ${missing[*]} " == *" python3-scipy "* ]] && provide_pythran
  "${sudo_cmd[@]}" apt-get update -qq
  install=("${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}")
  if [[ " ${missing[*]} " == *" nginx "* ]]; then
    without_nginx_service "${install[@]}" >/dev/null
  else
    "${install[@]}" >/dev/null
  fi
fi

# matplotlib's font list, built ahead for the python runtime's sandboxes (read-only there).
if ((!$#)); then
  "${sudo_cmd[@]}" "$(dirname "$0")/matplotlib-cache.sh"
fi
