#!/usr/bin/env python3
"""A client for airlock's execution API using only Python's standard library.

As a library:
    client = AirlockClient("http://127.0.0.1:8080", api_key="...")
    result = client.run("python", "print(6 * 7)")           # waits for the result
    for event in client.stream("python", code):              # server-sent events as they happen
        ...

From the shell:
    airlock_client.py --url http://127.0.0.1:8080 --key KEY --lang python --code 'print(1)'
    airlock_client.py ... --stream --lang bash --code 'for i in 1 2 3; do echo $i; sleep 1; done'
"""

import argparse
import base64
import http.client
import json
import sys
import urllib.parse


class AirlockError(Exception):
    """An error answer from the service: HTTP status plus the body's error object."""

    def __init__(self, status, error):
        self.status = status
        self.error = error
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")


class AirlockClient:
    def __init__(self, url, api_key=None, timeout=300):
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port or 80
        self.api_key = api_key
        self.timeout = timeout

    def _connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self, accept="application/json"):
        headers = {"Accept": accept, "Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _call(self, method, path, body=None):
        conn = self._connect()
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self._headers())
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
            if response.status >= 400:
                raise AirlockError(response.status, payload.get("error", {}))
            return payload
        finally:
            conn.close()

    @staticmethod
    def request_body(language, code, stdin="", files=None, policy="", limits=None, output=None):
        """An ExecutionRequest. files: {path: str or bytes}; bytes are sent as base64."""
        body = {"language": language, "code": code, "stdin": stdin, "policy": policy}
        body["files"] = []
        for path, content in (files or {}).items():
            if isinstance(content, bytes):
                encoded = base64.b64encode(content).decode()
                body["files"].append({"path": path, "content": encoded, "encoding": "base64"})
            else:
                body["files"].append({"path": path, "content": content})
        if limits:
            body["limits"] = limits  # e.g. {"wall_time": "5s", "memory": "128MiB"}
        if output:
            body["output"] = output  # e.g. {"max_bytes": 4096, "files": ["*.png"]}
        return body

    def run(self, language, code, **options):
        """Runs code and returns the result (a dict: status, exit_code, stdout, summary, ...)."""
        return self._call("POST", "/v1/executions", self.request_body(language, code, **options))

    def stream(self, language, code, **options):
        """Yields (event name, event dict) as the program runs; the last is exit or error."""
        conn = self._connect()
        try:
            body = json.dumps(self.request_body(language, code, **options)).encode()
            conn.request("POST", "/v1/executions", body=body, headers=self._headers("text/event-stream"))
            response = conn.getresponse()
            if response.status >= 400:
                raise AirlockError(response.status, json.loads(response.read()).get("error", {}))
            name, data = None, None
            while True:
                line = response.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line.startswith(":"):
                    continue  # a heartbeat
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                elif line == "" and name:
                    yield name, data
                    if name in ("exit", "error"):
                        return
                    name, data = None, None
        finally:
            conn.close()

    def get(self, execution_id):
        return self._call("GET", f"/v1/executions/{execution_id}")

    def cancel(self, execution_id):
        return self._call("DELETE", f"/v1/executions/{execution_id}")

    def runtimes(self):
        return self._call("GET", "/v1/runtimes")["runtimes"]

    def policies(self):
        return self._call("GET", "/v1/policies")["policies"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", default=None, help="API key (Authorization: Bearer)")
    parser.add_argument("--lang", default="python")
    parser.add_argument("--code", help="the code; read from stdin when omitted")
    parser.add_argument("--policy", default="")
    parser.add_argument("--stream", action="store_true", help="print output as it is written")
    args = parser.parse_args()
    code = args.code if args.code is not None else sys.stdin.read()
    client = AirlockClient(args.url, args.key)
    try:
        if args.stream:
            for name, event in client.stream(args.lang, code, policy=args.policy):
                if name in ("stdout", "stderr"):
                    out = sys.stdout if name == "stdout" else sys.stderr
                    out.write(event[name]["data"])
                    out.flush()
                elif name == "exit":
                    print(event["exit"]["result"]["summary"], file=sys.stderr)
                    return 0 if event["exit"]["result"]["status"] == "ok" else 1
                elif name == "error":
                    print(f"error: {event['error']['message']}", file=sys.stderr)
                    return 1
            return 1
        result = client.run(args.lang, code, policy=args.policy)
        print(json.dumps(result, indent=2))
        return 0 if result["status"] == "ok" else 1
    except AirlockError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
