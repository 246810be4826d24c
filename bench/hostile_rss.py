"""The service's memory under the worst request mix the security review found: unauthenticated
16 MB uploads, sparse files returned by the hundred, deeply nested MCP bodies, a thousand idle
connections. Starts its own `airlock serve` on loopback, samples its RSS while the mix runs, and
prints the idle and peak RSS. Usage: hostile_rss.py AIRLOCK_BINARY [--rounds N]."""

import argparse
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
from serve_support import Server, base_config  # noqa: E402

UPLOAD_BYTES = 16_000_000


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def upload_without_key(port):
    """Announces 16 MB, then sends it, as a stranger would."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\n"
                         + f"Content-Length: {UPLOAD_BYTES}\r\n\r\n".encode())
            chunk = b"x" * 65536
            sent = 0
            while sent < UPLOAD_BYTES:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.recv(4096)
    except OSError:
        pass  # the service may answer and close before the body is sent: that is the point


def sparse_files(server):
    code = "for i in range(100):\n    open(f's{i:03}.bin', 'wb').truncate(1 << 20)\n"
    server.request("POST", "/v1/executions",
                   {"language": "python", "code": code, "output": {"files": ["*.bin"]}})


def deep_mcp(server):
    deep = "[" * 100000 + "]" * 100000
    body = ('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + deep + '}}').encode()
    try:
        server.request("POST", "/mcp", body, headers={"Content-Type": "application/json"})
    except OSError:
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("airlock")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=["uploads", "files", "mcp", "idle"],
                        help="run one part of the mix")
    args = parser.parse_args()
    server = Server(args.airlock, base_config(max_body_size="16MiB", max_queued=16,
                                              recent_results=256))
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(server.process.pid))
            time.sleep(0.02)

    try:
        time.sleep(0.5)
        idle = rss_kib(server.process.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        for _ in range(args.rounds):
            part = args.only
            idle_socks = [socket.create_connection(("127.0.0.1", server.port))
                          for _ in range(1030 if part in (None, "idle") else 0)]
            work = [threading.Thread(target=upload_without_key, args=(server.port,))
                    for _ in range(40 if part in (None, "uploads") else 0)]
            work += [threading.Thread(target=sparse_files, args=(server,))
                     for _ in range(4 if part in (None, "files") else 0)]
            work += [threading.Thread(target=deep_mcp, args=(server,))
                     for _ in range(2 if part in (None, "mcp") else 0)]
            for thread in work:
                thread.start()
            for thread in work:
                thread.join(timeout=600)
            for sock in idle_socks:
                sock.close()
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        after = rss_kib(server.process.pid)
        print(json.dumps({"idle_rss_mib": round(idle / 1024, 1),
                          "peak_rss_mib": round(peak / 1024, 1),
                          "after_rss_mib": round(after / 1024, 1),
                          "rounds": args.rounds, "seconds": round(elapsed, 1)}))
    finally:
        server.close()


if __name__ == "__main__":
    main()
