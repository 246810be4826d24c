#!/usr/bin/env bash
# container_test.sh SOURCE_DIR BUILD_DIR: builds the image (scripts/container.sh, the base cached
# under /var/cache/airlock-container), runs it with podman the least-privileged way
# docs/deploy.md describes (no --privileged; the shipped seccomp profile), and checks on loopback
# that it answers /healthz and /readyz and runs python through the API; then SIGTERM stops it
# with exit 0. Removes its container and image (the base stays cached). Installs nothing:
# skips (77) without root, podman or mmdebstrap (scripts/deps.sh podman mmdebstrap installs them),
# and on cgroup v2 hosts, whose run is not written yet.
set -euo pipefail
source_dir=$(realpath "$1")
build_dir=$(realpath "$2")
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || skip "needs root (rootful podman: a user namespace per container)"
command -v podman > /dev/null || skip "podman is not installed (scripts/deps.sh podman mmdebstrap)"
command -v mmdebstrap > /dev/null || skip "mmdebstrap is not installed (scripts/deps.sh podman mmdebstrap)"
# Where production runs, cgroup v2: a user namespace and the container's own cgroup delegated to
# it writable (docs/deploy.md). That run is not written yet: no podman host on v2 to develop it on.
[[ $(stat -fc %T /sys/fs/cgroup) != cgroup2fs ]] ||
  skip "the cgroup v2 run (user namespace, delegated cgroup) is not written yet; this host has v2"

name="airlock-test-$$"
image="localhost/airlock-test:$$"
work=$(mktemp -d /tmp/airlock-container-test.XXXXXX)
cleanup() {
  podman rm -f --time 0 "$name" > /dev/null 2>&1 || true
  podman image rm -f "$image" > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

started=$(date +%s)
package="$work/package" && mkdir -p "$package"
(cd "$build_dir" && cpack -G DEB -B "$package" > "$package/cpack.log") || { cat "$package/cpack.log"; fail "cpack"; }
"$source_dir/scripts/container.sh" --deb "$(ls "$package"/airlock_*.deb)" --tag "$image" > /dev/null
echo "image built in $(($(date +%s) - started))s"

key="container-test-key"
config="$work/airlock.yaml"
cat > "$config" <<YAML
listen: 0.0.0.0:8080
api_keys:
  - name: test
    sha256: $(printf %s "$key" | sha256sum | cut -d' ' -f1)
    policies: ['*']
shutdown_grace: 5s
YAML
chmod 0755 "$work" && chmod 0644 "$config"

# The least privilege that works (docs/deploy.md, "Container"): every capability dropped but
# the few airlock uses, the shipped seccomp profile, /proc unmasked (each sandbox mounts its own),
# a private cgroup namespace, a read-only root. rlimits at most this host's (a host whose root
# lacks CAP_SYS_RESOURCE cannot raise them for the container; see scripts/container.sh).
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
args=(--cap-drop=all --cap-add=sys_admin,setuid,setgid,kill,dac_override,fowner,chown,sys_resource
      --security-opt seccomp="$source_dir/deploy/container/seccomp.json"
      --security-opt no-new-privileges --security-opt unmask=/proc/*
      --cgroupns=private --read-only
      --ulimit nofile="$nofile:$nofile" --ulimit nproc="$nproc:$nproc")
{
  # cgroup v1 (hybrid here): v1 cannot delegate a cgroup to a user namespace, so the container
  # keeps host ids (its capabilities still limited as above); crun refuses hybrid hosts, runc
  # does not; the cgroup parent made here is bound writable over each controller the container sees.
  parent="/airlock-test-$$"
  controllers=(memory pids cpu cpuacct)
  args+=(--runtime runc --cgroup-parent "$parent")
  for c in "${controllers[@]}"; do
    mkdir -p "/sys/fs/cgroup/$c$parent"
    args+=(-v "/sys/fs/cgroup/$c$parent:/sys/fs/cgroup/$c:rw")
  done
  # runc also makes the parent in the hybrid host's empty v2 mount: removed with the rest.
  remove_parent() {
    for c in "${controllers[@]}" unified; do
      find "/sys/fs/cgroup/$c$parent" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null || true
      rmdir "/sys/fs/cgroup/$c$parent" 2>/dev/null || true
    done
  }
  trap 'cleanup; remove_parent' EXIT
  echo "cgroup v1: host ids, runc, a writable cgroup parent bound in"
}
podman run -d --name "$name" "${args[@]}" \
  -v "$config:/etc/airlock/airlock.yaml:ro" \
  -p 127.0.0.1::8080 "$image" > /dev/null
port=$(podman port "$name" 8080/tcp | head -1 | sed 's/.*://')
[[ -n $port ]] || fail "no published port"
base="http://127.0.0.1:$port"

for _ in $(seq 100); do
  curl -fsS "$base/healthz" > /dev/null 2>&1 && break
  podman container exists "$name" && [[ $(podman inspect -f '{{.State.Running}}' "$name") == true ]] ||
    { podman logs "$name" >&2 || true; fail "the container stopped"; }
  sleep 0.2
done
curl -fsS "$base/healthz" > /dev/null || { podman logs "$name" >&2; fail "/healthz"; }
curl -fsS "$base/readyz" > /dev/null || { podman logs "$name" >&2; fail "/readyz"; }
echo "serving /healthz and /readyz on 127.0.0.1:$port"

result=$(curl -sS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  "$base/v1/executions" -d '{"runtime":"python","policy":"python","code":"import os\nprint(6*7, os.getuid())"}')
echo "python: $result"
[[ $result == *'"status":"ok"'* && $result == *'42 1000'* ]] || { podman logs "$name" >&2; fail "python run"; }
# A forbidden call is refused and reported by airlock's own filter, inside the container's.
result=$(curl -sS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  "$base/v1/executions" -d '{"runtime":"python","code":"import ctypes\nprint(ctypes.CDLL(None).unshare(0x10000000))"}')
echo "unshare: $result"
[[ $result == *'"stdout":"-1\n"'* && $result == *'"syscall":"unshare"'* ]] ||
  fail "unshare in a sandbox was not refused and reported"

podman stop --time 20 "$name" > /dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || { podman logs "$name" >&2; fail "exit $code after SIGTERM"; }
echo "stopped by SIGTERM with exit 0; $(($(date +%s) - started))s in all"
# For container_v2_test, which runs this image in the cgroup v2 VM (it can build none there).
mkdir -p "$build_dir/container"
rm -f "$build_dir/container/airlock-image.tar"
podman save -q -o "$build_dir/container/airlock-image.tar" "$image"
