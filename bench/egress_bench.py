"""egress_bench.py AIRLOCK SOURCE_DIR [--megabytes N] [--rounds N]: what airlock's egress
gateway costs (issue 16). In a network namespace of its own (nothing leaves loopback), an
upstream on 127.0.0.2 serves N MB; the same python code downloads it

  direct:  on the host, straight from the upstream (the baseline, same run)
  gateway: inside `airlock run` under a policy with egress, by name through airlock's DNS

and times, over --rounds connections each, a connection's setup up to its first response byte.
Prints medians and the gateway/direct ratios. Never run by CTest."""

import atexit
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading

if os.environ.get("AIRLOCK_EGRESS_BENCH_NETNS") != "1":
    os.execvpe("unshare", ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                           sys.executable, *sys.argv],
               dict(os.environ, AIRLOCK_EGRESS_BENCH_NETNS="1"))

AIRLOCK, SOURCE = sys.argv[1:3]
options = dict(zip(sys.argv[3::2], sys.argv[4::2]))
MEGABYTES = int(options.get("--megabytes", "100"))
ROUNDS = int(options.get("--rounds", "200"))
CHUNK = b"x" * (1 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        size = MEGABYTES << 20 if self.path == "/big" else 1
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while size > 0:
                part = CHUNK[:min(size, len(CHUNK))]
                self.wfile.write(part)
                size -= len(part)
        except ConnectionError:  # a latency round reads one byte and goes
            pass

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()

# The client both sides run: one big download, then ROUNDS small requests, each on a new
# connection (its setup, request and first byte). Prints JSON.
CLIENT = r"""
import json, socket, sys, time
host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def get(path):
    s = socket.create_connection((host, port))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: bench.test\r\n\r\n")
    return s
downloads = []
for _ in range(5):
    start = time.perf_counter()
    s, total = get(b"/big"), 0
    while True:
        data = s.recv(1 << 20)
        if not data:
            break
        total += len(data)
    downloads.append(time.perf_counter() - start)
latencies = []
for _ in range(rounds):
    start = time.perf_counter()
    s = get(b"/small")
    s.recv(1)
    latencies.append((time.perf_counter() - start) * 1000)
    s.close()
print(json.dumps({"bytes": total, "seconds": downloads, "latencies_ms": latencies}))
"""

tmp = tempfile.mkdtemp(prefix="airlock-egress-bench-")
atexit.register(shutil.rmtree, tmp, True)
client_path = os.path.join(tmp, "client.py")
with open(client_path, "w") as f:
    f.write(CLIENT)
with open(os.path.join(tmp, "config.yaml"), "w") as f:
    f.write("egress:\n  hosts:\n    bench.test: 127.0.0.2:%d\n" % server.server_address[1])
os.mkdir(os.path.join(tmp, "policies"))
with open(os.path.join(tmp, "policies", "egress-bench.yaml"), "w") as f:
    f.write("""extends: python
limits: {wall_time: 300s, cpu_time: 300s}
egress:
  allow:
    - {domain: bench.test, ports: [80], reason: the benchmark's upstream}
  max_bytes: 8GiB
  max_connections: 10000
""")
env = dict(os.environ, AIRLOCK_RUNTIMES=os.path.join(SOURCE, "runner", "runtimes.yaml"),
           AIRLOCK_POLICY_DIR=os.path.join(tmp, "policies") + ":" + os.path.join(SOURCE, "policies"))

direct = json.loads(subprocess.run(
    ["/usr/bin/python3", client_path, "127.0.0.2", str(server.server_address[1]), str(ROUNDS)],
    capture_output=True, text=True, check=True).stdout)
done = subprocess.run(
    [AIRLOCK, "run", "--json", "--config", os.path.join(tmp, "config.yaml"), "--policy",
     "egress-bench", "--file", client_path, "--runtime", "python", "-c",
     "import runpy, sys; sys.argv = ['client.py', 'bench.test', '80', '%d']; "
     "runpy.run_path('client.py')" % ROUNDS],
    capture_output=True, text=True, env=env)
result = json.loads(done.stdout)
if result["status"] != "ok":
    sys.exit("the gateway run failed: %s\n%s" % (result["summary"], result["stderr"]))
gateway = json.loads(result["stdout"])


def report(name, figures):
    mb_per_s = figures["bytes"] / statistics.median(figures["seconds"]) / (1 << 20)
    return mb_per_s, statistics.median(figures["latencies_ms"])


direct_rate, direct_latency = report("direct", direct)
gateway_rate, gateway_latency = report("gateway", gateway)
print("%d MB downloaded 5 times (median), then %d new connections (median setup + first byte)"
      % (MEGABYTES, ROUNDS))
print("  direct   %8.1f MB/s   %6.3f ms" % (direct_rate, direct_latency))
print("  gateway  %8.1f MB/s   %6.3f ms" % (gateway_rate, gateway_latency))
print("  gateway/direct: throughput %.2fx, latency +%.3f ms (%.2fx)" % (
    gateway_rate / direct_rate, gateway_latency - direct_latency,
    gateway_latency / direct_latency))
print("  gateway counted: %s" % json.dumps({k: v for k, v in result["usage"].items()
                                           if k.startswith("network")}))
