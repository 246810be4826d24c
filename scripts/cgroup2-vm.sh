#!/usr/bin/env bash
# Runs one command as root inside a throwaway VM with a real, pure cgroup-v2 kernel, and exits with
# its exit code. The machines we build on run cgroup v1; production hosts run v2, so CI tests the v2
# backend here. Everything comes from Debian packages: QEMU (TCG, no KVM needed), Debian's packaged
# kernel (downloaded and unpacked into a cache, never installed on this host) and busybox-static for
# a small initramfs. The VM sees this host's / read-only over virtio-9p with a tmpfs overlay on top,
# so the build tree is there at the same path and writable (writes vanish with the VM).
#
#   scripts/cgroup2-vm.sh [--timeout SECONDS] [--memory MIB] [--cpus N] [--systemd] -- COMMAND...
#
# COMMAND runs in the current directory (same path in the VM) with /sys/fs/cgroup a cgroup2 mount
# whose root enables the cpu, memory and pids controllers, loopback up, fresh /tmp and /run.
# With --systemd, the host's systemd boots as PID 1 and runs COMMAND as a service; otherwise COMMAND
# runs in the root cgroup under a plain init.
# Exit status: COMMAND's; 124 when the VM hit the timeout; 125 when the VM could not run it.
# AIRLOCK_VM_CACHE names the cache directory (default /var/cache/airlock-vm).
set -euo pipefail

timeout_seconds=1800
memory_mib=4096
cpus=2
systemd=0
while (($#)); do
  case "$1" in
    --timeout) timeout_seconds="$2"; shift 2 ;;
    --memory) memory_mib="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --systemd) systemd=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if ((!$#)); then
  echo "usage: $0 [--timeout SECONDS] [--memory MIB] [--cpus N] [--systemd] -- COMMAND..." >&2
  exit 2
fi

fail() { echo "cgroup2-vm: $*" >&2; exit 125; }
[[ $(id -u) -eq 0 ]] || fail "needs root (QEMU's 9p export of / must read every file as its owner)"
here="$(cd "$(dirname "$0")" && pwd)"
"$here/deps.sh" qemu-system-x86 busybox-static
cache="${AIRLOCK_VM_CACHE:-/var/cache/airlock-vm}"
mkdir -p "$cache"

# The modules the initramfs loads, dependencies first: virtio transport, 9p over virtio, overlay.
wanted_modules=(virtio_pci 9pnet_virtio 9p overlay)

# --- The kernel: Debian's current packaged one, unpacked once into the cache. --------------------
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
package="$(kernel_package)"
if [[ -z $package ]]; then
  apt-get update -qq >/dev/null 2>&1 || true
  package="$(kernel_package)"
fi
if [[ -z $package ]]; then
  # Offline with a warm cache: use the newest kernel already unpacked.
  package="$(ls -1 "$cache" 2>/dev/null | grep '^linux-image-' | sort -V | tail -1 || true)"
  [[ -n $package ]] || fail "cannot resolve linux-image-amd64 (apt-get update failed?)"
fi
kdir="$cache/$package"
if [[ ! -f $kdir/ready ]]; then
  echo "cgroup2-vm: fetching $package" >&2
  rm -rf "$kdir" && mkdir -p "$kdir/download"
  (cd "$kdir/download" && apt-get download -q "$package" >/dev/null 2>&1) ||
    fail "apt-get download $package failed"
  dpkg-deb -x "$kdir"/download/*.deb "$kdir/tree"
  rm -rf "$kdir/download"
  touch "$kdir/ready"
fi
version="${package#linux-image-}"
vmlinuz="$kdir/tree/boot/vmlinuz-$version"
moddir="$kdir/tree/lib/modules/$version/kernel"
[[ -f $vmlinuz ]] || fail "no kernel at $vmlinuz"

# --- The initramfs: busybox, the modules, and an init that mounts the shared root. -------------
module_path() { find "$moddir" -name "$1.ko" -print -quit; }
module_depends() { grep -a -o 'depends=[a-z0-9_,-]*' "$1" | head -1 | cut -d= -f2 | tr , ' '; }
declare -A visited=()
ordered=()
visit() {  # depth-first: a module's dependencies are loaded before it
  local name="$1" path
  [[ -n ${visited[$name]:-} ]] && return
  visited[$name]=1
  path="$(module_path "$name")"
  [[ -n $path ]] || return 0  # built into the kernel
  for dep in $(module_depends "$path"); do visit "$dep"; done
  ordered+=("$name")
}
stage1="$here/cgroup2-vm-init.sh"
# Named for what went into it, so that a change to these scripts or to busybox makes a new one.
initramfs="$kdir/initramfs-$(cat "$stage1" "$0" /bin/busybox | sha256sum | cut -c1-16).cpio.gz"
if [[ ! -f $initramfs ]]; then
  rm -f "$kdir"/initramfs-*.cpio.gz
  for m in "${wanted_modules[@]}"; do visit "$m"; done
  staging="$(mktemp -d)"
  mkdir -p "$staging"/{bin,modules,proc,sys,dev,lower,rw,newroot}
  cp /bin/busybox "$staging/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$staging/bin/$applet"
  done
  for m in "${ordered[@]}"; do cp "$(module_path "$m")" "$staging/modules/"; done
  printf '%s\n' "${ordered[@]}" >"$staging/modules/order"
  install -m 0755 "$stage1" "$staging/init"
  (cd "$staging" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$initramfs.tmp"
  mv "$initramfs.tmp" "$initramfs"
  rm -rf "$staging"
fi

# --- The job: what the VM runs, shared writable over 9p; the VM leaves its exit code there. -----
job="$(mktemp -d "$cache/job.XXXXXX")"
qemu_pid=""
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then kill -KILL "$qemu_pid" || true; fi
  rm -rf "$job"
}
trap cleanup EXIT
{
  echo '# Written by scripts/cgroup2-vm.sh: the command to run in the VM.'
  for var in CI AIRLOCK_TEST_EXCLUSIVE AIRLOCK_TEST_DEB CTEST_OUTPUT_ON_FAILURE; do
    [[ -n ${!var:-} ]] && printf 'export %s=%q\n' "$var" "${!var}"
  done
  # The VM's root is a tmpfs overlay on the host's read-only one, gone at power-off: tests that
  # install into / (tests/install/service_test.sh) run only where this is set.
  echo 'export AIRLOCK_THROWAWAY_ROOT=1'
  printf 'cd %q || exit 125\n' "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} >"$job/command"
# Where the command runs: kept visible in the VM even below /tmp or /run, which get fresh tmpfs.
printf '%s\n' "$PWD" >"$job/workdir"
install -m 0755 "$here/cgroup2-vm-stage2.sh" "$job/stage2"
((systemd)) && touch "$job/systemd"

# --- Boot. ------------------------------------------------------------------------------------------
started=$(date +%s)
qemu-system-x86_64 \
  -machine q35 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory_mib" \
  -nographic -no-reboot -nic none \
  -kernel "$vmlinuz" -initrd "$initramfs" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
  -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=root,mount_tag=root \
  -fsdev local,id=job,path="$job",security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=job,mount_tag=job \
  </dev/null > >(stdbuf -oL tr -d '\r') 2>&1 &
qemu_pid=$!
deadline=$((started + timeout_seconds))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if (($(date +%s) >= deadline)); then
    kill -KILL "$qemu_pid" || true
    wait "$qemu_pid" 2>/dev/null || true
    echo "cgroup2-vm: timed out after ${timeout_seconds}s" >&2
    exit 124
  fi
  sleep 1
done
wait "$qemu_pid" || true
qemu_pid=""
sleep 0.2  # let tr flush the last console lines
[[ -f $job/rc ]] || fail "the VM stopped without running the command (see the console above)"
rc="$(cat "$job/rc")"
echo "cgroup2-vm: exit $rc after $(($(date +%s) - started))s (boot $(cat "$job/boot_seconds" 2>/dev/null || echo '?')s)" >&2
exit "$rc"
