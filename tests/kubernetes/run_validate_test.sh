#!/usr/bin/env bash
# run_validate_test.sh SOURCE_DIR: validates deploy/kubernetes (the base and every overlay) with
# validate.mjs, then checks that each manifest under broken/ is refused with the message in its
# `expect` file, so a validator that passes everything fails here. Installs the validator's
# packages from the committed lockfile when a clean clone has none; skips (77) without node.
set -euo pipefail
source_dir=$(realpath "$1")
cd "$(dirname "$0")"
command -v node > /dev/null || { echo "SKIP: node is not installed"; exit 77; }
if [[ ! -d node_modules/kubernetes-models ]]; then
  npm ci --no-audit --no-fund
fi
validate() { node validate.mjs --metrics "$source_dir/api/metrics.cc" "$@"; }

dirs=("$source_dir/deploy/kubernetes/base")
for overlay in "$source_dir"/deploy/kubernetes/overlays/*/; do dirs+=("${overlay%/}"); done
validate "${dirs[@]}"

failed=0
for fixture in broken/*/; do
  fixture=${fixture%/}
  expected=$(cat "$fixture/expect")
  if output=$(validate "$fixture" 2>&1); then
    echo "FAIL: $fixture was accepted"; failed=1
  elif [[ $output != *"$expected"* ]]; then
    echo "FAIL: $fixture was refused without \"$expected\":"; echo "$output"; failed=1
  else
    echo "$fixture: refused as expected ($expected)"
  fi
done
exit $failed
