#!/usr/bin/env bash
# run_validate_test.sh SOURCE_DIR [AIRLOCK]: validates deploy/kubernetes (the base and every
# overlay) with validate.mjs; with AIRLOCK, that binary checks the site policies the ConfigMap
# holds and starts `serve` on the config the pod would read (on loopback, port 0); then checks that each manifest under broken/ is refused with the message in its
# `expect` file, so a validator that passes everything fails here. nginx (scripts/deps.sh) checks
# the balancer's config as its pod assembles it. Installs the validator's
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
work=$(mktemp -d /tmp/airlock-kubernetes-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
validate --write-config "$work/config" "${dirs[@]}"

if [[ -n ${2:-} ]]; then
  airlock=$(realpath "$2")
  for out in "$work"/config/*/; do
    out=${out%/}
    AIRLOCK_POLICY_DIR="$source_dir/policies:$out/policies" "$airlock" policy check "$out"/policies/*.yaml
    # The pod's config with this machine's paths: loopback, any port, a private state dir.
    mkdir -p "$out/state" && chmod 0755 "$work" "$out" "$out/state"
    sed -e 's|^listen: .*|listen: 127.0.0.1:0|' -e "s|^state_dir: .*|state_dir: $out/state|" \
        -e "s|^policy_dirs: .*|policy_dirs: [$source_dir/policies, $out/policies]|" \
        "$out/airlock.yaml" > "$out/local.yaml"
    "$airlock" serve --config "$out/local.yaml" 2> "$out/serve.log" &
    pid=$!
    for _ in $(seq 100); do grep -q '"msg":"listening"' "$out/serve.log" && break; sleep 0.1; done
    kill -TERM "$pid" 2> /dev/null || true
    rc=0; wait "$pid" || rc=$?
    if ! grep -q '"msg":"listening"' "$out/serve.log" || ((rc != 0)); then
      cat "$out/serve.log"; echo "FAIL: airlock serve did not start on $out/airlock.yaml (exit $rc)"; exit 1
    fi
    echo "$out/airlock.yaml: airlock serve started on it and stopped with exit 0"
    # The balancer's config as its pod assembles it (deploy/balancer/entrypoint.sh, with a
    # cluster's resolv.conf), checked by nginx itself.
    mkdir -p "$out/balancer-conf"
    cp "$source_dir"/deploy/balancer/nginx.conf "$source_dir"/deploy/balancer/balancer.conf \
       "$out"/balancer/*.conf "$out/balancer-conf/"
    printf 'search airlock.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n' \
      > "$out/resolv.conf"
    PATH=$PATH:/usr/sbin AIRLOCK_BALANCER_CHECK=1 AIRLOCK_BALANCER_CONF="$out/balancer-conf" \
      AIRLOCK_BALANCER_RUN="$out/balancer-run" AIRLOCK_BALANCER_RESOLV_CONF="$out/resolv.conf" \
      "$source_dir/deploy/balancer/entrypoint.sh"
    echo "$out/balancer: nginx accepts the balancer's config"
  done
fi

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
