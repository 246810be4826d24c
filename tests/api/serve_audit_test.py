"""Integration tests of the audit log of `airlock serve` and of `airlock audit`: written by
default under the state dir, each run with who, from where and under which policy hash, what was
blocked, refused requests, and policy reloads with old and new hashes.
Usage: serve_audit_test.py AIRLOCK_BINARY [unittest args]."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from serve_support import ADMIN_KEY, Server, TEST_KEY, base_config

AIRLOCK = None
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
WAIT_LIMIT_S = 60  # how long to wait for the log's writer; never asserted on

# unshare(CLONE_NEWUSER): refused by the floor with EPERM, and reported; the run goes on.
BLOCKED_CALL = (
    "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "print(libc.syscall(272, 0x10000000), ctypes.get_errno())\n"
)


def records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wait_for_record(path, predicate):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while True:
        found = [r for r in records(path) if predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def audit(*args):
    return subprocess.run([AIRLOCK, "audit", *args], capture_output=True, text=True, timeout=60)


class DefaultAuditLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.policy_dir = tempfile.mkdtemp(prefix="airlock-audit-test-")
        shutil.copy(os.path.join(SOURCE_DIR, "policies", "default.yaml"), cls.policy_dir)
        cls.server = Server(AIRLOCK, base_config(policy_dirs=[cls.policy_dir]))
        cls.log = os.path.join(cls.server.dir.name, "state", "audit.jsonl")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.policy_dir)

    def test_the_log_is_in_the_state_dir_and_starts_with_the_policies_in_force(self):
        self.assertEqual(os.stat(self.log).st_mode & 0o777, 0o600)
        start = wait_for_record(self.log, lambda r: r["event"] == "start")
        self.assertEqual(len(start), 1)
        self.assertIn("default", start[0]["policies"])
        self.assertTrue(start[0]["policies"]["default"].startswith("sha256:"))

    def test_a_run_names_key_runtime_client_policy_hash_and_what_was_blocked(self):
        result = self.server.json("POST", "/v1/executions", {"language": "python", "code": BLOCKED_CALL})
        self.assertEqual(result["status"], "ok", result["summary"])
        run_id = result["id"]
        runs = wait_for_record(self.log, lambda r: r.get("run_id") == run_id and r["event"] == "run")
        self.assertEqual(len(runs), 1)
        run = runs[0]
        self.assertEqual(run["key"], "test")
        self.assertEqual(run["runtime"], "python")
        self.assertIsNone(run["session_id"])
        self.assertTrue(run["client"].startswith("127.0.0.1:"), run["client"])
        self.assertEqual(run["policy"], "default")
        self.assertEqual(run["policy_hash"], result["policy"]["hash"])
        self.assertEqual(run["blocked"], 1)
        blocked = [r for r in records(self.log) if r.get("run_id") == run_id and r["event"] == "blocked"]
        self.assertEqual([b["syscall"] for b in blocked], ["unshare"])

        found = audit("run", run_id, "--log", self.log)
        self.assertEqual(found.returncode, 0, found.stderr)
        self.assertIn(f"run  {run_id}  key=test runtime=python", found.stdout)
        self.assertIn("unshare", found.stdout)
        as_json = audit("run", run_id, "--log", self.log, "--json")
        self.assertEqual([json.loads(line)["event"] for line in as_json.stdout.splitlines()],
                         ["run", "blocked"])

        listed = audit("blocked", "--since", "1h", "--key", "test", "--log", self.log)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(run_id, listed.stdout)
        later = audit("blocked", "--since", "2200-01-01", "--log", self.log)
        self.assertEqual((later.returncode, later.stdout), (1, ""))
        missing = audit("run", "ex_does_not_exist", "--log", self.log)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no run", missing.stderr)

    def test_a_session_run_names_its_session(self):
        session = self.server.json("POST", "/v1/sessions", {"runtime": "python"}, expect=201)
        try:
            result = self.server.json("POST", f"/v1/sessions/{session['id']}/executions",
                                      {"code": "print(1)"})
            runs = wait_for_record(self.log, lambda r: r.get("run_id") == result["id"] and r["event"] == "run")
            self.assertEqual(runs[0]["session_id"], session["id"])
        finally:
            self.server.request("DELETE", f"/v1/sessions/{session['id']}")

    def test_refused_requests_are_recorded(self):
        status, _, _ = self.server.request("POST", "/v1/executions", {"language": "python", "code": "1"},
                                           key="wrong-key")
        self.assertEqual(status, 401)
        status, _, _ = self.server.request("GET", "/v1/policies/python", key=TEST_KEY)
        self.assertEqual(status, 403)
        refused = wait_for_record(self.log, lambda r: r["event"] == "refused" and r["status"] == 403)
        self.assertEqual(refused[0]["key"], "test")
        self.assertEqual(refused[0]["code"], "policy_forbidden")
        self.assertEqual(refused[0]["path"], "/v1/policies/python")
        unauthorized = [r for r in records(self.log) if r["event"] == "refused" and r["status"] == 401]
        self.assertTrue(unauthorized, records(self.log))
        self.assertIsNone(unauthorized[0]["key"])
        self.assertTrue(unauthorized[0]["client"].startswith("127.0.0.1:"))
        listed = audit("refused", "--log", self.log)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("401 unauthorized", listed.stdout)
        self.assertIn("403 policy_forbidden  key=test", listed.stdout)

    def test_a_reload_records_old_and_new_hashes(self):
        before = self.server.json("GET", "/v1/policies/default", key=ADMIN_KEY)["hash"]
        path = os.path.join(self.policy_dir, "default.yaml")
        with open(path) as f:
            text = f.read()
        self.assertIn("  wall_time: 10s\n", text)
        with open(path, "w") as f:
            f.write(text.replace("  wall_time: 10s\n", "  wall_time: 7s\n", 1))
        try:
            self.server.terminate(signal.SIGHUP)
            reloads = wait_for_record(self.log, lambda r: r["event"] == "policy_reload")
            self.assertEqual(len(reloads), 1, records(self.log))
            self.assertEqual(reloads[0]["policy"], "default")
            self.assertEqual(reloads[0]["old_hash"], before)
            after = self.server.json("GET", "/v1/policies/default", key=ADMIN_KEY)["hash"]
            self.assertEqual(reloads[0]["new_hash"], after)
            self.assertNotEqual(before, after)
            summary = wait_for_record(self.log, lambda r: r["event"] == "reload")
            self.assertEqual(summary[0]["changed"], 1)
        finally:
            shutil.copy(os.path.join(SOURCE_DIR, "policies", "default.yaml"), self.policy_dir)


class ForwardedClientTest(unittest.TestCase):
    """Behind the shipped balancer every connection comes from it: with trusted_proxies the
    audit names the client its X-Forwarded-For gives; without, that header is nobody's word."""

    def run_from(self, server, forwarded_for):
        status, _, data = server.request(
            "POST", "/v1/executions", {"language": "sh", "code": "true"},
            headers={"X-Forwarded-For": forwarded_for})
        self.assertEqual(status, 200, data)
        run_id = json.loads(data)["id"]
        log = os.path.join(server.dir.name, "state", "audit.jsonl")
        runs = wait_for_record(log, lambda r: r.get("run_id") == run_id and r["event"] == "run")
        self.assertEqual(len(runs), 1)
        return runs[0]["client"]

    def test_a_trusted_proxy_names_the_client(self):
        server = Server(AIRLOCK, base_config(trusted_proxies=["127.0.0.0/8"]))
        try:
            # A client's own claim, then the proxy's hop: the first untrusted hop from the right.
            client = self.run_from(server, "192.0.2.1, 198.51.100.7, 127.0.0.1")
            self.assertRegex(client, r"^198\.51\.100\.7 \(via 127\.0\.0\.1:\d+\)$")
            # Not an address: the walk stops, and only the trusted hop before it is named.
            client = self.run_from(server, "<script>, 127.0.0.2")
            self.assertRegex(client, r"^127\.0\.0\.2 \(via 127\.0\.0\.1:\d+\)$")
        finally:
            server.close()

    def test_without_trusted_proxies_the_header_is_ignored(self):
        server = Server(AIRLOCK, base_config())
        try:
            self.assertRegex(self.run_from(server, "198.51.100.7"), r"^127\.0\.0\.1:\d+$")
        finally:
            server.close()


class AuditLogSettingsTest(unittest.TestCase):
    def test_off_writes_nothing_and_says_so(self):
        server = Server(AIRLOCK, base_config(audit_log="off"))
        try:
            result = server.json("POST", "/v1/executions", {"language": "python", "code": "print(1)"})
            self.assertEqual(result["status"], "ok")
            self.assertFalse(os.path.exists(os.path.join(server.dir.name, "state", "audit.jsonl")))
            self.assertTrue(any("audit log is off" in r["msg"] for r in server.log_records()))
        finally:
            server.close()

    def test_a_relative_path_is_refused_at_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "serve.yaml")
            with open(config, "w") as f:
                f.write("listen: 127.0.0.1:0\naudit_log: audit.jsonl\n")
            started = subprocess.run([AIRLOCK, "serve", "--config", config], capture_output=True,
                                     text=True, timeout=60)
            self.assertEqual(started.returncode, 1)
            self.assertIn("audit_log: expected an absolute path or off", started.stderr)

    def test_the_audit_command_refuses_bad_input_clearly(self):
        for args, message in [
            ([], "which records?"),
            (["blocked", "--since", "yesterday"], "expected a UTC time"),
            (["blocked", "--frobnicate", "1"], "unknown option '--frobnicate'"),
            (["run"], "run needs exactly one run id"),
            (["run", "x", "--log", "/nonexistent/audit.jsonl"], "no such audit log"),
            (["blocked", "--log", "a", "--config", "b"], "not both"),
        ]:
            with self.subTest(args=args):
                done = audit(*args)
                self.assertEqual(done.returncode, 2)
                self.assertIn(message, done.stderr)
        self.assertEqual(audit("--help").returncode, 0)


if __name__ == "__main__":
    AIRLOCK = os.path.abspath(sys.argv.pop(1))
    unittest.main()
