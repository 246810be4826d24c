#!/bin/busybox sh
# Stage 2 of scripts/cgroup2-vm.sh: PID 1 of the VM's root (the host's / under a tmpfs overlay).
# Mounts what a booted system has (pure cgroup2 at /sys/fs/cgroup), runs the job's command, leaves
# its exit code in the job share and powers off.
# Busybox by its path until /proc is ours: busybox re-executes itself through /proc/self/exe, and
# before the mount below that is the host's /proc seen over 9p, where it names QEMU's binary.
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
# The VM has no network: npm fails at once instead of retrying for minutes.
export npm_config_offline=true
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# The checkout may live below /tmp or /run (a CI clone): hold it aside, cover both with fresh
# tmpfs as a booted system has, then put it back at its own path.
workdir=$($bb cat /airlock-vm-job/workdir 2>/dev/null)
$bb mkdir -p /airlock-vm-workdir
[ -n "$workdir" ] && [ -d "$workdir" ] && $bb mount -o bind "$workdir" /airlock-vm-workdir
$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
$bb mount -t tmpfs -o mode=0755 tmpfs /run
case "$workdir" in
  /tmp/* | /run/*)
    $bb mkdir -p "$workdir"
    $bb mount -o bind /airlock-vm-workdir "$workdir"
    ;;
esac
# nsdelegate as systemd mounts it: a cgroup namespace's root is a delegation boundary.
$bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# The root cgroup hands cpu, memory and pids to its children, as systemd does at boot.
echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control
$bb ip link set lo up
$bb hostname airlock-v2-vm
$bb cut -d' ' -f1 /proc/uptime >/airlock-vm-job/boot_seconds
echo "cgroup2-vm: booted in $($bb cat /airlock-vm-job/boot_seconds)s, kernel $($bb uname -r), cgroup controllers: $($bb cat /sys/fs/cgroup/cgroup.controllers)"
if [ -f /airlock-vm-job/systemd ]; then
  # --systemd: systemd becomes PID 1 and runs the command as a service (in a cgroup it shares
  # with the shell that runs it, as a login session does), then powers off.
  $bb mkdir -p /etc/systemd/system
  $bb cat >/etc/systemd/system/airlock-vm-job.service <<'UNIT'
[Unit]
Description=scripts/cgroup2-vm.sh job
DefaultDependencies=no
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash /airlock-vm-job/command
ExecStopPost=/bin/sh -c 'echo $${EXIT_STATUS:-125} >/airlock-vm-job/rc; sync'
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
TimeoutStartSec=infinity
UNIT
  exec /lib/systemd/systemd --unit=airlock-vm-job.service --log-level=warning --show-status=false
fi
/bin/bash /airlock-vm-job/command </dev/null
echo $? >/airlock-vm-job/rc
$bb sync
$bb poweroff -f
