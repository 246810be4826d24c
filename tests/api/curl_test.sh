#!/usr/bin/env bash
# Integration test of `airlock serve` with curl: JSON, SSE, auth. Usage: curl_test.sh AIRLOCK.
set -euo pipefail
airlock=$1
dir=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

chmod 755 "$dir"  # the sandboxed program runs as another user and must reach its dir
mkdir "$dir/state"
cat >"$dir/serve.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $dir/state
api_keys:
  - name: curl
    sha256: $(printf %s curl-key | sha256sum | cut -d' ' -f1)
    policies: [default]
YAML
"$airlock" serve --config "$dir/serve.yaml" 2>"$dir/log" &
server_pid=$!

port=
for _ in $(seq 600); do  # up to a minute for the port to appear in the log
  port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$dir/log")
  [[ -n $port ]] && break
  kill -0 "$server_pid" || { cat "$dir/log"; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "no port in the log"; cat "$dir/log"; exit 1; }
url=http://127.0.0.1:$port
auth=(-H "Authorization: Bearer curl-key")
failures=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2], got [$3]"; failures=$((failures + 1)); fi
}

body=$(curl -sS "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"language":"bash","code":"echo hello from bash"}' "$url/v1/executions")
check "JSON execution status" '"ok"' "$(grep -o '"status":"[a-z_]*"' <<<"$body" | head -1 | cut -d: -f2)"
check "JSON execution stdout" '"hello from bash\n"' "$(grep -o '"stdout":"[^"]*"' <<<"$body" | cut -d: -f2-)"

stream=$(curl -sS -N "${auth[@]}" -H 'Accept: text/event-stream' -H 'Content-Type: application/json' \
  -d '{"language":"python","code":"print(1)\nprint(2)"}' "$url/v1/executions")
check "SSE opens with started" "event: started" "$(grep '^event:' <<<"$stream" | head -1)"
check "SSE ends with exit" "event: exit" "$(grep '^event:' <<<"$stream" | tail -1)"
check "SSE has one final event" 1 "$(grep -c '^event: \(exit\|error\)$' <<<"$stream")"

check "a form post (curl -d's default type) is 415" 415 "$(curl -s -o /dev/null -w '%{http_code}' \
  "${auth[@]}" -d '{"language":"bash","code":"echo hi"}' "$url/v1/executions")"
check "no key is 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' -d '{}' "$url/v1/executions")"
check "healthz is open" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")"
big=$(head -c 20000000 /dev/zero | tr '\0' 'x')
check "a huge body is 413" 413 "$(printf '{"language":"python","code":"%s"}' "$big" |
  curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" --data-binary @- "$url/v1/executions")"

kill -TERM "$server_pid"
wait "$server_pid"
check "SIGTERM exits 0" 0 $?
server_pid=
echo "$((9 - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
