#!/usr/bin/python3
"""Latency and throughput of one snippet at several concurrencies, airlock side by side with the
baselines, in one run. Prints a Markdown table.

Each variant runs the snippet back to back from N client threads for a fixed time: requests/s is
what the N together got through, p50/p90/p99 are per request. Variants:
  bare        the interpreter or program started directly (subprocess), no sandbox
  bwrap       the same under bubblewrap --unshare-all (when /usr/bin/bwrap exists)
  nsjail      the same under nsjail (when nsjail is on PATH)
  cold, warm  POST /v1/executions to `airlock serve` without and with a warm pool
The client is Python for every variant, so its own cost (~0.5 ms a request here) is in every row.

usage: latency.py --cold-port P --warm-port P [--seconds S] [--concurrency 1,2,8] [--cases ...]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import threading
import time

CPU_50MS = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.05:\n    pass\n"
CASES = {
    # name: (API language, code, command line for the baselines)
    "/bin/true": ("sh", "exec /bin/true", ["/bin/true"]),
    "python print(1)": ("python", "print(1)", ["/usr/bin/python3", "-c", "print(1)"]),
    "node console.log(1)": ("node", "console.log(1)", ["/usr/bin/node", "-e", "console.log(1)"]),
    "python 50 ms CPU": ("python", CPU_50MS, ["/usr/bin/python3", "-c", CPU_50MS]),
}
BWRAP = ["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--ro-bind", "/etc", "/etc", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib",
         "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
         "--tmpfs", "/tmp"]


def nsjail_prefix():
    path = shutil.which("nsjail")
    if not path:
        return None
    return [path, "-q", "-Mo", "--disable_proc", "-R", "/usr", "-R", "/lib", "-R", "/lib64",
            "-R", "/bin", "-R", "/etc", "--"]


def command_runner(argv):
    def run():
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return done.returncode == 0
    return run


def api_runner(port, language, code, key=None):
    """A runner that POSTs one execution over a connection of its thread's own."""
    local = threading.local()
    body = json.dumps({"language": language, "code": code})
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    def run():
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            local.connection.request("POST", "/v1/executions", body, headers)
            response = local.connection.getresponse()
            result = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError):
            local.connection.close()
            del local.connection
            return False
        return response.status == 200 and result.get("status") == "ok"
    return run


def measure(run, concurrency, seconds):
    """Runs `run` back to back from `concurrency` threads for `seconds`."""
    latencies, failures = [], [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        mine, failed = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = run()
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                mine.append(elapsed)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0
    return {"rps": len(latencies) / wall, "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99),
            "n": len(latencies), "failures": failures[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-port", type=int, required=True)
    parser.add_argument("--warm-port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", default="1,2,8")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    nsjail = nsjail_prefix()

    print("| snippet | variant | concurrency | requests/s | p50 ms | p90 ms | p99 ms | failures |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in args.cases.split(","):
        language, code, argv = CASES[case]
        variants = [("bare", command_runner(argv))]
        if os.access(BWRAP[0], os.X_OK):
            variants.append(("bwrap", command_runner(BWRAP + argv)))
        if nsjail:
            variants.append(("nsjail", command_runner(nsjail + argv)))
        variants.append(("airlock cold", api_runner(args.cold_port, language, code)))
        if language in ("python", "node"):  # the runtimes with a warm pool
            variants.append(("airlock warm", api_runner(args.warm_port, language, code)))
        for concurrency in levels:
            for name, run in variants:
                run()  # warm caches and connections
                r = measure(run, concurrency, args.seconds)
                print(f"| {case} | {name} | {concurrency} | {r['rps']:.1f} | {r['p50']:.1f} | "
                      f"{r['p90']:.1f} | {r['p99']:.1f} | {r['failures']} |", flush=True)


if __name__ == "__main__":
    main()
