#!/usr/bin/env bash
# airlock's execution API with curl. Start a server first (`airlock serve`), then:
#   AIRLOCK_URL=http://127.0.0.1:8080 AIRLOCK_KEY=your-key examples/curl.sh
set -euo pipefail
url=${AIRLOCK_URL:-http://127.0.0.1:8080}
auth=()
[[ -n ${AIRLOCK_KEY:-} ]] && auth=(-H "Authorization: Bearer $AIRLOCK_KEY")

echo "# What can run here, and under which policies"
curl -sS "${auth[@]}" "$url/v1/runtimes"; echo
curl -sS "${auth[@]}" "$url/v1/policies"; echo

echo "# Run code; the answer is the result (status, exit_code, stdout, stderr, summary, ...)"
curl -sS "${auth[@]}" -H 'Content-Type: application/json' "$url/v1/executions" -d '{
  "runtime": "python",
  "code": "import sys\nprint(sum(range(10)))\nprint(\"to stderr\", file=sys.stderr)",
  "limits": {"wall_time": "5s", "memory": "128MiB"},
  "output": {"max_bytes": 4096}
}'; echo

echo "# Stream output as it is written (server-sent events: started, stdout, stderr, file, exit)"
curl -sS -N "${auth[@]}" -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
  "$url/v1/executions" -d '{"runtime":"bash","code":"for i in 1 2 3; do echo tick $i; sleep 1; done"}'

echo "# Files in (utf-8 or base64) and out (by glob)"
curl -sS "${auth[@]}" -H 'Content-Type: application/json' "$url/v1/executions" -d '{
  "runtime": "bash",
  "code": "sort data.txt > sorted.txt",
  "files": [{"path": "data.txt", "content": "pear\napple\nfig\n"}],
  "output": {"files": ["*.txt"]}
}'; echo

echo "# Health and metrics need no key"
curl -sS "$url/healthz"; echo
curl -sS "$url/metrics" | grep '^airlock_executions_total' || true
