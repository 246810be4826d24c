"""Nothing is left behind, on cgroup v1 and v2 alike: after `airlock run` (ok, memory_limit,
process_limit, cpu timeout), after `airlock serve` with a warm pool and a session stopped by
SIGTERM, and after SIGKILL of the service followed by a restart, which removes what the killed one
left. Counts cgroups, mounts, state dirs and sandbox processes before and after.

Usage: cgroup_cleanup_test.py AIRLOCK_BINARY [unittest args]
Where nothing else on the machine runs airlock (CI=true, or AIRLOCK_TEST_EXCLUSIVE=1 as in the
cgroup-v2 VM), every airlock cgroup, mount and sandbox process on the machine counts; elsewhere
(a developer's machine shared with other builds) only those of the pids the test started."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import serve_support as s  # noqa: E402

AIRLOCK = None
EXCLUSIVE = os.environ.get("CI") == "true" or os.environ.get("AIRLOCK_TEST_EXCLUSIVE") == "1"
CGROUP_ROOT = "/sys/fs/cgroup"
SANDBOX_UID = 65534  # SandboxConfig::host_uid
SETTLE_S = 10  # how long leftovers may take to go (a bound for waiting, never asserted)


def cgroup_dirs():
    """Every cgroup directory airlock made: its base dirs, instances, runs, supervisor leaves."""
    found = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        for name in dirs:
            path = os.path.join(top, name)
            if "airlock" in path[len(CGROUP_ROOT):]:
                found.append(path)
    return sorted(found)


def mounts(state_dirs):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(p for p in points if any(p.startswith(d + "/") for d in state_dirs))


def sandbox_processes():
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat("/proc/" + name).st_uid == SANDBOX_UID:
                    pids.append(int(name))
            except FileNotFoundError:
                pass
    return sorted(pids)


class Leftovers:
    """A snapshot of what airlock might leave, limited to the pids a test started unless the
    machine is ours alone."""

    def __init__(self, state_dirs, pids):
        self.state_dirs = state_dirs
        self.pids = [str(p) for p in pids]
        self.cgroups = [c for c in cgroup_dirs() if self.mine(os.path.basename(c))]
        if EXCLUSIVE:
            self.cgroups = cgroup_dirs()
        self.mounts = [m for m in mounts(state_dirs) if EXCLUSIVE or self.mine_path(m)]
        self.states = []
        for d in state_dirs:
            if os.path.isdir(d):
                # The audit log (audit.jsonl and its rotations) is kept there by default on
                # purpose: the record of what ran outlives runs and restarts.
                self.states += [os.path.join(d, n) for n in os.listdir(d)
                                if (EXCLUSIVE or self.mine(n)) and not n.startswith("audit.jsonl")]
        self.processes = sandbox_processes() if EXCLUSIVE else []

    def mine(self, name):
        for pid in self.pids:
            if name.startswith(pid + "-") or name.startswith("airlock-supervisor-" + pid):
                return True
        return False

    def mine_path(self, path):
        return any(self.mine(part) for part in path.split("/"))

    def counts(self):
        return {
            "cgroups": len(self.cgroups),
            "mounts": len(self.mounts),
            "state_dirs": len(self.states),
            "sandbox_processes": len(self.processes),
        }

    def describe(self):
        return json.dumps(
            {"cgroups": self.cgroups, "mounts": self.mounts, "state_dirs": self.states,
             "sandbox_processes": self.processes}, indent=1)


def wait_clean(test, state_dirs, pids, baseline):
    deadline = time.monotonic() + SETTLE_S
    while True:
        now = Leftovers(state_dirs, pids)
        if now.counts() == baseline.counts() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print(f"leftovers before {baseline.counts()} after {now.counts()}", file=sys.stderr)
    test.assertEqual(now.counts(), baseline.counts(), now.describe())


class CleanupTest(unittest.TestCase):
    def airlock_run(self, *args, code):
        """`airlock run --json`, started here so that its pid is known."""
        process = subprocess.Popen(
            [AIRLOCK, "run", "--json", *args, "--lang", "python", "-c", code],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=s.REQUEST_LIMIT_S)
        self.started.append(process.pid)
        if process.returncode == 125:
            self.fail("airlock run could not set up: " + err.decode())
        return json.loads(out)

    def setUp(self):
        self.started = []

    def test_runs_leave_nothing(self):
        baseline = Leftovers(["/run/airlock"], [])
        ok = self.airlock_run(code="print(1)")
        self.assertEqual(ok["status"], "ok", ok)
        memory = self.airlock_run(
            "--memory", "64MiB", code="b = bytearray(256 << 20)\nprint(len(b))")
        self.assertEqual(memory["status"], "memory_limit", memory)
        processes = self.airlock_run(
            "--processes", "8",
            code="import os\nfor _ in range(32):\n    if os.fork() == 0:\n        import time\n"
                 "        time.sleep(30)\n")
        self.assertEqual(processes["status"], "process_limit", processes)
        cpu = self.airlock_run("--cpu-time", "300ms", code="while True: pass")
        self.assertEqual(cpu["status"], "timeout", cpu)
        self.assertIn("cpu time limit", cpu["summary"], cpu)
        peak = self.airlock_run(
            "--memory", "256MiB", code="b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1")
        self.assertEqual(peak["status"], "ok", peak)
        peak_bytes = int(peak["usage"]["peak_memory_bytes"])
        self.assertGreaterEqual(peak_bytes, 64 << 20, peak)
        self.assertLess(peak_bytes, 256 << 20, peak)
        wait_clean(self, ["/run/airlock"], self.started, baseline)

    def test_sigterm_and_sigkill_then_restart_leave_nothing(self):
        config = s.base_config(
            max_sessions=2, warm_pool=[{"runtime": "python", "policy": "default", "size": 1}])
        baseline = Leftovers([], [])  # the service's state dir does not exist yet
        first = s.Server(AIRLOCK, config)
        state_dir = os.path.join(first.dir.name, "state")
        try:
            result = first.json("POST", "/v1/executions", {"language": "python", "code": "print(2)"})
            self.assertEqual(result["status"], "ok", result)
            first.json("POST", "/v1/sessions", {"runtime": "python"}, expect=201)
            self.started.append(first.process.pid)
            # SIGKILL: nothing runs to clean up; the runs, warm sandboxes and the session stay.
            first.process.kill()
            first.process.wait(timeout=s.REQUEST_LIMIT_S)
            left = Leftovers([state_dir], self.started)
            print(f"after SIGKILL: {left.counts()}", file=sys.stderr)
            self.assertGreater(left.counts()["state_dirs"], 0, "SIGKILL should have left state")
            # A restart on the same state dir removes what the killed one left.
            first.start()
            result = first.json("POST", "/v1/executions", {"language": "python", "code": "print(3)"})
            self.assertEqual(result["status"], "ok", result)
            first.json("POST", "/v1/sessions", {"runtime": "python"}, expect=201)
            self.started.append(first.process.pid)
            first.terminate(signal.SIGTERM)
            self.assertEqual(first.wait(), 0, "\n".join(first.logs))
        finally:
            first.kill()
        wait_clean(self, [state_dir], self.started, baseline)
        first.close()


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    if os.geteuid() != 0:
        print("skipped: needs root (airlock creates cgroups)")
        sys.exit(0)
    unittest.main()
