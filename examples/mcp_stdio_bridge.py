#!/usr/bin/env python3
"""A stdio bridge to airlock's MCP endpoint, for MCP hosts that can only start a local command
(they speak JSON-RPC over the command's stdin and stdout) and cannot take a URL. Standard library
only. Each line the host writes is one JSON-RPC message, POSTed to /mcp; each answer is written
back as one line (notifications get none). The Mcp-Session-Id the service gives is sent back.

    AIRLOCK_URL=http://127.0.0.1:8080 AIRLOCK_KEY=... python3 examples/mcp_stdio_bridge.py

mcp_stdio_config.json shows it in a host's config; hosts that take a URL need no bridge
(mcp_config.json). Errors of the transport (service down, a refused key) are answered as
JSON-RPC errors for requests, so the host sees them instead of waiting.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from airlock_client import AirlockClient  # noqa: E402

# JSON-RPC: "Internal error", for failures of the bridge or the transport behind it.
TRANSPORT_ERROR = -32603


class Bridge:
    def __init__(self, url, key):
        self.client = AirlockClient(url, key)
        self.session_id = None

    def post(self, line):
        """The service's answer to one message (a str, possibly empty)."""
        conn = self.client._connect()
        try:
            headers = self.client._headers(accept="application/json")
            if self.session_id:
                headers["Mcp-Session-Id"] = self.session_id
            conn.request("POST", self.client.prefix + "/mcp", body=line.encode(), headers=headers)
            response = conn.getresponse()
            self.session_id = response.getheader("Mcp-Session-Id") or self.session_id
            body = response.read().decode()
            if response.status >= 400 and not body.lstrip().startswith("{"):
                raise OSError(f"HTTP {response.status}: {body[:200]}")
            return body.strip()
        finally:
            conn.close()

    def answer(self, line):
        try:
            return self.post(line)
        except OSError as error:
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if not isinstance(message, dict) or "id" not in message:
                return ""  # a notification (or garbage): nothing to answer
            return json.dumps({"jsonrpc": "2.0", "id": message["id"],
                               "error": {"code": TRANSPORT_ERROR, "message": f"airlock: {error}"}})


def main():
    bridge = Bridge(os.environ.get("AIRLOCK_URL", "http://127.0.0.1:8080"), os.environ.get("AIRLOCK_KEY"))
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = bridge.answer(line.strip())
        if answer:
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
