#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR: `cmake --install` into a fresh prefix, then run the
# installed airlock (run, serve, a session, the warm pool) in a mount namespace where tmpfs
# covers the build and source trees, so that any path into them that airlock still used fails.
# The checks themselves are installed_test.py, copied out of the source tree first.
set -euo pipefail
build=$(realpath "$1")
source=$(realpath "$2")
here=$(dirname "$(realpath "$0")")

if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: needs root (a mount namespace, cgroups and uid maps)"
  exit 77
fi

work=$(mktemp -d /tmp/airlock-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Sandboxed programs run as another user and reach the drivers and working dirs in here.
chmod 755 "$work"
prefix=$work/prefix

# Stripped, as the .deb ships it: debug information keeps the build's paths.
cmake --install "$build" --prefix "$prefix" --strip > "$work/install.log"
echo "installed into $prefix:"
(cd "$prefix" && find . -type f -o -type l | sort)

mkdir "$work/test"
cp "$here/installed_test.py" "$source/tests/api/serve_support.py" "$work/test/"

# The build tree first: it may lie inside the source tree, which the second mount covers.
unshare --mount --propagation private -- /bin/sh -ec '
  mount -t tmpfs -o size=64k,mode=0755 airlock-hidden "$2"
  [ "$2" = "$3" ] || mount -t tmpfs -o size=64k,mode=0755 airlock-hidden "$3"
  exec /usr/bin/python3 "$1/test/installed_test.py" "$1/prefix" "$1/state" "$2" "$3"
' hide "$work" "$build" "$source"
