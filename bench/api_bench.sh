#!/usr/bin/env bash
# The execution API under load, side by side with the baselines, in one run (bench/latency.py):
# /bin/true, python print(1), node console.log(1) and 50 ms of python CPU, at concurrency 1, 2
# and 8; bare, bubblewrap (nsjail when on PATH), airlock with every run cold, and airlock with a
# warm pool (docs/warm_pool.md): python sandboxes forked from a fork server, node sandboxes
# started fresh. Then an agent's pace: 100 requests at 10 per second over one connection
# (bench/paced_latency.py), python and node.
# Prints Markdown tables.
# usage: bench/api_bench.sh [SECONDS per row, default 5] [WARM POOL SIZE, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
warm_size=${2:-4}
command -v bwrap >/dev/null || apt-get install -y -qq bubblewrap >/dev/null
scripts/build.sh >/dev/null

work=$(mktemp -d)
chmod 755 "$work"
servers=()
trap 'for s in "${servers[@]}"; do kill "$s" 2>/dev/null; wait "$s" 2>/dev/null; done; rm -rf "$work"' EXIT
start_server() {  # name, extra config lines -> sets $port
  printf 'listen: 127.0.0.1:0\nmax_queued: 256\n%s\n' "$2" > "$work/$1.yaml"
  ./build/airlock serve --config "$work/$1.yaml" 2> "$work/$1.log" &
  servers+=($!)
  for _ in $(seq 100); do
    port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$work/$1.log" | grep -o '[0-9]*$' || true)
    [[ -n "$port" ]] && return
    sleep 0.1
  done
  cat "$work/$1.log" >&2
  exit 1
}
start_server cold "warm_pool: []"
cold=$port
start_server warm "warm_pool: [{runtime: python, policy: default, size: $warm_size}, {runtime: node, policy: default, size: 2}]"
warm=$port
sleep 2  # let the pool fill

echo "## API: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
/usr/bin/python3 bench/latency.py --cold-port "$cold" --warm-port "$warm" --seconds "$seconds"
echo
echo "| one connection, 10 requests/s | p50 ms | p90 ms | p99 ms |"
echo "|---|---:|---:|---:|"
for language in python node; do
  code='print(1)'
  [[ $language == node ]] && code='console.log(1)'
  for name in cold warm; do
    port=$cold
    [[ $name == warm ]] && port=$warm
    line=$(/usr/bin/python3 bench/paced_latency.py "$port" "$language" "$code" --rate 10 --count 100)
    echo "| $language $code, $name | $(sed -E 's/.*p50 ([0-9.]+) ms, p90 ([0-9.]+) ms, p99 ([0-9.]+) ms.*/\1 | \2 | \3/' <<< "$line") |"
  done
done
echo
echo "Warm pool after the run:"
curl -s "http://127.0.0.1:$warm/metrics" | grep -E '^airlock_warm_pool_' | sed 's/^/    /'
echo "Service resident memory, idle cold service: $(grep VmRSS /proc/"${servers[0]}"/status | awk '{print $2, $3}')"
