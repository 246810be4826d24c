#!/usr/bin/python3
"""Soak test of `airlock serve`: many executions of every kind, then a check that the service
holds no more than it did before.

usage: bench/soak.py AIRLOCK [--executions 10000] [--time-limit 5400] [--clients 4] [--seed 1]

It starts its own `airlock serve` on 127.0.0.1 (port 0, a state dir of its own, a python warm
pool) and drives it from --clients threads with a seeded mix of: warm python runs, cold runs
(bash, python under a policy without a warm pool), server-sent-event clients that disconnect
midway, cancels (DELETE /v1/executions/{id}), sessions opened, used (executions, file upload
and download) and closed, output floods, returned files (`output.files`) and timeouts.

Before and after the mix, with the service idle and its warm pool full, it records the
service's open fds, RSS, threads, child processes, the cgroups below the service's own cgroup
instance, mounts, and entries in its state dir. It fails (exit 1) when any grows beyond
its tolerance, when a request gets an answer it should not, when fewer executions than asked
ran within --time-limit, or when the service leaves cgroups or state behind after SIGTERM. It
stops only the process it started. Needs root (the sandbox does); loopback only.
"""

import argparse
import collections
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
import serve_support  # noqa: E402  (starts the service and reads its log, as the API tests do)

KEY = serve_support.ADMIN_KEY  # may use every policy
REQUEST_LIMIT_S = 120
IDLE_TIMEOUT_S = 10
# Growth allowed between the two snapshots. RSS moves with the allocator's caches; kernel
# resources held on behalf of finished work must not move at all.
TOLERANCE = {
    "fds": 2,
    "threads": 2,
    "children": 0,
    "rss_kib": 32 * 1024,
    "cgroups": 0,
    "mounts": 0,
    "state_entries": 0,
}

# The mix: (kind, weight). Each kind is one function below; weights are per operation.
MIX = [
    ("warm", 40),
    ("cold_bash", 12),
    ("cold_python", 8),
    ("files", 8),
    ("flood", 5),
    ("sse_disconnect", 8),
    ("cancel", 6),
    ("session", 8),
    ("timeout", 2),
]


def config_text(max_concurrent):
    return serve_support.base_config(
        max_concurrent=max_concurrent,
        max_queued=64,
        max_body_size="1MiB",
        heartbeat_interval="1s",
        max_sessions=16,
        max_sessions_per_key=16,
        # Short, so that the soak can wait it out: what is still held after it is a leak.
        idle_timeout=f"{IDLE_TIMEOUT_S}s",
        # Small, so that the warm-up fills the store of finished results: growth after it is a leak,
        # not results the service keeps on purpose.
        recent_results=16,
        warm_pool=[{"runtime": "python", "policy": "default", "size": 4}],
    )


class Service(serve_support.Server):
    """The `airlock serve` this script started (serve_support starts it on a free port)."""

    def __init__(self, airlock, max_concurrent):
        super().__init__(airlock, config_text(max_concurrent))
        self.pid = self.process.pid
        self.state_dir = os.path.join(self.dir.name, "state")

    def connect(self, timeout=REQUEST_LIMIT_S):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """(status, headers, body bytes) with the soak's key; a dict body is sent as JSON."""
        return super().request(method, path, body, key=KEY, headers=headers, conn=conn)

    def errors_logged(self):
        return sum(1 for record in self.log_records() if record.get("level") == "error")

    def stop(self):
        """SIGTERM to the pid this script started, then SIGKILL to it if it does not exit."""
        self.terminate()
        try:
            self.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.process.returncode


# --- what the service holds ----------------------------------------------------------------


def read_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def children_of(pid):
    """Descendant processes of pid (the fork server, sandbox supervisors, interpreters)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cgroup_instance_dirs(pid):
    """The cgroup dirs the service made for itself: <hierarchy>/<own path>/airlock/<pid>-*."""
    dirs = []
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            mount = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        elif controllers in ("memory", "pids", "cpu,cpuacct", "cpu", "cpuacct"):
            mount = "/sys/fs/cgroup/" + controllers
        else:
            continue
        base = os.path.join(mount + (path if path != "/" else ""), "airlock")
        try:
            names = os.listdir(base)
        except OSError:
            continue
        dirs += [os.path.join(base, n) for n in names if n.startswith(f"{pid}-")]
    return sorted(set(os.path.realpath(d) for d in dirs))


def count_dirs_below(top):
    count = 0
    for _, dirnames, _ in os.walk(top):
        count += len(dirnames)
    return count


def count_entries(top):
    count = 0
    for _, dirnames, filenames in os.walk(top):
        count += len(dirnames) + len(filenames)
    return count


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def tcp_states():
    """Socket inode -> TCP state, from /proc/net/tcp and tcp6."""
    states = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    states[fields[9]] = TCP_STATES.get(fields[3], fields[3])
        except OSError:
            pass
    return states


def fd_kinds(pid):
    """Open fds by what they are: tcp:<state>, socket (others), pipe, anon_inode:[eventfd], a
    path's first components."""
    kinds = collections.Counter()
    tcp = tcp_states()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:") and target[8:-1] in tcp:
            kinds["tcp:" + tcp[target[8:-1]]] += 1
        elif target.startswith(("socket:", "pipe:")):
            kinds[target.partition(":")[0]] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1
        else:
            kinds["/".join(target.split("/")[:3])] += 1
    return dict(sorted(kinds.items()))


def snapshot(service):
    status = read_status(service.pid)
    # The service's mount namespace is the host's, shared with everything else on the machine:
    # count the mounts below the service's own directory (its state dir and working dirs).
    with open(f"/proc/{service.pid}/mountinfo") as f:
        mounts = sum(1 for line in f if line.split()[4].startswith(service.dir.name))
    return {
        "fds": len(os.listdir(f"/proc/{service.pid}/fd")),
        "threads": int(status["Threads"]),
        "children": len(children_of(service.pid)),
        "rss_kib": int(status["VmRSS"].split()[0]),
        "cgroups": sum(count_dirs_below(d) for d in cgroup_instance_dirs(service.pid)),
        "mounts": mounts,
        "state_entries": count_entries(service.state_dir),
        "fd_kinds": fd_kinds(service.pid),  # reported, not compared: it explains "fds"
    }


def wait_idle(service, capacity, limit_s=120):
    """Until nothing runs or waits and the warm pool is full again (then the counts are stable)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        m = service.metrics()
        ready = sum(v for k, v in m.items() if k.startswith("airlock_warm_pool_ready"))
        _, _, sessions = service.request("GET", "/v1/sessions")
        open_sessions = len(json.loads(sessions).get("sessions", []))
        if (
            m.get("airlock_executions_in_flight", 1) == 0
            and m.get("airlock_executions_queued", 1) == 0
            and ready >= capacity
            and open_sessions == 0
        ):
            time.sleep(1.0)  # supervisors and cgroups of the last runs are released after the result
            return True
        time.sleep(0.2)
    return False


# --- the operations ----------------------------------------------------------------------


class Outcome:
    def __init__(self):
        self.lock = threading.Lock()
        self.executions = 0
        self.ops = collections.Counter()
        self.statuses = collections.Counter()
        self.problems = []
        self.latencies = collections.defaultdict(list)

    def record(self, kind, executions, status, seconds):
        with self.lock:
            self.executions += executions
            self.ops[kind] += 1
            self.statuses[f"{kind}:{status}"] += 1
            self.latencies[kind].append(seconds)

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(time.strftime("%H:%M:%S ") + text)


def run_json(service, body, path="/v1/executions"):
    status, _, data = service.request("POST", path, body)
    if status != 200:
        raise AssertionError(f"POST {path}: {status} {data[:300]!r}")
    return json.loads(data)


def expect_status(result, wanted, what):
    if result.get("status") not in wanted:
        # The id (for the service's log) and the usage tell a hang from a starved machine.
        raise AssertionError(f"{what}: {result.get('id')} status {result.get('status')}, wanted "
                             f"{wanted}; usage {json.dumps(result.get('usage'))}: "
                             f"{result.get('summary', '').splitlines()[0][:200]}")
    return result["status"]


def op_warm(service, rng):
    n = rng.randrange(1000)
    result = run_json(service, {"language": "python", "code": f"print({n} * 2)"})
    expect_status(result, ("ok",), "warm")
    if result["stdout"] != f"{n * 2}\n":
        raise AssertionError(f"warm: stdout {result['stdout']!r}")
    return 1, result["status"]


def op_cold_bash(service, rng):
    result = run_json(service, {"language": "bash", "code": "echo $((6*7)); ls /tmp >/dev/null"})
    expect_status(result, ("ok",), "cold bash")
    return 1, result["status"]


def op_cold_python(service, rng):
    # Under `python`, a policy without a warm pool: a fresh sandbox each time.
    result = run_json(service, {"language": "python", "policy": "python", "code": "import os; print(os.getpid())"})
    expect_status(result, ("ok",), "cold python")
    return 1, result["status"]


def op_files(service, rng):
    code = (
        "import os\n"
        "os.makedirs('out', exist_ok=True)\n"
        "for i in range(3):\n"
        "    open(f'out/f{i}.txt', 'w').write('x' * (1000 * (i + 1)))\n"
        "open('skip.bin', 'wb').write(b'\\0' * 10)\n"
    )
    result = run_json(service, {"language": "python", "code": code, "output": {"files": ["out/*.txt"]}})
    expect_status(result, ("ok",), "files")
    if len(result.get("files", [])) != 3:
        raise AssertionError(f"files: {len(result.get('files', []))} returned, wanted 3")
    return 1, result["status"]


def op_flood(service, rng):
    # Far more output than is kept: head and tail come back, the rest is counted.
    code = "import sys\nchunk = 'y' * 65536 + '\\n'\nfor _ in range(200):\n    sys.stdout.write(chunk)\n"
    result = run_json(service, {"language": "python", "code": code, "policy": rng.choice(["default", "python"])})
    expect_status(result, ("ok", "output_limit"), "flood")
    return 1, result["status"]


def open_stream(service, body):
    conn = service.connect()
    conn.request(
        "POST",
        "/v1/executions",
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream",
                 "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    if response.status != 200:
        data = response.read()
        conn.close()
        raise AssertionError(f"stream: {response.status} {data[:300]!r}")
    return conn, response


def next_event(response):
    name = data = None
    while True:
        line = response.readline()
        if not line:
            return None
        line = line.decode().rstrip("\n")
        if line == "":
            if name is not None:
                return name, json.loads(data)
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            data = value


def op_sse_disconnect(service, rng):
    # A slow talker; the client reads until its first output, then vanishes.
    code = "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.05)\n"
    conn, response = open_stream(service, {"language": "python", "code": code,
                                           "policy": rng.choice(["default", "python"])})
    while (event := next_event(response)) is not None and event[0] != "stdout":
        pass
    if rng.random() < 0.5:
        conn.sock.shutdown(socket.SHUT_RDWR)  # abruptly
    conn.close()
    return 1, "disconnected"


def op_cancel(service, rng):
    code = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"
    conn, response = open_stream(service, {"language": "python", "code": code,
                                           "policy": rng.choice(["default", "python"])})
    try:
        execution_id = response.getheader("X-Execution-Id")
        while (event := next_event(response)) is not None and event[0] != "stdout":
            pass
        asked = time.monotonic()
        status, _, data = service.request("DELETE", f"/v1/executions/{execution_id}")
        if status != 202:
            # 409 is right if the run ended first; say how long the cancel took to be answered.
            data += f" (answered after {time.monotonic() - asked:.1f} s)".encode()
            raise AssertionError(f"cancel: DELETE answered {status} {data[:200]!r}")
        final = None
        while (event := next_event(response)) is not None:
            final = event
        if final is None or final[0] != "exit" or final[1]["exit"]["result"]["status"] != "cancelled":
            raise AssertionError(f"cancel: the stream ended with {final!r:.300}")
        return 1, "cancelled"
    finally:
        conn.close()


def op_session(service, rng):
    status, _, data = service.request("POST", "/v1/sessions", {"runtime": rng.choice(["python", "bash"])})
    if status == 429:
        return 0, "session_refused"  # every slot taken by other clients at this moment
    if status != 201:
        raise AssertionError(f"session: create answered {status} {data[:200]!r}")
    session = json.loads(data)
    sid, runtime = session["id"], session.get("runtime", "python")
    executions = 0
    try:
        status, _, data = service.request("PUT", f"/v1/sessions/{sid}/files/in/data.txt", b"41\n",
                                          headers={"Content-Type": "application/octet-stream"})
        if status not in (200, 201, 204):
            raise AssertionError(f"session: upload answered {status} {data[:200]!r}")
        if runtime == "python":
            steps = ["x = int(open('in/data.txt').read())", "open('out.txt', 'w').write(str(x + 1))\nx + 1"]
        else:
            steps = ["x=$(cat in/data.txt)", "echo $((x + 1)) | tee out.txt"]
        for code in steps:
            result = run_json(service, {"code": code}, f"/v1/sessions/{sid}/executions")
            expect_status(result, ("ok",), "session execution")
            executions += 1
        if "42" not in result["stdout"]:
            raise AssertionError(f"session: stdout {result['stdout']!r}")
        status, _, data = service.request("GET", f"/v1/sessions/{sid}/files/out.txt")
        if status != 200 or data.strip() != b"42":
            raise AssertionError(f"session: download answered {status} {data[:100]!r}")
    finally:
        status, _, data = service.request("DELETE", f"/v1/sessions/{sid}")
        if status not in (200, 204):
            raise AssertionError(f"session: close answered {status} {data[:200]!r}")
    return executions, "closed"


def op_timeout(service, rng):
    result = run_json(service, {"language": rng.choice(["python", "bash"]),
                                "code": "while True: pass" if rng.random() < 0.5 else "while :; do :; done",
                                "limits": {"wall_time": "300ms"}})
    # The bash loop under python (or the reverse) is a syntax error: any prompt end is fine.
    expect_status(result, ("timeout", "nonzero_exit"), "timeout")
    return 1, result["status"]


OPERATIONS = {name: globals()["op_" + name] for name, _ in MIX}


def drive(service, outcome, target, deadline, seed, clients):
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]

    def client(index):
        rng = random.Random(seed * 1000 + index)
        while True:
            with outcome.lock:
                if outcome.executions >= target:
                    return
            if time.monotonic() > deadline:
                return
            kind = rng.choices(kinds, weights)[0]
            started = time.monotonic()
            try:
                executions, status = OPERATIONS[kind](service, rng)
                outcome.record(kind, executions, status, time.monotonic() - started)
            except Exception as error:  # a wrong answer is a finding, not the end of the soak
                outcome.record(kind, 0, "error", time.monotonic() - started)
                outcome.problem(f"{kind}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    last_report = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.monotonic() - last_report > 60:
            last_report = time.monotonic()
            print(f"soak: {outcome.executions} executions, {sum(outcome.ops.values())} operations, "
                  f"{len(outcome.problems)} problems", file=sys.stderr, flush=True)
    for t in threads:
        t.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("airlock", help="the airlock binary")
    parser.add_argument("--executions", type=int, default=10000)
    parser.add_argument("--time-limit", type=float, default=5400, help="seconds for the mix")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=40, help="operations before the first snapshot")
    args = parser.parse_args()

    if os.geteuid() != 0:
        print("soak: needs root (the sandbox does)", file=sys.stderr)
        return 2
    service = Service(os.path.abspath(args.airlock), args.max_concurrent)
    failures = []
    try:
        capacity = 4
        if not wait_idle(service, capacity):
            raise RuntimeError("the warm pool did not fill")
        # Lazy one-time state (first cold run, first session, allocator arenas) before counting.
        warm = Outcome()
        drive(service, warm, args.warmup, time.monotonic() + 300, args.seed + 7, args.clients)
        if not wait_idle(service, capacity):
            failures.append("the service did not become idle after the warm-up")
        before = snapshot(service)
        print(f"soak: before: {json.dumps(before)}", file=sys.stderr, flush=True)

        outcome = Outcome()
        started = time.monotonic()
        drive(service, outcome, args.executions, started + args.time_limit, args.seed, args.clients)
        elapsed = time.monotonic() - started
        idle = wait_idle(service, capacity)
        after = snapshot(service)
        if not idle:
            failures.append("the service did not become idle after the mix")
        print(f"soak: after:  {json.dumps(after)}", file=sys.stderr, flush=True)
        # Whatever a timeout still had to release is gone after it.
        time.sleep(IDLE_TIMEOUT_S + 2)
        settled = snapshot(service)
        print(f"soak: after the idle timeout: {json.dumps(settled)}", file=sys.stderr)
        report = {
            "executions": outcome.executions,
            "operations": dict(outcome.ops),
            "seconds": round(elapsed, 1),
            "executions_per_second": round(outcome.executions / elapsed, 1) if elapsed else 0,
            "statuses": dict(sorted(outcome.statuses.items())),
            "median_ms": {k: round(sorted(v)[len(v) // 2] * 1000, 1) for k, v in outcome.latencies.items()},
            "before": before,
            "after": after,
            "after_idle_timeout": settled,
            "service_errors_logged": service.errors_logged(),
        }
        print(json.dumps(report, indent=2))
        for name, limit in TOLERANCE.items():
            if settled[name] - before[name] > limit:
                failures.append(f"{name} grew from {before[name]} to {after[name]} and was still "
                                f"{settled[name]} after the idle timeout (tolerance +{limit}): a leak")
            elif after[name] - before[name] > limit:
                failures.append(f"{name} grew from {before[name]} to {after[name]} once idle and fell "
                                f"back to {settled[name]} only after the {IDLE_TIMEOUT_S} s idle "
                                f"timeout (tolerance +{limit}): held after the client was gone")
        if outcome.executions < args.executions:
            failures.append(f"only {outcome.executions} of {args.executions} executions ran "
                            f"within {args.time_limit:.0f} s")
        for problem in outcome.problems:
            failures.append("wrong answer: " + problem)
    finally:
        instances = cgroup_instance_dirs(service.pid) if service.process.poll() is None else []
        code = service.stop()
        if code != 0:
            failures.append(f"airlock serve exited with {code} after SIGTERM")
        left = [d for d in instances if os.path.exists(d)]
        if left:
            failures.append(f"cgroups left after exit: {left}")
        # The audit log (audit.jsonl and its rotations) is kept in the state dir on purpose.
        left = [n for n in os.listdir(service.state_dir) if not n.startswith("audit.jsonl")] \
            if os.path.isdir(service.state_dir) else []
        if left:
            failures.append(f"state dir not empty after exit: {left}")
        if failures:
            print("\n".join(["soak: service log tail:"] + service.logs[-20:]), file=sys.stderr)
            # What the service said about each execution a problem names: a hang shows where
            # it stopped, a starved machine shows late but complete steps.
            for execution_id in sorted(set(re.findall(r"ex_[0-9a-f]+", " ".join(failures)))):
                lines = [line for line in service.logs if execution_id in line]
                print("\n".join([f"soak: the service's log of {execution_id}:"] + lines),
                      file=sys.stderr)
        service.close()
    for failure in failures:
        print(f"soak: FAIL: {failure}", file=sys.stderr)
    print("soak: " + ("FAILED" if failures else "passed"), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
