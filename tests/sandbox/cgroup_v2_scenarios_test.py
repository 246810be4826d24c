"""Where airlock may find itself on a cgroup-v2 host, tried for real (in the cgroup-v2 VM stage of
scripts/test.sh): alone in a delegated cgroup, in the root cgroup, in a cgroup shared with other
processes (without systemd, and in a service under a real systemd, which gives it a scope), and
as a container's only process in a cgroup namespace of its own. Each scenario checks
the verdicts and that nothing is left in the cgroups it used. Skips with a reason on a v1 host.

Usage: cgroup_v2_scenarios_test.py AIRLOCK_BINARY [unittest args]"""

import json
import os
import subprocess
import sys
import unittest

AIRLOCK = None
ROOT = "/sys/fs/cgroup"
LIMIT_S = 120  # how long one `airlock run` may take before the test gives up (TCG is slow)


def pure_v2():
    return os.path.exists(os.path.join(ROOT, "cgroup.controllers"))


def in_cgroup(cgroup, argv):
    """argv as a process moved into `cgroup` before it starts (its only process)."""
    return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *argv]


def run_json(*args, prefix=lambda argv: argv, code="print(1)"):
    argv = prefix([AIRLOCK, "run", "--json", *args, "--lang", "python", "-c", code])
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=LIMIT_S)
    return done


def children(cgroup):
    found = []
    for top, dirs, _ in os.walk(cgroup):
        found += [os.path.join(top, d) for d in dirs]
    return found


class ScenarioTest(unittest.TestCase):
    def make_cgroup(self, name):
        path = os.path.join(ROOT, f"scenario-{name}-{os.getpid()}")
        os.mkdir(path)
        self.addCleanup(os.rmdir, path)
        return path

    def check_verdicts(self, prefix):
        ok = run_json(prefix=prefix)
        self.assertEqual(ok.returncode, 0, ok.stderr.decode())
        self.assertEqual(json.loads(ok.stdout)["status"], "ok")
        memory = run_json("--memory", "64MiB", prefix=prefix, code="b = bytearray(256 << 20)")
        self.assertEqual(json.loads(memory.stdout)["status"], "memory_limit", memory.stderr.decode())
        processes = run_json(
            "--processes", "8", prefix=prefix,
            code="import os, time\nfor _ in range(32):\n    if os.fork() == 0:\n"
                 "        time.sleep(30)\n")
        self.assertEqual(json.loads(processes.stdout)["status"], "process_limit",
                         processes.stderr.decode())

    def test_alone_in_a_delegated_cgroup(self):
        cgroup = self.make_cgroup("delegated")
        self.check_verdicts(lambda argv: in_cgroup(cgroup, argv))
        self.assertEqual(children(cgroup), [])

    def test_in_the_root_cgroup(self):
        with open("/proc/self/cgroup") as f:
            if f.read().strip() != "0::/":
                self.skipTest("this test does not run in the root cgroup")
        before = [c for c in children(ROOT) if "airlock" in c]
        self.check_verdicts(lambda argv: argv)
        self.assertEqual([c for c in children(ROOT) if "airlock" in c], before)

    def test_a_cgroup_shared_with_other_processes(self):
        cgroup = self.make_cgroup("shared")
        other = subprocess.Popen(in_cgroup(cgroup, ["sleep", "600"]))
        try:
            # Without systemd there is nobody to ask for a scope: one clear line, exit 125.
            done = run_json(prefix=lambda argv: in_cgroup(cgroup, argv))
            message = done.stderr.decode().strip()
            print("shared cgroup: exit", done.returncode, message, file=sys.stderr)
            if os.path.isdir("/run/systemd/system"):
                self.assertEqual(done.returncode, 0, message)
            else:
                self.assertEqual(done.returncode, 125, message)
                self.assertIn("is shared with other processes", message)
                self.assertIn("no systemd", message)
                self.assertEqual(len(message.splitlines()), 1, message)
            self.assertEqual(children(cgroup), [])
        finally:
            other.kill()
            other.wait()

    def test_from_a_systemd_service_it_shares(self):
        # As from a login shell: airlock's cgroup holds this test too. systemd (the VM stage's
        # --systemd run) gives it a delegated scope of its own, gone when airlock exits.
        if not os.path.isdir("/run/systemd/system"):
            self.skipTest("no systemd here (scripts/test.sh boots one with cgroup2-vm.sh --systemd)")
        self.check_verdicts(lambda argv: argv)
        left = [c for c in children(ROOT) if "airlock" in c]
        self.assertEqual(left, [])

    def test_a_container_with_its_own_cgroup_namespace(self):
        cgroup = self.make_cgroup("container")

        def container(argv):
            # As a runtime starts a container: a new cgroup and mount namespace, cgroupfs mounted
            # afresh (its root is the container's cgroup), airlock its only process.
            # (Over a tmpfs: the kernel refuses cgroup2 right on top of its own root mount.)
            mount = "mount -t tmpfs none /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup"
            inner = ["/bin/sh", "-c", mount + ' && exec "$@"', "sh", *argv]
            return in_cgroup(cgroup, ["unshare", "--cgroup", "--mount", *inner])

        self.check_verdicts(container)
        self.assertEqual(children(cgroup), [])


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    if os.geteuid() != 0 or not pure_v2():
        print("skipped: needs root on a pure cgroup-v2 host (scripts/test.sh runs it in a VM)")
        sys.exit(0)
    unittest.main()
