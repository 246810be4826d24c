#!/usr/bin/env bash
# Requests per second and p50/p99 latency of POST /v1/executions, measured with wrk against a
# local `airlock serve`, at concurrency 1 and 8, for /bin/true (run by sh's exec: the API takes a
# language) and python print(1), with every run cold and then with a warm pool of python
# sandboxes (docs/warm_pool.md). Prints a Markdown table.
# usage: bench/api_bench.sh [SECONDS per case, default 10] [WARM POOL SIZE, default 4]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
warm_size=${2:-4}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
scripts/build.sh >/dev/null

work=$(mktemp -d)
chmod 755 "$work"
server=""
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
start_server() {  # extra config lines -> sets $port
  printf 'listen: 127.0.0.1:0\nmax_queued: 64\n%s\n' "$1" > "$work/config.yaml"
  ./build/airlock serve --config "$work/config.yaml" 2> "$work/serve.log" &
  server=$!
  port=""
  for _ in $(seq 100); do
    port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$work/serve.log" | grep -o '[0-9]*$' || true)
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$work/serve.log" >&2; exit 1; }
  sleep 2  # let a warm pool fill before measuring
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; }

request() {  # language, code -> a wrk script posting that request
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"language": "$1", "code": "$2"}'
LUA
}

echo "| request | pool | concurrency | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---:|---:|---:|---:|---:|"
for pool in cold warm; do
  extra=""
  [[ "$pool" == warm ]] && extra="warm_pool: [{runtime: python, policy: default, size: $warm_size}]"
  start_server "$extra"
  for case in "sh|exec /bin/true|/bin/true" "python|print(1)|python print(1)"; do
    IFS='|' read -r language code label <<< "$case"
    [[ "$pool" == warm && "$language" != python ]] && continue
    request "$language" "$code"
    for connections in 1 8; do
      threads=$(( connections < 2 ? 1 : 2 ))
      out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" \
            "http://127.0.0.1:$port/v1/executions")
      rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
      ms() { awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.1f", v}' <<< "$out"; }
      errors=$(awk '/Non-2xx/ {print $NF}' <<< "$out")
      echo "| $label | $pool | $connections | $rps | $(ms 50%) | $(ms 99%) | ${errors:-0} |"
    done
  done
  # An agent's pace (one call, then thinking): what a warm pool is for.
  paced=$(/usr/bin/python3 bench/paced_latency.py "$port" python 'print(1)' --rate 5 --count 100)
  echo "paced, $pool: $paced" >&2
  if [[ "$pool" == warm ]]; then
    curl -s "http://127.0.0.1:$port/metrics" | grep -E '^airlock_warm_pool_(hits|misses)_total' >&2
  fi
  stop_server
done
