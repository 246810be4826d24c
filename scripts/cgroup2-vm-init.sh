#!/bin/sh
# Stage 1 of scripts/cgroup2-vm.sh: /init of its initramfs (busybox). Loads the virtio, 9p and
# overlay modules, mounts the host's / (read-only, 9p tag "root") under a tmpfs overlay, mounts the
# job share (tag "job") inside it and hands over to the job's stage 2 as PID 1 of the new root.
export PATH=/bin
die() { echo "cgroup2-vm init: $*"; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
  insmod "/modules/$module.ko" || die "insmod $module failed"
done </modules/order
nine_p="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$nine_p,ro" root /lower || die "mounting the host root over 9p failed"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  die "the overlay on the host root failed"
mkdir -p /newroot/airlock-vm-job
mount -t 9p -o "$nine_p" job /newroot/airlock-vm-job || die "mounting the job share failed"
umount /proc /sys
umount /dev
exec switch_root /newroot /bin/busybox sh /airlock-vm-job/stage2
