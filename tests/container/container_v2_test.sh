#!/usr/bin/env bash
# container_v2_test.sh SOURCE_DIR IMAGE_TAR: airlock's image under podman on a cgroup v2 host, the
# way production runs it: a user namespace (the container's root is an unprivileged id), a private
# cgroup namespace whose cgroup is delegated to the container's root and mounted writable
# (--security-opt unmask=/sys/fs/cgroup), no --privileged. CI runs it inside the cgroup v2 VM
# (scripts/test.sh) on the image container_test saved on the host (the VM reaches no registry or
# mirror to build one). Checks /healthz and /readyz, a python run (limits in force: a memory hog
# ends memory_limit), a refused unshare, that runs leave no cgroup behind, and exit 0 on SIGTERM.
# Skips (77) without root, podman, cgroup v2 or the image.
set -euo pipefail
source_dir=$(realpath "$1")
image_tar=$2
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || skip "needs root (rootful podman: a user namespace per container)"
command -v podman > /dev/null || skip "podman is not installed"
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] || skip "not a cgroup v2 host (container_test covers v1)"
[[ -f $image_tar ]] || skip "no saved image at $image_tar (container_test writes it on the host)"

work=$(mktemp -d /tmp/airlock-container-v2.XXXXXX)
# Storage of its own: vfs works on any file system (the VM's root is an overlay).
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs --cgroup-manager cgroupfs
       --events-backend file)
name="airlock-v2-test-$$"
cleanup() {
  podman "${store[@]}" rm -f --time 0 "$name" > /dev/null 2>&1 || true
  podman "${store[@]}" system reset --force > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)
image=$(podman "${store[@]}" load -q -i "$image_tar" | sed -n 's/^Loaded image: //p' | head -1)
[[ -n $image ]] || fail "podman load gave no image"
echo "image $image loaded in $(($(date +%s) - started))s"

key="container-test-key"
cat > "$work/airlock.yaml" <<YAML
listen: 127.0.0.1:8080
api_keys:
  - name: test
    sha256: $(printf %s "$key" | sha256sum | cut -d' ' -f1)
    policies: ['*']
shutdown_grace: 5s
warm_pool: []
YAML
chmod 0755 "$work" && chmod 0644 "$work/airlock.yaml"

# The settings of docs/deploy.md, "Running it"; the API is reached from inside the container's
# own network namespace (podman exec), as a pod's localhost would be.
podman "${store[@]}" run -d --name "$name" --runtime crun \
  --uidmap 0:100000:65536 --gidmap 0:100000:65536 \
  --cap-drop=all --cap-add=sys_admin,setuid,setgid,kill,dac_override,fowner,chown,sys_resource \
  --security-opt seccomp="$source_dir/deploy/container/seccomp.json" \
  --security-opt no-new-privileges --security-opt unmask=/proc/* \
  --cgroupns=private --security-opt unmask=/sys/fs/cgroup \
  --read-only --network none \
  -v "$work/airlock.yaml:/etc/airlock/airlock.yaml:ro" "$image" > /dev/null

call() {  # call METHOD PATH [BODY]: prints "STATUS BODY"
  podman "${store[@]}" exec "$name" python3 -c '
import sys, urllib.request, urllib.error
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = urllib.request.Request("http://127.0.0.1:8080" + path, data=body, method=method,
    headers={"Authorization": "Bearer '"$key"'", "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=300) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
' "$@"
}
running() { [[ $(podman "${store[@]}" inspect -f '{{.State.Running}}' "$name" 2> /dev/null) == true ]]; }

for _ in $(seq 300); do
  running || { podman "${store[@]}" logs "$name" >&2 || true; fail "the container stopped"; }
  [[ $(call GET /healthz 2> /dev/null) == 200* ]] && break
  sleep 0.5
done
[[ $(call GET /readyz) == 200* ]] || { podman "${store[@]}" logs "$name" >&2; fail "/readyz"; }
backend=$(podman "${store[@]}" logs "$name" 2>&1 | sed -n 's/.*"msg":"serving".*"cgroup":"\([^"]*\)".*/\1/p')
echo "serving, cgroup backend: $backend"
[[ $backend == *2* || $backend == *v2* ]] || fail "airlock did not use cgroup v2 ($backend)"
# airlock moved itself into a leaf of the container's cgroup; its runs go under <cgroup>/airlock/.
leaf=$(podman "${store[@]}" inspect -f '{{.State.Pid}}' "$name" | xargs -I{} cat /proc/{}/cgroup | sed 's/^0:://')
container_cgroup="/sys/fs/cgroup${leaf%/airlock-supervisor-*}"
echo "the container's cgroup on the host: $container_cgroup"
[[ -d $container_cgroup/airlock ]] || { find "$container_cgroup" -type d; fail "no airlock/ in the container's cgroup"; }

result=$(call POST /v1/executions '{"runtime":"python","policy":"python","code":"import os\nprint(6*7, os.getuid())"}')
echo "python: $result"
[[ $result == 200* && $result == *'"status":"ok"'* && $result == *'42 1000'* ]] || fail "python run"
result=$(call POST /v1/executions '{"runtime":"python","code":"b = bytearray(2 << 30)\nprint(len(b))"}')
echo "memory hog: ${result:0:300}"
[[ $result == *'"status":"memory_limit"'* ]] || fail "the policy's memory limit was not enforced"
result=$(call POST /v1/executions '{"runtime":"python","code":"import ctypes\nprint(ctypes.CDLL(None).unshare(0x10000000))"}')
echo "unshare: ${result:0:300}"
[[ $result == *'"stdout":"-1\n"'* && $result == *'"syscall":"unshare"'* ]] ||
  fail "unshare in a sandbox was not refused and reported"
left=$(find "$container_cgroup/airlock" -mindepth 1 -type d -name 'run-*' | wc -l)
echo "run cgroups left under the container's cgroup: $left"
((left == 0)) || { find "$container_cgroup" -type d; fail "runs left cgroups behind"; }

podman "${store[@]}" stop --time 20 "$name" > /dev/null
code=$(podman "${store[@]}" inspect -f '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || { podman "${store[@]}" logs "$name" >&2; fail "exit $code after SIGTERM"; }
echo "stopped by SIGTERM with exit 0; $(($(date +%s) - started))s in all"
