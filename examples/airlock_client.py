#!/usr/bin/env python3
"""A client for airlock's execution API using only Python's standard library.

As a library:
    client = AirlockClient("http://127.0.0.1:8080", api_key="...")
    result = client.run("python", "print(6 * 7)")           # waits for the result
    for event in client.stream("python", code):              # server-sent events as they happen
        ...
    saved = save_files(result, "out/")                       # files the run returned, decoded

    session = client.create_session("python")                # state kept between calls
    client.upload(session["id"], "data.csv", b"a,b\n1,2\n")
    client.run_in(session["id"], "import csv; rows = list(csv.reader(open('data.csv')))")
    client.run_in(session["id"], "print(rows)")
    client.download(session["id"], "data.csv")              # bytes
    client.close_session(session["id"])

The URL may be https:// and may carry a path prefix, for a service behind a reverse proxy:
    AirlockClient("https://gateway.example.com/airlock", api_key="...")

From the shell:
    airlock_client.py --url http://127.0.0.1:8080 --key KEY --lang python --code 'print(1)'
    airlock_client.py ... --stream --lang bash --code 'for i in 1 2 3; do echo $i; sleep 1; done'
"""

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import urllib.parse


class AirlockError(Exception):
    """An error answer from the service: HTTP status plus the body's error object."""

    def __init__(self, status, error):
        self.status = status
        self.error = error
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")


class AirlockClient:
    def __init__(self, url, api_key=None, timeout=300, ssl_context=None):
        """url: http:// or https://, with an optional path prefix (".../airlock"). ssl_context:
        for https, e.g. ssl.create_default_context(cafile=...) for a private CA."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the URL takes no query or fragment: {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")  # every API path is appended to it
        self.api_key = api_key
        self.timeout = timeout
        self.ssl_context = ssl_context or (ssl.create_default_context() if self.https else None)

    def _connect(self):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self, accept="application/json", content_type="application/json"):
        headers = {"Accept": accept, "Content-Type": content_type}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _send(self, method, path, data=None, content_type="application/json"):
        """(status, body bytes); error answers raise AirlockError."""
        conn = self._connect()
        try:
            conn.request(method, self.prefix + path, body=data,
                         headers=self._headers(content_type=content_type))
            response = conn.getresponse()
            payload = response.read()
            if response.status >= 400:
                try:
                    error = json.loads(payload).get("error", {})
                except ValueError:  # e.g. a proxy's own HTML error page
                    error = {"code": "http_error", "message": payload[:200].decode("utf-8", "replace")}
                raise AirlockError(response.status, error)
            return response.status, payload
        finally:
            conn.close()

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        return json.loads(self._send(method, path, data)[1] or b"{}")

    @staticmethod
    def request_body(runtime, code, stdin="", files=None, policy="", limits=None, output=None):
        """An ExecutionRequest. files: {path: str or bytes}; bytes are sent as base64."""
        body = {"runtime": runtime, "code": code, "stdin": stdin, "policy": policy}
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

    def run(self, runtime, code, **options):
        """Runs code and returns the result (a dict: status, exit_code, stdout, summary, ...)."""
        return self._call("POST", "/v1/executions", self.request_body(runtime, code, **options))

    def stream(self, runtime, code, **options):
        """Yields (event name, event dict) as the program runs; the last is exit or error."""
        conn = self._connect()
        try:
            body = json.dumps(self.request_body(runtime, code, **options)).encode()
            conn.request("POST", self.prefix + "/v1/executions", body=body,
                         headers=self._headers("text/event-stream"))
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

    def version(self):
        return self._call("GET", "/version")

    # Sessions: one sandbox, interpreter and working directory kept between calls.

    def create_session(self, runtime, policy="", idle_timeout=None, max_lifetime=None):
        body = {"runtime": runtime, "policy": policy}
        if idle_timeout:
            body["idle_timeout"] = idle_timeout  # e.g. "5m"
        if max_lifetime:
            body["max_lifetime"] = max_lifetime
        return self._call("POST", "/v1/sessions", body)

    def run_in(self, session_id, code, **options):
        """Runs code in the session's interpreter; the same result as run(). Of limits, only
        wall_time and cpu_time apply (the session's sandbox keeps its policy's memory and
        processes: the service refuses those with a 400)."""
        body = self.request_body("", code, **options)
        del body["runtime"]  # the session's own
        return self._call("POST", f"/v1/sessions/{_quoted(session_id)}/executions", body)

    def session(self, session_id):
        return self._call("GET", f"/v1/sessions/{_quoted(session_id)}")

    def session_files(self, session_id):
        return self._call("GET", f"/v1/sessions/{_quoted(session_id)}/files")

    def upload(self, session_id, path, content):
        """Writes one file (str or bytes) into the session's working directory."""
        data = content.encode() if isinstance(content, str) else content
        self._send("PUT", f"/v1/sessions/{_quoted(session_id)}/files/{_quoted(path)}", data,
                   content_type="application/octet-stream")

    def download(self, session_id, path):
        """One file of the session's working directory, as bytes."""
        return self._send("GET", f"/v1/sessions/{_quoted(session_id)}/files/{_quoted(path)}")[1]

    def close_session(self, session_id):
        return self._call("DELETE", f"/v1/sessions/{_quoted(session_id)}")


def _quoted(path):
    return urllib.parse.quote(path, safe="/")


def file_bytes(file):
    """The content of one file of a result (`result["files"][i]`), decoded."""
    if file.get("encoding") == "base64":
        return base64.b64decode(file.get("content", ""))
    return file.get("content", "").encode()


def save_files(result, directory):
    """Writes the files a result returned under `directory`, keeping their relative paths but never
    leaving it; returns the paths written. Truncated files are skipped (their content is partial)."""
    root = os.path.realpath(directory)
    written = []
    for file in result.get("files", []):
        if file.get("truncated"):
            continue
        target = os.path.realpath(os.path.join(root, file["path"]))
        if os.path.commonpath([root, target]) != root:
            continue  # "../x" or an absolute path: not ours to write
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(file_bytes(file))
        written.append(target)
    return written


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
