#!/usr/bin/env bash
# service_test.sh BUILD_DIR: the .deb as an operator meets it, under a real systemd. It builds the
# package with CPack, installs it with dpkg, and checks what the maintainer scripts and the unit
# do: installed but neither enabled nor started; `systemctl start` serves /healthz and runs code
# in a cgroup below the service's delegated one; reload (SIGHUP) keeps serving; an upgrade
# restarts a running service; stop leaves no cgroup, process or state dir behind; remove stops
# it and purge removes its config.
#
# It installs into the root filesystem, so it runs only where that root is thrown away after the
# run: the systemd stage of scripts/cgroup2-vm.sh, which sets AIRLOCK_THROWAWAY_ROOT=1 (its root is
# a tmpfs overlay on the host's read-only one). Anywhere else it skips (exit 77).
set -euo pipefail
build=$(realpath "$1")
skip() { echo "SKIP: $*"; exit 77; }
fail() {
  echo "FAIL: $*" >&2
  systemctl status --no-pager airlock.service >&2 || true
  journalctl --no-pager -u airlock.service -n 40 >&2 || true
  exit 1
}
[[ ${AIRLOCK_THROWAWAY_ROOT:-} == 1 ]] ||
  skip "installs a package into /; runs only in the systemd stage of scripts/cgroup2-vm.sh"
[[ -d /run/systemd/system ]] || skip "systemd is not the init system here"
[[ $(id -u) == 0 ]] || skip "dpkg and systemctl need root"

# Not /tmp: starting the first ordinary unit brings up sysinit.target, whose tmpfiles setup
# empties /tmp at boot.
work=$(mktemp -d /var/tmp/airlock-service-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# scripts/test.sh builds the package on the host before the VM starts (AIRLOCK_TEST_DEB), as a
# build machine would; CPack under the VM's emulated CPU takes minutes.
deb=${AIRLOCK_TEST_DEB:-}
if [[ -z $deb ]]; then
  (cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log") || { cat "$work/cpack.log"; fail "cpack"; }
  deb=$(ls "$work"/out/airlock_*.deb)
fi
[[ -f $deb ]] || fail "no package at $deb"

# The address of the shipped config (deploy/airlock.yaml).
url=http://127.0.0.1:8080
healthy() { curl -fsS --max-time 5 "$url/healthz" > /dev/null 2>&1; }
wait_healthy() {
  for _ in $(seq 120); do healthy && return 0; sleep 0.5; done
  fail "airlock.service did not answer /healthz within 60 s"
}
service_cgroup=/sys/fs/cgroup/system.slice/airlock.service
run_code() {
  curl -fsS --max-time 120 -H 'Content-Type: application/json' \
    -d '{"language":"python","code":"print(6*7)"}' "$url/v1/executions" > "$work/result.json" ||
    fail "POST /v1/executions"
  grep -q '"status":"ok"' "$work/result.json" || fail "the run: $(cat "$work/result.json")"
  grep -q '42' "$work/result.json" || fail "the run's output: $(cat "$work/result.json")"
}

# man-db's trigger rebuilds the whole manual index on every install: minutes under the VM's
# emulated CPU, and nothing this test reads (the throwaway root forgets it anyway).
rm -f /var/lib/man-db/auto-update
echo "installing $deb"
dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
[[ -x /usr/bin/airlock ]] || fail "/usr/bin/airlock is not installed"
# postinst makes the unit known and leaves starting it to the administrator.
[[ $(systemctl is-enabled airlock.service 2>&1 || true) == disabled ]] ||
  fail "installing enabled the service: $(systemctl is-enabled airlock.service 2>&1)"
systemctl is-active --quiet airlock.service && fail "installing started the service"
echo "ok: installed, not enabled, not started"

systemctl start airlock.service || fail "systemctl start"
wait_healthy
run_code
# The service's own cgroup is delegated: the run's cgroups were made below it, and removed.
[[ -d $service_cgroup ]] || fail "no cgroup $service_cgroup"
[[ $(systemctl show -p Delegate --value airlock.service) == yes ]] || fail "the unit is not delegated"
echo "ok: started; /healthz and a python run answered"

main_pid=$(systemctl show -p MainPID --value airlock.service)
systemctl reload airlock.service || fail "systemctl reload"
healthy || fail "/healthz after reload"
[[ $(systemctl show -p MainPID --value airlock.service) == "$main_pid" ]] ||
  fail "reload restarted the service instead of signalling it"
run_code
echo "ok: reloaded (SIGHUP) without a restart"

# An upgrade (the same package again) restarts a running service, unless policy-rc.d says no
# (exit 101), as it does in image builds and chroots (this machine's image ships one).
policy=/usr/sbin/policy-rc.d
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod 0755 "$policy"
dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i over itself"; }
[[ $(systemctl show -p MainPID --value airlock.service) == "$main_pid" ]] ||
  fail "an upgrade restarted the service although policy-rc.d forbids it"
rm -f "$policy"
dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i over itself"; }
systemctl is-active --quiet airlock.service || fail "the service is not running after an upgrade"
wait_healthy
[[ $(systemctl show -p MainPID --value airlock.service) != "$main_pid" ]] ||
  fail "an upgrade did not restart the running service"
run_code
echo "ok: an upgrade restarted the running service (and did not where policy-rc.d forbids it)"

systemctl stop airlock.service || fail "systemctl stop"
[[ -e /run/airlock ]] && fail "/run/airlock is left after stop: $(ls -la /run/airlock)"
if [[ -d $service_cgroup ]]; then
  left=$(find "$service_cgroup" -mindepth 1 -type d)
  [[ -z $left ]] || fail "cgroups left after stop: $left"
fi
echo "ok: stopped; no state dir and no cgroup left"

systemctl start airlock.service || fail "systemctl start before remove"
wait_healthy
dpkg -r airlock > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
systemctl is-active --quiet airlock.service && fail "removing the package left the service running"
[[ -e /usr/bin/airlock ]] && fail "/usr/bin/airlock is left after remove"
[[ -f /etc/airlock/airlock.yaml ]] || fail "remove (not purge) dropped the config"
dpkg -P airlock > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
for left in /etc/airlock /var/log/airlock /var/cache/airlock; do
  [[ -e $left ]] && fail "purge left $left: $(find "$left" | head)"
done
echo "ok: remove stopped the service; purge removed its config, logs and cache"
