"""Integration tests of sessions against the real `airlock serve` and the real sandbox: state and
files persist, one execution at a time (409), state lost after an OOM is said plainly, idle and
lifetime expiry remove the sandbox's processes and cgroup, and two sessions are isolated."""

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import serve_support as s  # noqa: E402

AIRLOCK = None


def descends_from(pid, ancestor):
    """True when ancestor is pid or one of its parents."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def processes_with(token):
    """Host pids whose command line contains token."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def cgroup_dirs(pid):
    """The cgroup directories of a process below the root, for cgroup v2 or every v1 controller."""
    dirs = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _, controllers, path = line.split(":", 2)
            if path == "/" or controllers.startswith("name="):
                continue
            base = "/sys/fs/cgroup" if controllers == "" else "/sys/fs/cgroup/" + controllers.split(",")[0]
            dirs.append(base + path)
    return dirs


class Sessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = s.Server(AIRLOCK, s.base_config(max_sessions=4, max_sessions_per_key=3))

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def call(self, method, path, body=None, key=s.TEST_KEY, raw=None):
        return self.server.request(method, path, body=raw if raw is not None else body, key=key)

    def create(self, runtime="python", **extra):
        status, _, body = self.call("POST", "/v1/sessions", {"runtime": runtime, **extra})
        self.assertEqual(status, 201, body)
        session = json.loads(body)
        self.addCleanup(self.call, "DELETE", "/v1/sessions/" + session["id"])
        return session

    def run_in(self, session, code, **extra):
        status, _, body = self.call(
            "POST", f"/v1/sessions/{session['id']}/executions", {"code": code, **extra})
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_python_state_persists_and_a_final_expression_comes_back(self):
        session = self.create("python")
        first = self.run_in(session, "import math\nx = 41\ndef twice(v):\n    return 2 * v")
        self.assertEqual(first["status"], "ok", first["summary"])
        second = self.run_in(session, "twice(x) + int(math.sqrt(4))")
        self.assertEqual(second["status"], "ok", second["summary"])
        self.assertEqual(second["stdout"], "84\n")

    def test_an_exception_is_a_failed_execution_that_keeps_the_state(self):
        session = self.create("python")
        self.run_in(session, "y = 'kept'")
        failed = self.run_in(session, "1 / 0")
        self.assertEqual(failed["status"], "nonzero_exit")
        self.assertIn("ZeroDivisionError", failed["stderr"])
        self.assertEqual(self.run_in(session, "print(y)")["stdout"], "kept\n")

    def test_a_probed_call_is_refused_and_the_session_lives_on(self):
        # What Chromium and bubblewrap, libuv, profilers and Kerberos libraries try before falling
        # back (issue 12): each fails with an errno and is reported; nothing is lost.
        session = self.create("python")
        self.run_in(session, "kept = 'yes'")
        probed = self.run_in(session, (
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "for number, args in [(272, [0x10000000]), (425, [4, 0]), (298, [0, 0, -1, -1, 0]),"
            " (250, [0, -1, 0])]:\n"
            "    print(libc.syscall(number, *args), ctypes.get_errno())"))
        self.assertEqual(probed["status"], "ok", probed["summary"])
        self.assertEqual(probed["stdout"], "-1 1\n-1 38\n-1 1\n-1 1\n")  # EPERM, ENOSYS
        self.assertEqual([b["syscall"] for b in probed["blocked"]],
                         ["unshare", "io_uring_setup", "perf_event_open", "keyctl"])
        self.assertEqual(self.run_in(session, "print(kept)")["stdout"], "yes\n")

    def test_the_sandbox_names_no_host_path_or_command_line(self):
        session = self.create("python")
        seen = self.run_in(session, (
            "print(open('/proc/1/cmdline').read())\n"
            "print(open('/proc/self/mountinfo').read())"))
        self.assertEqual(seen["status"], "ok", seen["summary"])
        self.assertTrue(seen["stdout"].startswith("airlock-init\0\n"), seen["stdout"][:200])
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for host_path in (repo, "/run/airlock", "airlock serve"):
            self.assertNotIn(host_path, seen["stdout"])

    def test_bash_state_persists(self):
        session = self.create("bash")
        self.run_in(session, "mkdir -p sub && cd sub && NAME=airlock && greet() { echo \"hi $1\"; }")
        again = self.run_in(session, "pwd; greet \"$NAME\"")
        self.assertEqual(again["status"], "ok", again["summary"])
        self.assertEqual(again["stdout"], "/work/sub\nhi airlock\n")

    def test_processes_an_execution_leaves_behind_end_with_it(self):
        # Before the fix a forked busy loop kept burning CPU between executions.
        for runtime, start in (
                ("python", "import subprocess\n"
                           "p = subprocess.Popen(['sh', '-c', 'while :; do :; done'])\n"
                           "open('pid', 'w').write(str(p.pid))"),
                ("bash", "sh -c 'while :; do :; done' &\necho $! > pid")):
            session = self.create(runtime)
            self.assertEqual(self.run_in(session, start)["status"], "ok")
            check = ("import os\nprint(os.path.exists('/proc/' + open('pid').read().strip()))"
                     if runtime == "python" else
                     "test -e /proc/$(cat pid) && echo True || echo False")
            result = self.run_in(session, check)
            self.assertEqual(result["stdout"], "False\n", (runtime, result))

    def test_files_persist_and_move_in_and_out(self):
        session = self.create("python")
        status, _, body = self.call("PUT", f"/v1/sessions/{session['id']}/files/data/in.txt",
                                    raw=b"uploaded\n")
        self.assertEqual(status, 201, body)
        self.run_in(session, "open('out.txt', 'w').write(open('data/in.txt').read().upper())")
        status, _, body = self.call("GET", f"/v1/sessions/{session['id']}/files/out.txt")
        self.assertEqual((status, body), (200, b"UPLOADED\n"))
        status, _, body = self.call("GET", f"/v1/sessions/{session['id']}/files")
        paths = sorted(f["path"] for f in json.loads(body)["files"])
        self.assertEqual(paths, ["data/in.txt", "out.txt"])
        status, _, _ = self.call("GET", f"/v1/sessions/{session['id']}/files/..%2Fetc%2Fpasswd")
        self.assertEqual(status, 400)

    def test_input_files_that_do_not_fit_are_a_400_with_the_field(self):
        session = self.create("python")
        # The session's own code fills its working directory (a tmpfs of the policy's size) with
        # files of 16 MiB (the file size limit is as large as the directory), then frees 16 KiB:
        # room for a small file but not for 32 KiB.
        fill = ("import errno, os\n"
                "n = 0\n"
                "try:\n"
                "    while True:\n"
                "        with open(f'fill{n}', 'wb', buffering=0) as f:\n"
                "            n += 1\n"
                "            for _ in range(16):\n"
                "                f.write(b'x' * (1 << 20))\n"
                "except OSError as e:\n"
                "    print(errno.errorcode[e.errno])\n"
                "os.truncate('fill0', os.path.getsize('fill0') - 16384)\n")
        self.assertEqual(self.run_in(session, fill)["stdout"], "ENOSPC\n")
        status, _, body = self.call(
            "POST", f"/v1/sessions/{session['id']}/executions",
            {"code": "print(1)", "files": [{"path": "small.txt", "content": "ok"},
                                           {"path": "more.txt", "content": "y" * 32768}]})
        self.assertEqual(status, 400, body)
        error = json.loads(body)["error"]
        self.assertEqual(error["code"], "invalid_request")
        self.assertEqual(error["field"], "files[1].path")
        self.assertIn("does not fit the session's working directory", error["message"])
        # Room made, the session goes on.
        result = self.run_in(session, "import glob, os\nfor name in glob.glob('fill*'):\n"
                                      "    os.remove(name)\nprint(2)")
        self.assertEqual(result["stdout"], "2\n", result)

    def test_limits_a_session_cannot_apply_are_a_400_with_the_field(self):
        session = self.create("python")
        # Before, these were accepted and ignored: the sandbox kept its policy's egress, memory
        # and process limits while the caller believed it had narrowed them.
        for extra, field in (({"egress": {"allow": []}}, "egress"),
                             ({"limits": {"memory": "64MiB"}}, "limits.memory"),
                             ({"limits": {"processes": 4}}, "limits.processes")):
            status, _, body = self.call("POST", f"/v1/sessions/{session['id']}/executions",
                                        {"code": "print(1)", **extra})
            self.assertEqual(status, 400, body)
            error = json.loads(body)["error"]
            self.assertEqual(error["code"], "invalid_request")
            self.assertEqual(error["field"], field)
        self.assertEqual(self.run_in(session, "print(1)", limits={"wall_time": "5s"})["stdout"],
                         "1\n")

    def test_a_second_concurrent_execution_is_409(self):
        session = self.create("python")
        results = {}

        def slow():
            self.run_in(session, "open('started', 'w').close()\nimport time\ntime.sleep(3)")
            results["slow"] = True

        worker = threading.Thread(target=slow)
        worker.start()
        # The second request goes once the first has visibly begun running.
        s.wait_until(lambda: self.call(
            "GET", f"/v1/sessions/{session['id']}/files/started")[0] == 200)
        status, _, body = self.call(
            "POST", f"/v1/sessions/{session['id']}/executions", {"code": "print(1)"})
        worker.join()
        self.assertEqual(status, 409, body)
        self.assertEqual(json.loads(body)["error"]["code"], "session_busy")
        self.assertTrue(results.get("slow"))
        self.assertEqual(self.run_in(session, "print(2)")["stdout"], "2\n")

    def test_state_lost_after_an_oom_is_said_plainly_and_files_are_kept(self):
        session = self.create("python")
        self.run_in(session, "x = 1\nopen('kept.txt', 'w').write('yes')")
        oom = self.run_in(session, "b = bytearray(2 * 1024 ** 3)")
        self.assertEqual(oom["status"], "memory_limit", oom["summary"])
        after = self.run_in(session, "print(open('kept.txt').read())\nprint('x' in globals())")
        self.assertEqual(after["stdout"], "yes\nFalse\n")
        self.assertIn("state", after["summary"])
        self.assertIn("fresh interpreter", after["summary"])
        # The note names the execution the caller saw end the interpreter.
        self.assertIn(f"ended by execution {oom['id']} (memory_limit)", after["summary"])
        status, _, body = self.call("GET", f"/v1/sessions/{session['id']}")
        self.assertEqual(json.loads(body)["interpreter_restarts"], 1)

    def test_an_execution_over_its_wall_time_is_a_timeout_and_the_next_starts_fresh(self):
        session = self.create("python")
        quick = self.run_in(session, "x = 1\nopen('kept.txt', 'w').write('yes')",
                            limits={"wall_time": "1.5s"})
        self.assertEqual(quick["status"], "ok", quick["summary"])
        # Ended in time, the execution left its interpreter running under the session's limits.
        self.assertEqual(self.run_in(session, "print(x)")["stdout"], "1\n")
        slow = self.run_in(session, "import time\nprint('started', flush=True)\ntime.sleep(600)",
                           limits={"wall_time": "1.5s"})
        self.assertEqual(slow["status"], "timeout", slow["summary"])
        self.assertEqual(slow["timeout"], "wall")
        self.assertEqual(slow["stdout"], "started\n")
        # The one-shot run's words, naming the execution's limit, not the session's.
        self.assertTrue(slow["reason"].startswith("wall time limit 1.5 s reached; "), slow["reason"])
        self.assertIn("the next execution starts a fresh interpreter", slow["reason"])
        self.assertGreaterEqual(slow["usage"]["wall_time_ms"], 1500)
        after = self.run_in(session, "print(open('kept.txt').read())\nprint('x' in globals())")
        self.assertEqual(after["stdout"], "yes\nFalse\n")
        self.assertIn(f"ended by execution {slow['id']} (timeout)", after["summary"])
        status, _, body = self.call("GET", f"/v1/sessions/{session['id']}")
        self.assertEqual(json.loads(body)["interpreter_restarts"], 1)

    def test_a_session_execution_reports_its_own_usage(self):
        session = self.create("python")
        busy = self.run_in(session, "b = b'x' * (64 * 1024 ** 2)\nsum(range(3 * 10 ** 6))")
        self.assertEqual(busy["status"], "ok", busy["summary"])
        usage = busy["usage"]
        self.assertIsInstance(usage["wall_time_ms"], int)
        self.assertGreater(usage["peak_memory_bytes"], 64 * 1024 ** 2)
        self.assertGreater(usage["cpu_user_ms"] + usage["cpu_system_ms"], 0)

    def test_a_fresh_interpreter_gets_what_is_left_of_the_cpu_budget_not_a_new_one(self):
        # Room for the interpreter's start, which takes over a second of CPU in an emulated VM.
        server = s.Server(AIRLOCK, s.base_config(session_cpu_time="5s"))
        self.addCleanup(server.close)
        status, _, body = server.request("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual(status, 201, body)
        path = "/v1/sessions/" + json.loads(body)["id"]
        self.addCleanup(server.request, "DELETE", path)
        # A thread of the interpreter's own outlives its execution (kill(-1) spares it) and
        # spends the session's whole budget between executions, which ends the sandbox.
        status, _, body = server.request("POST", path + "/executions", {
            "code": "import threading\n"
                    "def spin():\n    while True: pass\n"
                    "threading.Thread(target=spin, daemon=True).start()\nprint('spinning')"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["stdout"], "spinning\n")
        # Until the budget has ended the interpreter, executions run in it (one may end with
        # it). Before, a fresh interpreter then got the whole budget again, and the spinning
        # went on: every execution here ran.
        for _ in range(90):
            status, _, body = server.request("POST", path + "/executions", {"code": "print(1)"})
            self.assertEqual(status, 200, body)
            result = json.loads(body)
            if result["status"] == "setup_error":
                break
            time.sleep(1)
        self.assertEqual(result["status"], "setup_error", body)
        self.assertIn("used its CPU budget (5 s over its life)", result["reason"])
        # The files are still there to read.
        status, _, body = server.request("GET", path + "/files")
        self.assertEqual(status, 200, body)

    def test_two_sessions_cannot_see_each_others_files_or_processes(self):
        a = self.create("bash")
        b = self.create("bash")
        token = "isolation-" + a["id"]
        self.run_in(a, "echo secret > secret.txt")
        # The code reaches the shell on stdin, so no command line here holds the token but sleep's.
        look = "ls; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"
        # A session's processes end with their execution, so this one holds its named process
        # (and says what it sees itself) while b looks.
        holder = threading.Thread(target=self.call, args=(
            "POST", f"/v1/sessions/{a['id']}/executions",
            {"code": f"(exec -a {token} sleep 600 &)\nsleep 0.5\n{{ {look}; }} > seen.txt\nsleep 4"}))
        holder.start()
        self.assertTrue(s.wait_until(lambda: processes_with(token)))
        seen = self.run_in(b, look)
        holder.join()
        self.assertNotIn("secret.txt", seen["stdout"])
        self.assertNotIn(token, seen["stdout"])
        status, _, own = self.call("GET", f"/v1/sessions/{a['id']}/files/seen.txt")
        self.assertEqual(status, 200)
        self.assertIn(token.encode(), own)  # the probe could see its own
        status, _, _ = self.call("GET", f"/v1/sessions/{a['id']}", key=s.ADMIN_KEY)
        self.assertEqual(status, 404)  # another key does not even see it

    def test_caps_per_key_are_429(self):
        made = [self.create("python") for _ in range(3)]
        status, headers, body = self.call("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual(status, 429, body)
        self.assertEqual(json.loads(body)["error"]["code"], "too_many_sessions_for_key")
        self.assertEqual(len(made), 3)


class Expiry(unittest.TestCase):
    def setUp(self):
        self.server = s.Server(AIRLOCK, s.base_config())
        self.addCleanup(self.server.close)

    def expect_removed(self, session, ends_key):
        # This server's only session: its driver is the one bash_driver.sh below the server.
        pids = [pid for pid in processes_with("bash_driver.sh")
                if descends_from(pid, self.server.process.pid)]
        self.assertTrue(pids)
        cgroups = [d for d in cgroup_dirs(pids[0]) if os.path.isdir(d)]
        self.assertTrue(cgroups)
        self.assertTrue(s.wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids)))
        for cgroup in cgroups:
            self.assertTrue(s.wait_until(lambda: not os.path.isdir(cgroup)), cgroup)
        status, _, _ = self.server.request("GET", "/v1/sessions/" + session["id"], key=s.TEST_KEY)
        self.assertEqual(status, 404)

    def start(self, **timeouts):
        status, _, body = self.server.request(
            "POST", "/v1/sessions", {"runtime": "bash", **timeouts}, key=s.TEST_KEY)
        self.assertEqual(status, 201, body)
        session = json.loads(body)
        status, _, body = self.server.request(
            "POST", f"/v1/sessions/{session['id']}/executions", {"code": "echo used"},
            key=s.TEST_KEY)
        self.assertEqual(status, 200, body)
        return session

    def test_idle_expiry_removes_the_sandbox(self):
        session = self.start(idle_timeout="1s", max_lifetime="10m")
        self.assertEqual(session["idle_timeout"], "1 s")
        self.expect_removed(session, "idle_expires_at")

    def test_lifetime_expiry_removes_the_sandbox_although_it_was_used(self):
        session = self.start(idle_timeout="10m", max_lifetime="5s")
        self.assertEqual(session["max_lifetime"], "5 s")
        self.expect_removed(session, "lifetime_ends_at")


class OutputKill(unittest.TestCase):
    """Sessions under a policy that kills on output overflow."""

    def setUp(self):
        source = os.path.join(os.path.dirname(__file__), "..", "..", "policies", "default.yaml")
        policy_dir = tempfile.TemporaryDirectory(prefix="airlock-sessions-test-")
        self.addCleanup(policy_dir.cleanup)
        shutil.copy(source, policy_dir.name)
        with open(os.path.join(policy_dir.name, "loud.yaml"), "w") as f:
            f.write("description: kills on overflow\nextends: default\n"
                    "limits:\n  output_kept: 1KiB\n  output_overflow: kill\n")
        self.server = s.Server(AIRLOCK, s.base_config(policy_dirs=[policy_dir.name]))
        self.addCleanup(self.server.close)

    def test_output_over_the_kept_bytes_ends_the_execution_as_an_output_limit(self):
        def call(method, path, body=None):
            status, _, data = self.server.request(method, path, body=body, key=s.ADMIN_KEY)
            self.assertIn(status, (200, 201), data)
            return json.loads(data)
        session = call("POST", "/v1/sessions", {"runtime": "python", "policy": "loud"})
        self.addCleanup(self.server.request, "DELETE", "/v1/sessions/" + session["id"],
                        key=s.ADMIN_KEY)
        run = lambda code: call("POST", f"/v1/sessions/{session['id']}/executions", {"code": code})
        self.assertEqual(run("x = 1\nprint('x' * 100)")["status"], "ok")
        loud = run("import time\nwhile True:\n    print('x' * 100, flush=True)\n"
                   "    time.sleep(0.001)")
        self.assertEqual(loud["status"], "output_limit", loud["summary"])
        self.assertTrue(loud["reason"].startswith("output limit reached; "), loud["reason"])
        self.assertGreater(loud["stdout_bytes"], 1024)
        after = run("print('x' in globals())")
        self.assertEqual(after["stdout"], "False\n")
        self.assertIn(f"ended by execution {loud['id']} (output_limit)", after["summary"])


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    unittest.main(verbosity=2)
