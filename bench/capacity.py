#!/usr/bin/python3
"""Capacity planning figures for `airlock serve`, measured in one run: memory per session, memory
per warm sandbox, the service's own memory, and python executions per second per core (warm and
cold) beside bare `python3 -c 'print(1)'` on the same machine. Prints Markdown tables.
docs/deploy.md ("Capacity planning") turns them into pod sizes and settings.

usage: bench/capacity.py [--airlock build/airlock] [--sessions 20] [--data-sessions 3]
                         [--warm-size 4] [--seconds 5] [--concurrency CORES]

What it does:
  1. starts `airlock serve` (127.0.0.1, a free port, a temp state dir, serve_support's API keys)
     with a python warm pool of --warm-size under the default policy, max_sessions and
     max_sessions_per_key raised to fit, max_concurrent = cores;
  2. waits for the pool to be full, then reads each ready sandbox's cgroup and the fork server's,
     and compares them with what /metrics exports (airlock_warm_pool_*memory*);
  3. opens --sessions python sessions and as many bash sessions, runs a tiny statement in each
     (and --data-sessions python sessions that import numpy, pandas and matplotlib),
     and reads each session's cgroup (the sandboxes are found from the process tree below the
     service's pid; a session is a new sandbox directly below the service), and the service's
     RSS before and after (what each open session costs the service itself);
  4. runs python print(1) from --concurrency client threads (default: the cores this process may
     use) for --seconds each: bare (subprocess), airlock warm (that service), airlock cold (a
     second service without a warm pool). Besides requests/s it counts the CPU each variant used
     (the service and its sandboxes, from /proc; the bare children's from rusage), the client's
     own, and what the rest of the machine used meanwhile (from /proc/stat), since a shared
     machine's throughput figures are only as good as its idle cores.

Memory is read from the sandbox's memory cgroup: on cgroup v1 memory.usage_in_bytes,
memory.kmem.usage_in_bytes and memory.stat (rss, cache, shmem); on v2 memory.current and
memory.stat (anon, file, shmem, kernel). "anon" is the interpreter's own heap and stacks, "cache"
the page cache charged to the sandbox (files it read first, and its tmpfs working dir, /tmp and
/dev/shm, which are shmem), "kernel" page tables, slab and stacks. PSS (from smaps_rollup) is the
processes' resident memory with shared pages split among their sharers.

Needs root (the sandbox does). Stops only the services it started (SIGTERM to their pids, then
SIGKILL if they do not exit) and removes their temp dirs, also on failure or Ctrl-C.
"""

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "api"))
import serve_support  # noqa: E402  (starts the service on a free port and reads its log)
import latency  # noqa: E402  (its API client: one connection per thread)

KEY = serve_support.TEST_KEY  # policy "default" only, as an ordinary client
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
STATEMENTS = {"python": "x = 1\nprint(x)\n", "bash": "x=1; echo $x"}
# A session that has loaded the data stack, as an analysis agent's does.
DATA_STATEMENT = "import numpy, pandas, matplotlib.pyplot\nprint(pandas.__version__)\n"


# --- /proc and cgroups -----------------------------------------------------------------------


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def process_table():
    """{pid: (ppid, cmdline)} of every process now."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read(f"/proc/{name}/stat")
        if stat is None:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        cmdline = (read(f"/proc/{name}/cmdline", "") or "").replace("\0", " ").strip()
        table[int(name)] = (int(fields[1]), cmdline)
    return table


def descendants(root, table=None):
    """{pid: depth} of every process below `root` (not root itself)."""
    table = table or process_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {}, [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        for child in children.get(pid, []):
            found[child] = depth + 1
            stack.append((child, depth + 1))
    return found


class Cgroups:
    """Where a process's memory cgroup is on disk, for v1 (a `memory` hierarchy) or v2."""

    def __init__(self):
        self.version, self.mount, self.root = None, None, "/"
        v2 = None
        for line in (read("/proc/self/mountinfo") or "").splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if tail[0] == "cgroup" and "memory" in tail[2].split(","):
                self.version, self.mount, self.root = 1, fields[4], fields[3]
            elif tail[0] == "cgroup2" and v2 is None:
                v2 = (fields[4], fields[3])
        if self.version is None and v2 is not None:
            self.version, (self.mount, self.root) = 2, v2
        if self.version is None:
            raise SystemExit("no memory cgroup mounted")

    def dir_of(self, pid):
        for line in (read(f"/proc/{pid}/cgroup") or "").splitlines():
            _, controllers, path = line.split(":", 2)
            wanted = "memory" in controllers.split(",") if self.version == 1 else controllers == ""
            if wanted:
                if self.root != "/" and path.startswith(self.root):
                    path = path[len(self.root):]
                return os.path.join(self.mount, path.lstrip("/"))
        return None

    def memory(self, directory):
        """{total, anon, cache, shmem, kernel} in bytes, or None once the cgroup is gone."""
        stat = {}
        text = read(os.path.join(directory, "memory.stat"))
        if text is None:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            stat[key] = int(value)
        if self.version == 1:
            total = int(read(os.path.join(directory, "memory.usage_in_bytes"), "0"))
            kernel = int(read(os.path.join(directory, "memory.kmem.usage_in_bytes"), "0") or 0)
            return {"total": total, "anon": stat.get("rss", 0), "cache": stat.get("cache", 0),
                    "shmem": stat.get("shmem", 0), "kernel": kernel}
        total = int(read(os.path.join(directory, "memory.current"), "0"))
        kernel = stat.get("kernel", sum(stat.get(k, 0) for k in (
            "slab", "kernel_stack", "pagetables", "sock", "percpu")))
        return {"total": total, "anon": stat.get("anon", 0), "cache": stat.get("file", 0),
                "shmem": stat.get("shmem", 0), "kernel": kernel}


def pss(pids):
    total = 0
    for pid in pids:
        for line in (read(f"/proc/{pid}/smaps_rollup") or "").splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def rss_of(pid):
    for line in (read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_cpu_seconds(root):
    """CPU of `root` and everything below it: each live process's own time plus the time of the
    children it has reaped (cutime/cstime), so a process that ended is counted through its parent
    and nothing twice."""
    total = 0
    for pid in [root, *descendants(root)]:
        stat = read(f"/proc/{pid}/stat")
        if stat is None:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / CLK_TCK


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy so far: user, nice, system, irq, softirq (guest
    time is already in user and nice; steal, time the hypervisor gave elsewhere, is not ours to
    count either way)."""
    fields = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    return sum(fields[i] for i in (0, 1, 2, 5, 6)) / CLK_TCK


def loadavg():
    return " ".join(read("/proc/loadavg").split()[:3])


# --- the services ----------------------------------------------------------------------------


class Service(serve_support.Server):
    def __init__(self, airlock, cores, warm_size, sessions):
        """sessions: how many this run opens at once (the caps are raised to fit)."""
        warm = [{"runtime": "python", "policy": "default", "size": warm_size}] if warm_size else []
        super().__init__(airlock, serve_support.base_config(
            max_concurrent=cores, max_queued=256, max_body_size="1MiB", heartbeat_interval="10s",
            max_sessions=max(64, sessions), max_sessions_per_key=max(64, sessions),
            warm_pool=warm))
        self.pid = self.process.pid

    def metric(self, name):
        return self.metrics().get(name + '{runtime="python",policy="default"}')


def stop(service):
    """SIGTERM to the pid this script started (SIGKILL if it outlives 30 s), temp dir removed."""
    if service is not None:
        service.close()


def wait_for_pool(service, size, limit=180):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if service.metric("airlock_warm_pool_ready") == size:
            return
        time.sleep(0.25)
    raise SystemExit(f"the warm pool did not fill to {size} within {limit} s")


# --- memory ----------------------------------------------------------------------------------


def sandboxes(service, cgroups):
    """The sandboxes below the service now: {cgroup dir: (kind, [pids], cmdline)}, kind
    "top" (a sandbox started by the service itself: a session, a fork server, a cold run) or
    "forked" (a warm sandbox, in its own cgroup below a fork server's process)."""
    table = process_table()
    found = {}
    below = descendants(service.pid, table)
    for pid in sorted(below, key=below.get):
        directory = cgroups.dir_of(pid)
        if directory is None:
            continue
        if directory not in found:
            parent_dir = cgroups.dir_of(table[pid][0]) if table[pid][0] != service.pid else None
            found[directory] = ["forked" if parent_dir and parent_dir != directory else "top",
                                [], ""]
        found[directory][1].append(pid)
        if "driver" in table[pid][1]:
            found[directory][2] = table[pid][1]
    return {d: tuple(v) for d, v in found.items()}


def measure(cgroups, directory, pids):
    m = cgroups.memory(directory)
    if m is None:
        return None
    m["pss"] = pss(pids)
    return m


def summary(rows):
    """median and p90 of each field over the rows (a list of dicts)."""
    out = {}
    for key in rows[0]:
        values = sorted(r[key] for r in rows)
        out[key] = (statistics.median(values), values[min(len(values) - 1, int(0.9 * len(values)))])
    return out


def warm_memory(service, cgroups, size):
    wait_for_pool(service, size)
    # A sandbox counts as ready before its warm-up has finished writing (the data stack's first
    # chart): its memory grows for a few seconds more. Read until two reads a second apart agree.
    last, deadline = None, time.monotonic() + 60
    while True:
        time.sleep(1)
        found = sandboxes(service, cgroups)
        forked = [measure(cgroups, d, p) for d, (kind, p, _) in found.items() if kind == "forked"]
        forked = [m for m in forked if m]
        totals = sorted(m["total"] for m in forked)
        if (last is not None and len(totals) == size == len(last)
                and all(abs(a - b) < MIB / 4 for a, b in zip(totals, last))):
            break
        if time.monotonic() > deadline:
            print("note: warm sandboxes' memory still moving after 60 s", file=sys.stderr)
            break
        last = totals
    servers = [d for d, (kind, p, _) in found.items()
               if kind == "top" and any(v[0] == "forked" and set(v[1]) & set(descendants(p[0]))
                                        for v in found.values())]
    server = measure(cgroups, servers[0], found[servers[0]][1]) if servers else None
    exported = {name: service.metric("airlock_warm_pool_" + name)
                for name in ("memory_per_sandbox_bytes", "fork_server_memory_bytes",
                             "memory_bytes")}
    return forked, server, exported


def open_sessions(service, cgroups, runtime, count, code=None):
    """Opens `count` sessions, runs `code` (default: the tiny statement) in each, returns
    (per-session memory rows, service RSS delta per session, ids)."""
    before = set(sandboxes(service, cgroups))
    rss_before = rss_of(service.pid)
    ids = []
    for _ in range(count):
        session = service.json("POST", "/v1/sessions", {"runtime": runtime}, key=KEY, expect=201)
        ids.append(session["id"])
        result = service.json("POST", f"/v1/sessions/{session['id']}/executions",
                              {"code": code or STATEMENTS[runtime]}, key=KEY)
        if result["status"] != "ok":
            raise SystemExit(f"{runtime} session execution: {result}")
    time.sleep(1)
    rss_after = rss_of(service.pid)
    found = sandboxes(service, cgroups)
    rows = []
    for directory, (kind, pids, cmdline) in found.items():
        if directory in before or kind != "top":
            continue
        if f"{runtime}_driver" not in cmdline:
            print(f"note: a new sandbox that is not a {runtime} session: {cmdline}",
                  file=sys.stderr)
            continue
        m = measure(cgroups, directory, pids)
        if m:
            rows.append(m)
    if len(rows) != count:
        print(f"note: found {len(rows)} {runtime} session sandboxes, opened {count}",
              file=sys.stderr)
    return rows, (rss_after - rss_before) / count, ids


def instance_view(service, cgroups):
    """(airlock's own cgroup instance: every sandbox's cgroup is below it, charged bytes; the
    live sandboxes' cgroups together). The difference is what ended runs left charged to it:
    page cache they read first (the interpreters' files), reparented when their cgroups went."""
    found = sandboxes(service, cgroups)
    if not found:
        return None, None
    parents = {os.path.dirname(d) for d, (kind, _, _) in found.items() if kind == "top"}
    if len(parents) != 1:
        return None, None
    whole = cgroups.memory(parents.pop())
    live = sum((cgroups.memory(d) or {"total": 0})["total"] for d in found)
    return whole, live


def close_sessions(service, ids):
    for session_id in ids:
        service.request("DELETE", f"/v1/sessions/{session_id}", key=KEY)


# --- throughput ------------------------------------------------------------------------------




def bare_run():
    done = subprocess.run(["/usr/bin/python3", "-c", "print(1)"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    return done.returncode == 0


def saturate(run, concurrency, seconds, cpu_of):
    """Runs `run` back to back from `concurrency` threads for `seconds`. cpu_of(): CPU seconds
    the variant has used so far (service and sandboxes, or the bare children)."""
    latencies, failures = [], [0]
    lock = threading.Lock()

    def worker(deadline):
        mine, failed = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = run()
            if ok:
                mine.append((time.perf_counter() - started) * 1000)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    run()  # connections and caches
    load_before = loadavg()
    cpu0, busy0, own0 = cpu_of(), machine_busy_seconds(), time.process_time()
    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(began + seconds,))
               for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cpu, busy, own = cpu_of() - cpu0, machine_busy_seconds() - busy0, time.process_time() - own0
    n = len(latencies)
    latencies.sort()
    pick = lambda p: latencies[min(n - 1, int(p * n))] if n else 0  # noqa: E731
    return {"rps": n / wall, "p50": pick(0.5), "p99": pick(0.99), "n": n,
            "failures": failures[0], "cpu_ms": 1000 * cpu / max(n, 1),
            "client_ms": 1000 * own / max(n, 1),
            "others_cores": max(0.0, busy - cpu - own) / wall, "load": load_before}


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- report ----------------------------------------------------------------------------------


def mib(value):
    return f"{value / MIB:.1f}"


def memory_table(rows_by_name, rss_delta):
    print("| sandbox | n | charged MiB (median / p90) | anon | page cache (of it shmem) | "
          "kernel | PSS | service RSS per one, MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in rows_by_name:
        if not rows:
            print(f"| {name} | 0 | | | | | | |")
            continue
        s = summary(rows)
        pair = lambda k: f"{mib(s[k][0])} / {mib(s[k][1])}"  # noqa: E731
        delta = rss_delta.get(name)
        print(f"| {name} | {len(rows)} | {pair('total')} | {pair('anon')} | "
              f"{pair('cache')} ({mib(s['shmem'][0])}) | {pair('kernel')} | {pair('pss')} | "
              f"{'' if delta is None else mib(delta)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--airlock", default=os.path.join(HERE, "..", "build", "airlock"))
    parser.add_argument("--sessions", type=int, default=20, help="of each runtime")
    parser.add_argument("--data-sessions", type=int, default=3,
                        help="python sessions that import numpy, pandas and matplotlib")
    parser.add_argument("--warm-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    # SIGTERM to this script unwinds like Ctrl-C, so the services it started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        raise SystemExit("needs root (the sandbox does)")
    cores = len(os.sched_getaffinity(0))
    cgroups = Cgroups()
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"## Capacity: {cores} cores, {os.uname().release}, cgroup v{cgroups.version}, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, commit {commit}, "
          f"load average {loadavg()} at start\n")

    warm = cold = None
    try:
        total_sessions = 2 * args.sessions + args.data_sessions
        warm = Service(args.airlock, cores, args.warm_size, total_sessions)
        forked, server, exported = warm_memory(warm, cgroups, args.warm_size)
        idle_rss = rss_of(warm.pid)
        rows, deltas, ids = [], {}, []
        for runtime in ("python", "bash"):
            got, delta, opened = open_sessions(warm, cgroups, runtime, args.sessions)
            rows.append((f"{runtime} session", got))
            deltas[f"{runtime} session"] = delta
            ids += opened
        if args.data_sessions:
            got, delta, opened = open_sessions(warm, cgroups, "python", args.data_sessions,
                                               DATA_STATEMENT)
            rows.append(("python session, data stack imported", got))
            deltas["python session, data stack imported"] = delta
            ids += opened
        sessions_rss = rss_of(warm.pid)
        instance, live = instance_view(warm, cgroups)
        close_sessions(warm, ids)

        print(f"### Memory ({args.sessions} sessions of each runtime after a tiny statement, "
              f"{args.data_sessions} after importing numpy, pandas and matplotlib; python warm "
              f"pool of {args.warm_size})\n")
        memory_table([("python warm sandbox (ready)", forked)] + rows, deltas)
        print()
        if server:
            print(f"- python fork server (one per pool entry, shared by its sandboxes): charged "
                  f"{mib(server['total'])} MiB (anon {mib(server['anon'])}, cache "
                  f"{mib(server['cache'])}, kernel {mib(server['kernel'])}), PSS "
                  f"{mib(server['pss'])} MiB")
        if forked:
            mine = statistics.mean(m["total"] for m in forked)
            whole = sum(m["total"] for m in forked) + (server["total"] if server else 0)
            print(f"- /metrics: memory_per_sandbox {mib(exported['memory_per_sandbox_bytes'] or 0)}"
                  f" MiB (measured here: mean {mib(mine)}), fork_server "
                  f"{mib(exported['fork_server_memory_bytes'] or 0)} MiB, pool "
                  f"{mib(exported['memory_bytes'] or 0)} MiB (here: {mib(whole)})")
        print(f"- service process RSS: {mib(idle_rss)} MiB with the pool full, "
              f"{mib(sessions_rss)} MiB with {total_sessions} sessions open")
        if instance:
            print(f"- airlock's cgroup with the sessions open: {mib(instance['total'])} MiB "
                  f"charged, of it {mib(live)} MiB in live sandboxes; the rest, "
                  f"{mib(instance['total'] - live)} MiB (page cache {mib(instance['cache'])} MiB "
                  f"in all), was left by ended runs")
        print()

        print(f"### python print(1), concurrency {args.concurrency}, {args.seconds:g} s each\n")
        print("| variant | executions/s | per core | p50 ms | p99 ms | CPU ms/exec (service + "
              "sandboxes) | client CPU ms/exec | other load, cores | load avg before | "
              "failures |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        results = {}

        def row(name, r):
            results[name] = r
            print(f"| {name} | {r['rps']:.1f} | {r['rps'] / cores:.1f} | {r['p50']:.1f} | "
                  f"{r['p99']:.1f} | {r['cpu_ms']:.1f} | {r['client_ms']:.1f} | "
                  f"{r['others_cores']:.2f} | {r['load']} | {r['failures']} |", flush=True)

        row("bare python3 -c", saturate(bare_run, args.concurrency, args.seconds, children_cpu))
        wait_for_pool(warm, args.warm_size)
        counters = ("hits_total", "misses_total", "forked_on_request_total")
        before = [warm.metric("airlock_warm_pool_" + c) or 0 for c in counters]
        print_one = latency.api_runner(warm.port, "python", "print(1)", KEY)
        row("airlock warm", saturate(print_one, args.concurrency, args.seconds,
                                     lambda: tree_cpu_seconds(warm.pid)))
        pool = [(warm.metric("airlock_warm_pool_" + c) or 0) - b for c, b in zip(counters, before)]
        stop(warm)
        warm = None
        cold = Service(args.airlock, cores, 0, total_sessions)
        print_one = latency.api_runner(cold.port, "python", "print(1)", KEY)
        row("airlock cold", saturate(print_one, args.concurrency, args.seconds,
                                     lambda: tree_cpu_seconds(cold.pid)))
        stop(cold)
        cold = None
        bare = results["bare python3 -c"]
        print()
        for name in ("airlock warm", "airlock cold"):
            r = results[name]
            print(f"- {name}: {r['rps'] / bare['rps']:.2f}x bare's executions/s, "
                  f"{r['cpu_ms'] / max(bare['cpu_ms'], 1e-9):.2f}x its CPU per execution "
                  f"(CPU-bound ceiling {1000 / max(r['cpu_ms'], 1e-9):.0f}/s per core, bare "
                  f"{1000 / max(bare['cpu_ms'], 1e-9):.0f})")
        print(f"- warm pool during the warm row: {pool[0]:.0f} hits, {pool[1]:.0f} misses "
              f"({pool[2]:.0f} of them forked at request time, the others cold)")
        print(f"- load average at the end: {loadavg()}")
    finally:
        stop(warm)
        stop(cold)


if __name__ == "__main__":
    main()
