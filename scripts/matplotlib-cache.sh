#!/usr/bin/env bash
# Builds matplotlib's font list ahead, into the read-only directory the python runtime reads it
# from (runner/drivers/python/sitecustomize.py; policies/default.yaml binds it): without it, every
# sandboxed run that draws text spends about a second building the list again.
# Usage: scripts/matplotlib-cache.sh [DIR]   (default /var/cache/airlock/matplotlib)
set -euo pipefail
dir=${1:-/var/cache/airlock/matplotlib}
version=$(/usr/bin/python3 -c 'import matplotlib; print(matplotlib.__version__)')
target="$dir/$version"
mkdir -p "$target"
# Built in a scratch directory and moved in whole, so a reader never sees half a file.
scratch=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
MPLCONFIGDIR="$scratch" /usr/bin/python3 -c 'import matplotlib.font_manager'
for built in "$scratch"/fontlist-*.json; do
  chmod 0644 "$built"
  mv -f "$built" "$target/"
done
chmod 0755 "$dir" "$target"
echo "matplotlib $version: font list in $target" >&2
