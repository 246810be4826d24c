"""Tests for runner/drivers/envd_agent.py: the agent runs on the host (no sandbox) with a temporary
directory as its home, requests written to its stdin and its fd 3 read back, one agent per test."""

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.normpath(os.path.join(HERE, "..", "..", "runner", "drivers", "envd_agent.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TIMEOUT = 30  # seconds: generous, only a broken agent waits this long


def b64(data):
    return base64.b64encode(data).decode()


class AgentProcess:
    """A running agent: call() sends a request and waits for its reply; events(key) collects."""

    def __init__(self, home, extra_env=None):
        control_read, control_write = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AIRLOCK_AGENT_HOME": home}
        env.update(extra_env or {})
        # The agent's control channel is fd 3 exactly, so a shell moves the pipe there; the
        # interpreter's flags are the service's.
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$0" -I -S "$1" 3>&%d %d>&-' % (control_write, control_write),
             PYTHON, AGENT], stdin=subprocess.PIPE, pass_fds=(control_write,), env=env,
            cwd=home)
        os.close(control_write)
        self.control = os.fdopen(control_read, "rb")
        self.cond = threading.Condition()
        self.replies, self.events, self.lines = {}, {}, []
        self.next_id = 0
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        self.wait_for(lambda: "ready" in self.events)

    def read(self):
        for line in self.control:
            kind, key, body = line.decode().rstrip("\n").split(" ", 2)
            with self.cond:
                self.lines.append(line)
                if kind == "R":
                    self.replies[key] = json.loads(body)
                else:
                    self.events.setdefault(key, []).append(json.loads(body))
                self.cond.notify_all()

    def wait_for(self, predicate, timeout=TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError("timed out; last lines: %r" % [l[:200] for l in self.lines[-5:]])

    def send_raw(self, data):
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def call(self, op, **fields):
        self.next_id += 1
        request_id = str(self.next_id)
        self.send_raw(("%s %s\n" % (request_id, json.dumps(dict(fields, op=op)))).encode())
        self.wait_for(lambda: request_id in self.replies)
        return self.replies[request_id]

    def ok(self, op, **fields):
        reply = self.call(op, **fields)
        assert reply["ok"], reply
        return reply

    def events_of(self, key):
        with self.cond:
            return list(self.events.get(key, []))

    def until(self, key, kind, timeout=TIMEOUT):
        """The events of key once one of type kind has arrived."""
        self.wait_for(lambda: any(e["type"] == kind for e in self.events.get(key, [])), timeout)
        return self.events_of(key)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.stdin.close()
            try:
                self.popen.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.reader.join(TIMEOUT)
        self.control.close()


def output(events, stream="stdout"):
    return b"".join(base64.b64decode(e["data"]) for e in events
                    if e["type"] == "data" and e["stream"] == stream)


def end(events):
    return [e for e in events if e["type"] == "end"][0]


class AgentTest(unittest.TestCase):
    extra_env = None

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.home = os.path.realpath(self.tmp.name)
        self.pids = []
        self.agent = AgentProcess(self.home, self.extra_env)

    def tearDown(self):
        self.agent.stop()
        for pid in self.pids:  # the agent kills its children at EOF; this is belt and braces
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        self.tmp.cleanup()

    def start(self, cmd, *args, **fields):
        pid = self.agent.ok("process.start", cmd=cmd, args=list(args), **fields)["pid"]
        self.pids.append(pid)
        return pid

    def run_code(self, code, context_id=None, language=None):
        self.runs = getattr(self, "runs", 0) + 1
        run_id = "run-%d" % self.runs
        self.agent.ok("code.run", run_id=run_id, code=code, context_id=context_id,
                      language=language)
        return run_id, self.agent.until("r:" + run_id, "end_of_execution")


class ProcessTest(AgentTest):
    extra_env = {"AIRLOCK_ENVS": json.dumps({"WORKSPACE_VAR": "from-create"})}

    def test_output_and_exit_code(self):
        pid = self.start("/bin/sh", "-c", "echo out; echo err >&2; exit 3")
        events = self.agent.until("p:%d" % pid, "end")
        self.assertEqual(output(events), b"out\n")
        self.assertEqual(output(events, "stderr"), b"err\n")
        self.assertEqual(end(events)["exit_code"], 3)
        self.assertEqual(end(events)["status"], "exit status 3")
        self.assertEqual(events[-1]["type"], "end")

    def test_environment_and_cwd(self):
        os.mkdir(os.path.join(self.home, "sub"))
        pid = self.start("sh", "-c", 'echo "$HOME $WORKSPACE_VAR $MINE $(pwd)"',
                         envs={"MINE": "mine"}, cwd="sub")
        events = self.agent.until("p:%d" % pid, "end")
        self.assertEqual(output(events).decode(),
                         "%s from-create mine %s/sub\n" % (self.home, self.home))

    def test_stdin(self):
        pid = self.start("/bin/cat", stdin=True)
        self.agent.ok("process.input", pid=pid, data=b64(b"hello "))
        self.agent.ok("process.input", pid=pid, data=b64(b"world"))
        self.agent.ok("process.close_stdin", pid=pid)
        events = self.agent.until("p:%d" % pid, "end")
        self.assertEqual(output(events), b"hello world")
        self.assertEqual(end(events)["exit_code"], 0)

    def test_stdin_larger_than_a_pipe_is_queued(self):
        pid = self.start("/usr/bin/wc", "-c", stdin=True)
        for _ in range(4):
            self.agent.ok("process.input", pid=pid, data=b64(b"x" * (1 << 20)))
        self.agent.ok("process.close_stdin", pid=pid)
        self.assertEqual(int(output(self.agent.until("p:%d" % pid, "end"))), 4 << 20)
        self.assertEqual(self.agent.call("process.input", pid=pid, data="")["error"]["code"],
                         "not_found")

    def test_no_stdin_reads_dev_null(self):
        pid = self.start("/bin/cat", stdin=False)
        self.assertEqual(end(self.agent.until("p:%d" % pid, "end"))["exit_code"], 0)

    def test_signal(self):
        pid = self.start("/bin/sleep", "100")
        self.agent.ok("process.signal", pid=float(pid), signal=9.0)  # as a protobuf Struct has it
        result = end(self.agent.until("p:%d" % pid, "end"))
        self.assertEqual((result["exit_code"], result["exited"], result["signal"]), (-1, False, 9))
        self.assertEqual(result["status"], "signal: killed")
        self.assertEqual(self.agent.call("process.signal", pid=pid, signal=9)["error"]["code"],
                         "not_found")

    def test_list_and_find_by_tag(self):
        pid = self.start("/bin/sleep", "100", tag="server")
        listed = self.agent.ok("process.list")["processes"]
        self.assertEqual([(p["pid"], p["tag"], p["args"]) for p in listed],
                         [(pid, "server", ["100"])])
        self.assertEqual(self.agent.ok("process.find", tag="server")["pid"], pid)
        self.assertEqual(self.agent.call("process.find", tag="other")["error"]["code"],
                         "not_found")
        self.agent.ok("process.signal", pid=pid, signal=15)
        self.agent.until("p:%d" % pid, "end")
        self.assertEqual(self.agent.ok("process.list")["processes"], [])

    def test_start_failures_answer_errors_and_no_events(self):
        script = os.path.join(self.home, "script")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n")
        cases = [("/no/such/program", {}, "not_found"), (script, {}, "permission_denied"),
                 ("/bin/true", {"cwd": "/no/such/dir"}, "invalid_argument")]
        for cmd, fields, code in cases:
            reply = self.agent.call("process.start", cmd=cmd, args=[], **fields)
            self.assertEqual(reply["error"]["code"], code, cmd)
        self.assertEqual(self.agent.ok("process.list")["processes"], [])

    def test_background_process_outlives_others(self):
        server = self.start("/bin/sleep", "100")
        quick = self.start("/bin/true")
        self.agent.until("p:%d" % quick, "end")
        self.assertIn(server, [p["pid"] for p in self.agent.ok("process.list")["processes"]])
        self.assertEqual(self.agent.events_of("p:%d" % server), [])

    def test_a_grandchild_holding_the_pipe_does_not_hold_the_end(self):
        # `cmd &` in a command: the command ends when the shell does, its output all delivered.
        pid = self.start("/bin/sh", "-c", "sleep 100 & echo started")
        events = self.agent.until("p:%d" % pid, "end")
        self.assertEqual(output(events), b"started\n")
        self.assertEqual(end(events)["exit_code"], 0)

    def test_large_output_is_complete_and_chunked(self):
        pid = self.start("/bin/sh", "-c", "head -c 1000000 /dev/zero")
        events = self.agent.until("p:%d" % pid, "end")
        self.assertEqual(len(output(events)), 1000000)
        self.assertTrue(all(len(base64.b64decode(e["data"])) <= 65536
                            for e in events if e["type"] == "data"))

    def test_stdin_eof_kills_children_and_what_they_left_and_exits_zero(self):
        pid = self.start("/bin/sleep", "100")
        shell = self.start("/bin/sh", "-c", "sleep 100 & echo $!")
        left = int(output(self.agent.until("p:%d" % shell, "end")))
        self.agent.popen.stdin.close()
        self.assertEqual(self.agent.popen.wait(TIMEOUT), 0)
        for survivor in (pid, left):
            self.wait_gone(survivor)

    def test_a_closed_control_channel_ends_the_agent_and_its_children(self):
        control_read, control_write = os.pipe()
        agent = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$0" -I -S "$1" 3>&%d %d>&-' % (control_write, control_write),
             PYTHON, AGENT], stdin=subprocess.PIPE, pass_fds=(control_write,),
            env={"AIRLOCK_AGENT_HOME": self.home})
        os.close(control_write)
        with os.fdopen(control_read, "rb") as control:
            self.assertEqual(control.readline(), b"E ready {}\n")
            agent.stdin.write(b'1 {"op":"process.start","cmd":"/bin/sh","args":["-c",'
                              b'"read line; echo $line; sleep 100"]}\n')
            agent.stdin.flush()
            pid = json.loads(control.readline().split(b" ", 2)[2])["pid"]
            self.pids.append(pid)
        agent.stdin.write(b'2 {"op":"process.input","pid":%d,"data":"eAo="}\n' % pid)
        agent.stdin.flush()  # its echo is written to a closed fd 3
        self.assertEqual(agent.wait(TIMEOUT), 0)
        agent.stdin.close()
        self.wait_gone(pid)

    def wait_gone(self, pid):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return  # dead; its new parent has yet to reap it
            except FileNotFoundError:
                return
            time.sleep(0.05)
        self.fail("%d outlived the agent" % pid)


class FilesystemTest(AgentTest):
    def path(self, *parts):
        return os.path.join(self.home, *parts)

    def test_write_truncates_then_appends_and_reads_in_chunks(self):
        self.agent.ok("fs.write", path="a/b.txt", data=b64(b"stale content"), truncate=True)
        written = self.agent.ok("fs.write", path="a/b.txt", data=b64(b"0123"), truncate=True)
        self.assertEqual((written["type"], written["size"], written["path"]),
                         ("file", 4, self.path("a", "b.txt")))
        self.agent.ok("fs.write", path="~/a/b.txt", data=b64(b"456789"), truncate=False)
        first = self.agent.ok("fs.read", path="a/b.txt", offset=0, length=6)
        rest = self.agent.ok("fs.read", path=self.path("a", "b.txt"), offset=6, length=6)
        self.assertEqual(base64.b64decode(first["data"]), b"012345")
        self.assertEqual((first["size"], first["eof"]), (10, False))
        self.assertEqual(base64.b64decode(rest["data"]), b"6789")
        self.assertTrue(rest["eof"])

    def test_fifo_is_refused_without_blocking(self):
        os.mkfifo(self.path("fifo"))
        for op, fields in (("fs.read", {}), ("fs.write", {"data": b64(b"x"), "truncate": False})):
            reply = self.agent.call(op, path="fifo", **fields)
            self.assertEqual(reply["error"]["code"], "invalid_argument", op)
        self.assertEqual(self.agent.ok("fs.stat", path="fifo")["type"], "other")

    def test_read_errors(self):
        self.assertEqual(self.agent.call("fs.read", path="missing")["error"]["code"], "not_found")
        self.assertEqual(self.agent.call("fs.read", path=".")["error"]["code"],
                         "invalid_argument")

    def test_stat_of_a_symlink(self):
        with open(self.path("target"), "w") as f:
            f.write("abc")
        os.symlink("target", self.path("link"))
        os.symlink("nowhere", self.path("dangling"))
        link = self.agent.ok("fs.stat", path="link")
        self.assertEqual((link["type"], link["symlink_target"], link["name"]),
                         ("file", "target", "link"))
        self.assertEqual(self.agent.ok("fs.stat", path="dangling")["type"], "symlink")
        target = self.agent.ok("fs.stat", path="target")
        self.assertEqual((target["size"], target["symlink_target"]), (3, None))
        self.assertEqual(self.agent.call("fs.stat", path="missing")["error"]["code"],
                         "not_found")

    def test_mkdir_then_already_exists(self):
        made = self.agent.ok("fs.mkdir", path="x/y")
        self.assertEqual((made["type"], made["path"]), ("dir", self.path("x", "y")))
        self.assertTrue(os.path.isdir(self.path("x", "y")))
        self.assertEqual(self.agent.call("fs.mkdir", path="x/y")["error"]["code"],
                         "already_exists")

    def test_remove_files_and_trees(self):
        os.makedirs(self.path("tree", "deep"))
        open(self.path("tree", "deep", "f"), "w").close()
        open(self.path("file"), "w").close()
        self.agent.ok("fs.remove", path="tree")
        self.agent.ok("fs.remove", path="file")
        self.assertEqual(os.listdir(self.home), [])
        self.assertEqual(self.agent.call("fs.remove", path="file")["error"]["code"], "not_found")

    def test_remove_a_tree_deeper_than_rmtree_can_go(self):
        # Deeper than Python's recursion limit and than a small fd limit: rmtree gives up.
        top = self.path("deep")
        os.mkdir(top)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(1500):
            os.mkdir("d", dir_fd=fd)
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        os.close(fd)
        self.agent.ok("fs.remove", path="deep")
        self.assertEqual(os.listdir(self.home), [])

    def test_a_name_that_is_not_utf8_is_listed_with_a_replacement_character(self):
        os.mkdir(self.path("d"))
        open(os.path.join(os.fsencode(self.path("d")), b"bad\xff"), "w").close()
        open(self.path("d", "good"), "w").close()
        entries = self.agent.ok("fs.list", path="d")["entries"]
        self.assertEqual(sorted(e["name"] for e in entries), ["bad\ufffd", "good"])
        # The service's JSON parser refuses a lone surrogate escape, and with it the whole reply.
        self.assertFalse(any(b"\\udc" in line for line in self.agent.lines), self.agent.lines)

    def test_move_makes_parents(self):
        with open(self.path("from"), "w") as f:
            f.write("moved")
        moved = self.agent.ok("fs.move", source="from", destination="new/dir/to")
        self.assertEqual(moved["path"], self.path("new", "dir", "to"))
        with open(self.path("new", "dir", "to")) as f:
            self.assertEqual(f.read(), "moved")
        self.assertEqual(self.agent.call("fs.move", source="from", destination="x")["error"]
                         ["code"], "not_found")

    def test_list_depth(self):
        os.makedirs(self.path("d", "e", "f"))
        open(self.path("d", "file"), "w").close()
        one = self.agent.ok("fs.list", path="d")["entries"]
        self.assertEqual(sorted(e["name"] for e in one), ["e", "file"])
        two = self.agent.ok("fs.list", path="d", depth=2)["entries"]
        self.assertEqual(sorted(e["path"] for e in two),
                         [self.path("d", "e"), self.path("d", "e", "f"), self.path("d", "file")])
        self.assertEqual(self.agent.call("fs.list", path="d/file")["error"]["code"],
                         "invalid_argument")
        self.assertEqual(self.agent.call("fs.list", path="nope")["error"]["code"], "not_found")

    def test_watch_reports_create_and_write(self):
        os.mkdir(self.path("watched"))
        watch_id = self.agent.ok("fs.watch_start", path="watched", recursive=False)["watch_id"]
        self.agent.ok("fs.write", path="watched/new.txt", data=b64(b"x"), truncate=True)
        key = "w:" + watch_id
        self.agent.wait_for(lambda: {"create", "write"} <= {
            e["type"] for e in self.agent.events.get(key, [])})
        self.assertEqual({e["name"] for e in self.agent.events_of(key)}, {"new.txt"})
        self.agent.ok("fs.watch_stop", watch_id=watch_id)
        self.assertEqual(self.agent.call("fs.watch_stop", watch_id=watch_id)["error"]["code"],
                         "not_found")

    def test_recursive_watch_sees_new_subdirectories(self):
        watch_id = self.agent.ok("fs.watch_start", path=".", recursive=True)["watch_id"]
        self.agent.ok("fs.mkdir", path="sub")
        key = "w:" + watch_id
        self.agent.wait_for(lambda: any(e["name"] == "sub" for e in self.agent.events.get(key, [])))
        # The new directory's watch is added when its create event is handled: wait for it so.
        self.agent.ok("fs.stat", path="sub")
        self.agent.ok("fs.write", path="sub/inner", data=b64(b"x"), truncate=True)
        self.agent.wait_for(lambda: any(e["name"] == "sub/inner"
                                        for e in self.agent.events.get(key, [])))


class CodeTest(AgentTest):
    extra_env = {"AIRLOCK_ENVS": json.dumps({"WORKSPACE_VAR": "from-create"})}

    def types(self, events):
        return [e["type"] for e in events]

    def test_state_across_runs_and_main_result(self):
        _, events = self.run_code("x = 40\nprint('set')")
        self.assertEqual(self.types(events), ["stdout", "number_of_executions",
                                              "end_of_execution"])
        self.assertEqual(events[0]["text"], "set\n")
        _, events = self.run_code("x + 2")
        result = [e for e in events if e["type"] == "result"][0]
        self.assertEqual((result["text"], result["is_main_result"]), ("42", True))
        self.assertEqual(events[-2], {"type": "number_of_executions", "execution_count": 2})

    def test_environment_of_runs(self):
        _, events = self.run_code("import os\nos.environ['WORKSPACE_VAR'], os.getcwd()")
        self.assertEqual(events[0]["text"], repr(("from-create", self.home)))

    def test_envs_set_later_reach_running_kernels_and_new_processes(self):
        self.run_code("x = 1")  # the default kernel is running
        self.agent.ok("env.set", envs={"LATER": "given", "WORKSPACE_VAR": "replaced"})
        _, events = self.run_code("import os\nos.environ['LATER'], os.environ['WORKSPACE_VAR'], x")
        self.assertEqual(events[0]["text"], repr(("given", "replaced", 1)))
        self.assertEqual(events[-2], {"type": "number_of_executions", "execution_count": 2})
        context = self.agent.ok("ctx.create", language="python")["context"]["id"]
        _, events = self.run_code("import os\nos.environ['LATER']", context)
        self.assertEqual(events[0]["text"], repr("given"))
        pid = self.start("/bin/sh", "-c", "echo $LATER $WORKSPACE_VAR")
        self.assertEqual(output(self.agent.until("p:%d" % pid, "end")), b"given replaced\n")
        for bad in ({"A=B": "x"}, {"": "x"}, {"A": "x\0y"}, {"A": 1}):
            reply = self.agent.call("env.set", envs=bad)
            self.assertEqual(reply["error"]["code"], "invalid_argument", reply)

    def test_errors_by_name(self):
        _, events = self.run_code("print('before')\nundefined_name")
        error = [e for e in events if e["type"] == "error"][0]
        self.assertEqual((error["name"], error["value"]),
                         ("NameError", "name 'undefined_name' is not defined"))
        self.assertIn("undefined_name", error["traceback"])
        self.assertNotIn("envd_kernel", error["traceback"])
        self.assertLess(self.types(events).index("stdout"), self.types(events).index("error"))
        _, events = self.run_code("1/0")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"],
                         ["ZeroDivisionError"])
        _, events = self.run_code("def broken(:\n  pass")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"], ["SyntaxError"])

    def test_stdout_streams_before_the_run_ends_and_interrupt_keeps_state(self):
        self.run_code("kept = 'still here'")
        run_id = "slow"
        self.agent.ok("code.run", run_id=run_id, code="import time\nprint('early')\n"
                      "time.sleep(100)")
        events = self.agent.until("r:" + run_id, "stdout")
        self.assertNotIn("end_of_execution", self.types(events))
        self.agent.ok("code.interrupt", run_id=run_id)
        events = self.agent.until("r:" + run_id, "end_of_execution")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"],
                         ["KeyboardInterrupt"])
        _, events = self.run_code("kept")
        self.assertEqual(events[0]["text"], "'still here'")

    def test_kernel_death_is_reported_and_the_context_restarts_fresh(self):
        self.run_code("lost = 1")
        _, events = self.run_code("import os\nos._exit(1)")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"], ["KernelDied"])
        _, events = self.run_code("lost")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"], ["NameError"])
        _, events = self.run_code("1 + 1")
        self.assertEqual(events[0]["text"], "2")

    def test_contexts_are_isolated(self):
        context = self.agent.ok("ctx.create", language="python", cwd="")["context"]
        self.assertEqual(context["language"], "python")
        self.run_code("secret = 1")
        _, events = self.run_code("secret", context["id"])
        self.assertEqual([e["name"] for e in events if e["type"] == "error"], ["NameError"])
        listed = {c["id"] for c in self.agent.ok("ctx.list")["contexts"]}
        self.assertEqual(listed, {"default", context["id"]})
        self.agent.ok("ctx.remove", context_id=context["id"])
        self.assertEqual(self.agent.call("code.run", run_id="r", code="1",
                                         context_id=context["id"])["error"]["code"], "not_found")
        self.assertEqual(self.agent.call("ctx.create", language="cobol")["error"]["code"],
                         "invalid_argument")

    def test_restart_forgets_state(self):
        self.run_code("x = 1")
        self.agent.ok("ctx.restart", context_id="default")
        _, events = self.run_code("x")
        self.assertEqual([e["name"] for e in events if e["type"] == "error"], ["NameError"])

    def test_output_of_streams_and_subprocesses(self):
        _, events = self.run_code("import os, sys\nprint('err', file=sys.stderr)\n"
                                  "os.system('echo from a child')\nprint('\\udcff')")
        texts = [(e["type"], e["text"]) for e in events if e["type"] in ("stdout", "stderr")]
        self.assertIn(("stderr", "err\n"), texts)
        self.assertIn(("stdout", "from a child\n"), texts)
        self.assertIn(("stdout", "\\udcff\n"), texts)

    def test_top_level_await(self):
        _, events = self.run_code("import asyncio\nawait asyncio.sleep(0)\nawait asyncio.sleep(0, 42)")
        self.assertEqual(events[0]["text"], "42")

    def test_display_gives_results_in_order(self):
        _, events = self.run_code("print('first')\ndisplay([1], 'two')\nprint('last')")
        self.assertEqual([(e["type"], e.get("text")) for e in events[:4]],
                         [("stdout", "first\n"), ("result", "[1]"), ("result", "'two'"),
                          ("stdout", "last\n")])

    def test_rich_formats(self):
        _, events = self.run_code(
            "class Rich:\n"
            "    def _repr_html_(self): return '<b>x</b>'\n"
            "    def _repr_markdown_(self): return '**x**'\n"
            "    def __repr__(self): return 'Rich()'\n"
            "Rich()")
        result = events[0]
        self.assertEqual((result["text"], result["html"], result["markdown"]),
                         ("Rich()", "<b>x</b>", "**x**"))
        self.assertNotIn("png", result)

    @unittest.skipUnless(subprocess.run([PYTHON, "-c", "import matplotlib"],
                                        capture_output=True).returncode == 0, "no matplotlib")
    def test_chart_becomes_a_png_result(self):
        _, events = self.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\n"
                                  "plt.show()")
        results = [e for e in events if e["type"] == "result"]
        self.assertEqual(len(results), 1, events)
        self.assertTrue(base64.b64decode(results[0]["png"]).startswith(b"\x89PNG"))
        self.assertEqual(results[0]["text"], "<Figure size 640x480 with 1 Axes>")
        self.assertFalse(results[0]["is_main_result"])
        _, events = self.run_code("len(plt.get_fignums())")  # closed after the run
        self.assertEqual(events[0]["text"], "0")

    @unittest.skipUnless(subprocess.run([PYTHON, "-c", "import pandas"],
                                        capture_output=True).returncode == 0, "no pandas")
    def test_dataframe_gives_html(self):
        _, events = self.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
        self.assertIn("<table", events[0]["html"])
        self.assertIn("a", events[0]["text"])


def kinds_and_texts(events):
    return [(e["type"], e.get("text")) for e in events
            if e["type"] in ("stdout", "stderr", "result")]


def error_names(events):
    return [e["name"] for e in events if e["type"] == "error"]


@unittest.skipUnless(os.path.exists("/usr/bin/node"), "no /usr/bin/node")
class JavaScriptTest(AgentTest):
    extra_env = {"AIRLOCK_ENVS": json.dumps({"WORKSPACE_VAR": "from-create"})}

    def js(self, code):
        return self.run_code(code, language="js")[1]

    def test_declarations_persist_across_runs_and_the_last_value_is_the_result(self):
        self.assertEqual(kinds_and_texts(self.js(
            "var a = 1; let b = 2; const c = 3; function f() { return 4 }; g = 5")),
            [("result", "5")])  # the value the code completes with
        events = self.js("a + b + c + f() + g")
        self.assertEqual(kinds_and_texts(events), [("result", "15")])
        self.assertTrue(events[0]["is_main_result"])
        self.assertEqual(events[-2], {"type": "number_of_executions", "execution_count": 2})
        self.assertEqual(kinds_and_texts(self.js("let b = 20; b")), [("result", "20")])
        self.assertEqual(kinds_and_texts(self.js("({ list: [1, 'two'] })")),
                         [("result", "{ list: [ 1, 'two' ] }")])
        self.assertEqual(kinds_and_texts(self.js("undefined")), [])

    def test_console_output_keeps_its_order_with_the_result(self):
        events = self.js("console.log('one'); console.error('two'); console.log('three', 3); 4")
        self.assertEqual(kinds_and_texts(events), [("stdout", "one\n"), ("stderr", "two\n"),
                                                   ("stdout", "three 3\n"), ("result", "4")])

    def test_errors_by_name(self):
        events = self.js("console.log('before'); undefinedName")
        error = [e for e in events if e["type"] == "error"][0]
        self.assertEqual((error["name"], error["value"]),
                         ("ReferenceError", "undefinedName is not defined"))
        self.assertNotIn("envd_node_kernel", error["traceback"])
        self.assertEqual(self.types(events)[:2], ["stdout", "error"])
        self.assertEqual(error_names(self.js("function g() { throw new TypeError('bad') }\ng()")),
                         ["TypeError"])
        self.assertEqual(error_names(self.js("let = = 1")), ["SyntaxError"])
        self.assertEqual(error_names(self.js("await Promise.reject(new RangeError('r'))")),
                         ["RangeError"])

    def types(self, events):
        return [e["type"] for e in events]

    def test_top_level_await(self):
        events = self.js("const x = await new Promise(r => setTimeout(() => r(40), 10)); x + 2")
        self.assertEqual(kinds_and_texts(events), [("result", "42")])
        self.assertEqual(kinds_and_texts(self.js("x")), [("result", "40")])

    def test_environment_cwd_and_nothing_of_the_agent(self):
        events = self.js("[process.env.WORKSPACE_VAR, process.cwd(), 'AIRLOCK_ENVS' in process.env]")
        self.assertEqual(kinds_and_texts(events),
                         [("result", "[ 'from-create', %r, false ]" % self.home)])
        # a child has fds 0-2 (stdin empty) and ls's own: none of the agent's pipes
        events = self.js("require('child_process').execSync('cat; ls /proc/self/fd').toString()")
        self.assertEqual(kinds_and_texts(events), [("result", "'0\\n1\\n2\\n3\\n'")])

    def test_envs_set_later_reach_a_running_kernel(self):
        self.js("kept = 1")
        self.agent.ok("env.set", envs={"LATER": "given"})
        self.assertEqual(kinds_and_texts(self.js("[process.env.LATER, kept]")),
                         [("result", "[ 'given', 1 ]")])

    def test_interrupt_ends_the_run_and_keeps_state(self):
        self.js("let kept = 'still here'")
        # Only synchronous code: a SIGINT landing in the inspector's part of an evaluation (as
        # the code goes async) can leave the kernel unable to evaluate (docs/workspace_agent.md).
        for code in ("console.log('early'); while (true) {}",):
            run_id = "slow-%d" % len(code)
            self.agent.ok("code.run", run_id=run_id, code=code, language="javascript")
            self.agent.until("r:" + run_id, "stdout")
            for attempt in range(5):  # a SIGINT landing just as the code goes async may be lost
                self.agent.ok("code.interrupt", run_id=run_id)
                try:
                    events = self.agent.until("r:" + run_id, "end_of_execution", 2)
                    break
                except AssertionError:
                    continue
            self.assertEqual(error_names(events), ["KeyboardInterrupt"])
        self.assertEqual(kinds_and_texts(self.js("kept")), [("result", "'still here'")])


class BashTest(AgentTest):
    def bash(self, code):
        return self.run_code(code, language="bash")[1]

    def test_cwd_variables_and_functions_persist(self):
        os.mkdir(os.path.join(self.home, "sub"))
        self.assertEqual(kinds_and_texts(self.bash("cd sub; x=41; f() { echo $((x + 1)); }")),
                         [])
        events = self.bash("echo $PWD; f")
        self.assertEqual("".join(t for _, t in kinds_and_texts(events)),
                         "%s/sub\n42\n" % self.home)
        self.assertEqual(events[-2], {"type": "number_of_executions", "execution_count": 2})

    def test_a_non_zero_status_is_an_error(self):
        events = self.bash("echo out; echo err >&2; false")
        self.assertEqual(kinds_and_texts(events), [("stdout", "out\n"), ("stderr", "err\n")])
        self.assertEqual([(e["name"], e["value"]) for e in events if e["type"] == "error"],
                         [("ExitCode", "1")])
        self.assertEqual(error_names(self.bash("no_such_command_here")), ["ExitCode"])
        self.assertEqual(error_names(self.bash("(exit 3); true")), [])

    def test_stdin_is_dev_null_and_the_agent_is_out_of_reach(self):
        events = self.bash("cat; read line; echo read=$?; ls /proc/self/fd; echo >&3")
        stdout = "".join(t for k, t in kinds_and_texts(events) if k == "stdout")
        self.assertEqual(stdout, "read=1\n0\n1\n2\n3\n")
        self.assertEqual(error_names(events), ["ExitCode"])  # fd 3 is closed to the code

    def test_break_and_exit(self):
        self.bash("kept=1")
        self.assertEqual(error_names(self.bash("break; echo no")), [])
        self.assertEqual(kinds_and_texts(self.bash("echo $kept")), [("stdout", "1\n")])
        self.assertEqual(error_names(self.bash("exit 2")), ["KernelDied"])
        self.assertEqual(kinds_and_texts(self.bash("echo fresh${kept}")), [("stdout", "fresh\n")])

    def test_interrupt_ends_the_run_and_keeps_state(self):
        self.bash("kept=yes")
        self.agent.ok("code.run", run_id="slow", code="echo early; sleep 100; echo after",
                      language="bash")
        self.agent.until("r:slow", "stdout")
        self.agent.ok("code.interrupt", run_id="slow")
        events = self.agent.until("r:slow", "end_of_execution")
        self.assertEqual(error_names(events), ["KeyboardInterrupt"])
        self.assertNotIn(("stdout", "after\n"), kinds_and_texts(events))
        self.assertEqual(kinds_and_texts(self.bash("echo $kept")), [("stdout", "yes\n")])

    def test_an_interrupt_lost_to_a_command_is_sent_again(self):
        # The first SIGINT is lost to the command (as one landing while bash forks it would be);
        # the agent sends it again until the run ends.
        self.agent.ok("code.run", run_id="deaf", language="bash",
                      code="bash -c 'trap \"\" INT; echo deaf; sleep 0.6; trap - INT; sleep 100'")
        self.agent.until("r:deaf", "stdout")
        self.agent.ok("code.interrupt", run_id="deaf")
        events = self.agent.until("r:deaf", "end_of_execution")
        self.assertEqual(error_names(events), ["KeyboardInterrupt"])

    def test_envs_of_a_run_and_of_the_workspace(self):
        self.bash("true")
        self.agent.ok("env.set", envs={"LATER": "given"})
        self.agent.ok("code.run", run_id="e", code="echo $LATER $ONCE", language="bash",
                      envs={"ONCE": "once"})
        self.assertEqual(kinds_and_texts(self.agent.until("r:e", "end_of_execution")),
                         [("stdout", "given once\n")])
        self.assertEqual(kinds_and_texts(self.bash("echo ${ONCE-unset}")),
                         [("stdout", "unset\n")])
        reply = self.agent.call("code.run", run_id="n", code="echo \0", language="bash")
        self.assertEqual(reply["error"]["code"], "invalid_argument")


class LanguageTest(AgentTest):
    def test_each_language_has_a_default_context_made_on_first_use(self):
        listed = self.agent.ok("ctx.list")["contexts"]
        self.assertEqual([(c["id"], c["language"]) for c in listed], [("default", "python")])
        self.run_code("x = 'py'", language="python3")
        self.run_code("x=sh", language="bash")
        _, events = self.run_code("echo $x", language="bash")
        self.assertEqual(kinds_and_texts(events), [("stdout", "sh\n")])
        _, events = self.run_code("x")
        self.assertEqual(kinds_and_texts(events), [("result", "'py'")])
        listed = {c["id"]: c["language"] for c in self.agent.ok("ctx.list")["contexts"]}
        self.assertEqual(listed, {"default": "python", "default-bash": "bash"})

    def test_a_created_context_has_its_language(self):
        context = self.agent.ok("ctx.create", language="Bash")["context"]
        self.assertEqual(context["language"], "bash")
        self.run_code("y=1", context["id"])
        _, events = self.run_code("echo ${y-none}", language="bash")  # not the default one
        self.assertEqual(kinds_and_texts(events), [("stdout", "none\n")])

    def test_an_unsupported_language_is_refused(self):
        for op, fields in (("code.run", {"run_id": "r", "code": "1"}), ("ctx.create", {})):
            reply = self.agent.call(op, language="cobol", **fields)
            self.assertEqual(reply["error"]["code"], "invalid_argument")
            for name in ("python", "javascript", "bash"):
                self.assertIn(name, reply["error"]["message"])


class RequestTest(AgentTest):
    def test_malformed_lines(self):
        self.agent.send_raw(b"no id here\n")
        self.agent.send_raw(b"7 not json\n")
        self.agent.wait_for(lambda: "7" in self.agent.replies)
        self.assertEqual(self.agent.replies["7"]["error"]["code"], "invalid_argument")
        self.agent.send_raw(b"8 {\"op\": 3}\n")
        self.agent.wait_for(lambda: "8" in self.agent.replies)
        self.assertEqual(self.agent.replies["8"]["error"]["code"], "invalid_argument")
        self.assertEqual(self.agent.call("no.such.op")["error"]["code"], "unimplemented")
        self.assertEqual(self.agent.call("fs.stat")["error"]["code"], "invalid_argument")
        self.assertEqual(self.agent.call("process.input", pid="x")["error"]["code"],
                         "invalid_argument")
        self.assertTrue(self.agent.call("process.list")["ok"])

    def test_pipelined_requests_are_all_answered(self):
        self.agent.send_raw(b"".join(b'%d {"op":"fs.stat","path":"."}\n' % i
                                     for i in range(1000, 1300)))
        self.agent.wait_for(lambda: all(str(i) in self.agent.replies for i in range(1000, 1300)))
        self.assertTrue(all(self.agent.replies[str(i)]["ok"] for i in range(1000, 1300)))

    def test_an_over_long_line_is_refused_and_skipped(self):
        self.agent.send_raw(b"99 " + b"x" * (9 << 20) + b"\n")
        self.agent.wait_for(lambda: "99" in self.agent.replies)
        self.assertEqual(self.agent.replies["99"]["error"]["code"], "invalid_argument")
        self.assertTrue(self.agent.call("process.list")["ok"])


class WatcherLimitTest(unittest.TestCase):
    """The Watcher in this process, over a libc whose inotify has run out of what it needs."""

    def watcher_error(self, init_result, add_result, number):
        import ctypes
        sys.path.insert(0, os.path.dirname(AGENT))
        try:
            import envd_files
            from envd_io import OpError
        finally:
            sys.path.pop(0)

        class Libc:
            def inotify_init1(self, flags):
                ctypes.set_errno(number)
                return init_result

            def inotify_add_watch(self, fd, path, mask):
                ctypes.set_errno(number)
                return add_result

        class Loop:
            def watch(self, fd, events, callback):
                pass

        real = ctypes.CDLL
        ctypes.CDLL = lambda *args, **kwargs: Libc()
        try:
            with tempfile.TemporaryDirectory() as top:
                envd_files.Watcher(Loop()).start(top, False)
        except OpError as e:
            return e.code, str(e)
        finally:
            ctypes.CDLL = real
        self.fail("no error")

    def test_out_of_inotify_instances_is_resource_exhausted(self):
        import errno
        code, message = self.watcher_error(-1, 1, errno.EMFILE)
        self.assertEqual(code, "resource_exhausted")
        self.assertIn("inotify", message)

    def test_out_of_inotify_watches_is_resource_exhausted(self):
        import errno
        code, message = self.watcher_error(5, -1, errno.ENOSPC)
        self.assertEqual(code, "resource_exhausted")
        self.assertIn("no more directories can be watched", message)


if __name__ == "__main__":
    unittest.main()
