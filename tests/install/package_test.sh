#!/usr/bin/env bash
# package_test.sh BUILD_DIR: builds the .deb with CPack into a temporary directory and checks what
# it holds without installing it: the layout (/usr/bin, /etc/airlock, /usr/lib/airlock, the
# unit, the man page), every /etc file a conffile, the declared dependencies, the maintainer
# scripts, and no build or source path in the shipped binaries.
set -euo pipefail
build=$(realpath "$1")
work=$(mktemp -d /tmp/airlock-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log") || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/airlock_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||' > "$work/files"
for path in /usr/bin/airlock /etc/airlock/airlock.yaml /etc/airlock/runtimes.yaml \
            /etc/airlock/policies/default.yaml /usr/lib/airlock/libairlock_fork.so \
            /usr/lib/airlock/drivers/python_driver.py /usr/lib/systemd/system/airlock.service \
            /usr/share/man/man1/airlock.1.gz /usr/share/doc/airlock/README.md; do
  grep -qx "$path" "$work/files" || fail "$path is not in the package"
done
if grep -q '^/usr/local\|^/usr/etc' "$work/files"; then fail "files outside the /usr layout"; fi

dpkg-deb -e "$deb" "$work/control"
diff <(grep '^/etc/.*[^/]$' "$work/files" | sort) <(sort "$work/control/conffiles") ||
  fail "the files in /etc and the conffiles differ"
for script in postinst prerm postrm; do [[ -x $work/control/$script ]] || fail "no $script"; done
depends=$(dpkg-deb -f "$deb" Depends)
for needed in libsystemd0 libc6 python3; do
  [[ $depends == *"$needed"* ]] || fail "Depends lacks $needed: $depends"
done

dpkg-deb -x "$deb" "$work/root"
grep -q '^ExecStart=/usr/bin/airlock serve --config /etc/airlock/airlock.yaml$' \
  "$work/root/usr/lib/systemd/system/airlock.service" || fail "the unit's ExecStart"
grep -q '^ExecReload=/usr/bin/airlock serve --config /etc/airlock/airlock.yaml --check-config$' \
  "$work/root/usr/lib/systemd/system/airlock.service" || fail "the unit checks a config before a reload"
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
for binary in usr/bin/airlock usr/lib/airlock/libairlock_fork.so; do
  for path in "$build" "$source_dir"; do
    if grep -qF "$path" "$work/root/$binary"; then fail "$binary holds $path"; fi
  done
done
echo "ok: $(wc -l < "$work/files") entries; Depends: $depends"
