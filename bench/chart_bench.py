#!/usr/bin/python3
"""What an agent's most common request costs: a pandas DataFrame and a matplotlib line chart
saved as PNG, through the execution API, against the same script run bare in the same run.
Prints a Markdown table (medians, p90, ratio to bare python).

Variants, interleaved round by round so that noise from the shared machine hits all alike:
  bare   /usr/bin/python3 chart.py, no sandbox (matplotlib's font cache already built)
  bwrap  the same under bubblewrap --unshare-all (when /usr/bin/bwrap exists)
  warm   POST /v1/executions to `airlock serve` with no warm_pool setting: the built-in python
         pool, forked from a fork server that has the data stack imported and a chart drawn
  cold   the same request to a service with `warm_pool: []`: a fresh sandbox and interpreter
Requests are paced (--pause, default 0.3 s) as an agent sends them, so a used warm sandbox is
replaced before the next request, and each returns the PNG (output.files).

usage: chart_bench.py AIRLOCK_BINARY [--rounds N] [--pause SECONDS]
"""
import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
import serve_support  # noqa: E402  (its Prometheus parser)

CHART = """\
import pandas as pd
import matplotlib.pyplot as plt

frame = pd.DataFrame({"day": range(60), "visits": [(d * 37) % 101 for d in range(60)]})
frame["mean"] = frame["visits"].rolling(7, min_periods=1).mean()
frame.plot(x="day", y=["visits", "mean"], title="visits per day")
plt.savefig("chart.png")
"""
BWRAP = ["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--ro-bind", "/etc", "/etc", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib",
         "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
         "--tmpfs", "/tmp"]


class Service:
    """One `airlock serve` on a free loopback port, with extra config lines."""

    def __init__(self, airlock, work, name, extra):
        self.log_path = os.path.join(work, name + ".log")
        config = os.path.join(work, name + ".yaml")
        state = os.path.join(work, name + "-state")
        os.mkdir(state)
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:0\nstate_dir: {state}\n{extra}")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([airlock, "serve", "--config", config],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self.log)
        self.port = None
        for _ in range(600):
            with open(self.log_path) as f:
                for line in f:
                    record = json.loads(line) if line.startswith("{") else {}
                    if record.get("msg") == "listening":
                        self.port = record["port"]
            if self.port or self.process.poll() is not None:
                break
            time.sleep(0.1)
        if not self.port:
            raise SystemExit(f"{name}: airlock serve did not start; see {self.log_path}")
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.usage = []  # (wall ms, cpu ms) the service measured for each run
        self.failures = []  # summaries of the runs that did not return a chart

    def get(self, path):
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        return response.read().decode()

    def chart(self):
        body = json.dumps({"runtime": "python", "code": CHART, "output": {"files": ["*.png"]}})
        self.connection.request("POST", "/v1/executions", body=body,
                                headers={"Content-Type": "application/json",
                                         "Accept": "application/json"})
        response = self.connection.getresponse()
        result = json.loads(response.read())
        files = result.get("files", [])
        ok = (response.status == 200 and result.get("status") == "ok" and len(files) == 1 and
              files[0]["media_type"] == "image/png")
        if not ok:  # counted, not timed: on a machine this busy, a cold run can take 10 s
            self.failures.append(result.get("summary") or json.dumps(result)[:500])
            return result
        usage = result.get("usage", {})
        self.usage.append((float(usage.get("wall_time_ms", 0)),
                           float(usage.get("cpu_user_ms", 0)) + float(usage.get("cpu_system_ms", 0))))
        return result

    def metric(self, name):
        return serve_support.metric_total(serve_support.parse_metrics(self.get("/metrics")), name)

    def close(self):
        self.connection.close()
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def timed(run):
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("airlock")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.3)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="airlock-chart-bench-")
    os.chmod(work, 0o755)
    script_dir = os.path.join(work, "bare")
    os.mkdir(script_dir)
    with open(os.path.join(script_dir, "chart.py"), "w") as f:
        f.write(CHART)
    bare_env = dict(os.environ, MPLBACKEND="Agg")
    bare_cmd = ["/usr/bin/python3", "chart.py"]

    def bare():
        subprocess.run(bare_cmd, cwd=script_dir, env=bare_env, check=True)

    def bwrap():
        subprocess.run(BWRAP + ["--bind", script_dir, script_dir, "--chdir", script_dir,
                                "--setenv", "MPLBACKEND", "Agg", "--setenv", "MPLCONFIGDIR",
                                "/tmp"] + bare_cmd, check=True)

    warm = Service(args.airlock, work, "warm", "")  # no warm_pool: the built-in default
    cold = Service(args.airlock, work, "cold", "warm_pool: []\n")
    for _ in range(600):  # the fork server imports the data stack first
        if warm.metric("airlock_warm_pool_ready") >= 2:
            break
        time.sleep(0.1)
    variants = {"bare `/usr/bin/python3 chart.py`": bare}
    if os.path.exists(BWRAP[0]):
        # Without matplotlib's cache (bwrap shows no writable home): each run builds the font
        # list, as an unprepared sandbox does.
        variants["bwrap python chart.py (font list built each run)"] = bwrap
    variants["airlock API, warm (default config)"] = warm.chart
    variants["airlock API, cold (`warm_pool: []`)"] = cold.chart
    for run in variants.values():
        run()  # once each, untimed: caches, the pool's first fork
    warm.usage.clear()
    cold.usage.clear()
    times = {name: [] for name in variants}
    hits_before = warm.metric("airlock_warm_pool_hits_total")
    services = {name: run.__self__ for name, run in variants.items() if hasattr(run, "__self__")}
    for _ in range(args.rounds):
        for name, run in variants.items():
            time.sleep(args.pause)
            failed_before = len(services[name].failures) if name in services else 0
            elapsed = timed(run)
            if name not in services or len(services[name].failures) == failed_before:
                times[name].append(elapsed)
    hits = warm.metric("airlock_warm_pool_hits_total") - hits_before
    memory = warm.metric("airlock_warm_pool_memory_bytes")
    server_memory = warm.metric("airlock_warm_pool_fork_server_memory_bytes")
    warm.close()
    cold.close()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print(f"## pandas + matplotlib chart: {os.cpu_count()} cores, {platform.release()}, "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print()
    print("| variant | runs | median ms | p90 ms | median / bare |")
    print("|---|---:|---:|---:|---:|")
    baseline = statistics.median(next(iter(times.values())))
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {len(values)} of {args.rounds} | {median:.1f} | "
              f"{percentile(values, 0.9):.1f} | {median / baseline:.2f} |")
    print()
    for name, service in (("warm", warm), ("cold", cold)):
        for summary in service.failures:
            print(f"Failed {name} run: {summary.splitlines()[0] if summary else '?'}")
        if not service.usage:
            continue
        print(f"Inside the sandbox, {name} (the service's own measure, median): wall "
              f"{statistics.median(u[0] for u in service.usage):.0f} ms, cpu "
              f"{statistics.median(u[1] for u in service.usage):.0f} ms.")
    print(f"Warm hits: {hits:.0f} of {args.rounds}. Warm pool memory (fork server and ready "
          f"sandboxes): {memory / 2**20:.1f} MiB, of which the fork server {server_memory / 2**20:.1f} MiB.")


if __name__ == "__main__":
    sys.exit(main())
