"""Integration tests of what an operator relies on: GET /version, the metrics (build info,
latency by runtime, violations and blocked calls, reloads, sessions), `serve --check-config`,
and SIGHUP reloading API keys as well as policies.
Usage: serve_operator_test.py AIRLOCK_BINARY [unittest args]."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from serve_support import ADMIN_KEY, Server, TEST_KEY, TEST_KEY_SHA256, base_config

AIRLOCK = None
WAIT_LIMIT_S = 60  # how long to wait for a reload to be logged; never asserted on

# A third key, sha256("rotated-key"), given in a reloaded config.
ROTATED_KEY = "rotated-key"
ROTATED_KEY_SHA256 = "5be3b05a2339aecdb0c543afefc6a563085f5861e6c109dce236363b3319566e"


def wait_for_log(server, message, count):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while len([r for r in server.log_records() if r["msg"] == message]) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class VersionAndMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config())

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_version_needs_no_key_and_matches_the_binary(self):
        status, headers, body = self.server.request("GET", "/version", key=None)
        self.assertEqual(status, 200)
        info = json.loads(body)
        binary = subprocess.run([AIRLOCK, "version"], capture_output=True, text=True).stdout
        self.assertEqual(binary.strip(), "airlock " + info["version"])
        self.assertEqual(info["api"], "v1")
        self.assertIn("2025-06-18", info["mcp_protocol_versions"])
        self.assertEqual(self.server.request("POST", "/version", key=None)[0], 405)
        metrics = self.server.metrics()
        self.assertEqual(metrics.get(f'airlock_build_info{{version="{info["version"]}"}}'), 1)

    def test_blocked_calls_violations_latency_and_sessions_are_counted(self):
        blocked = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                   "libc.syscall(272, 0x10000000)\n")
        result = self.server.json("POST", "/v1/executions", {"language": "python", "code": blocked})
        self.assertEqual(result["status"], "ok", result["summary"])
        killed = "import ctypes\nctypes.CDLL(None).syscall(101, 0, 0, 0, 0)\n"  # ptrace
        result = self.server.json("POST", "/v1/executions", {"language": "python", "code": killed})
        self.assertEqual(result["status"], "violation", result["summary"])
        session = self.server.json("POST", "/v1/sessions", {"runtime": "python"}, expect=201)
        try:
            metrics = self.server.metrics()
            self.assertEqual(
                metrics.get('airlock_blocked_calls_total{policy="default",syscall="unshare"}'), 1)
            self.assertEqual(
                metrics.get('airlock_violations_total{policy="default",syscall="ptrace"}'), 1)
            self.assertGreaterEqual(
                metrics.get('airlock_execution_duration_seconds_count{runtime="python"}'), 2)
            self.assertEqual(metrics.get("airlock_sessions_active"), 1)
            self.assertEqual(metrics.get('airlock_policy_reloads_total{result="ok"}'), 0)
        finally:
            self.server.request("DELETE", f"/v1/sessions/{session['id']}")


class ReloadKeysTest(unittest.TestCase):
    def test_sighup_puts_the_configs_new_keys_in_force(self):
        server = Server(AIRLOCK, base_config())
        try:
            self.assertEqual(server.request("GET", "/v1/runtimes", key=ROTATED_KEY)[0], 401)
            with open(server.config_path) as f:
                config = f.read()
            # The test key is revoked, a rotated one added.
            config = config.replace(f"    sha256: {TEST_KEY_SHA256}", f"    sha256: {ROTATED_KEY_SHA256}")
            with open(server.config_path, "w") as f:
                f.write(config)
            server.terminate(signal.SIGHUP)
            self.assertTrue(wait_for_log(server, "api keys reloaded", 1), server.logs)
            self.assertEqual(server.request("GET", "/v1/runtimes", key=TEST_KEY)[0], 401)
            self.assertEqual(server.request("GET", "/v1/runtimes", key=ROTATED_KEY)[0], 200)
            self.assertEqual(server.request("GET", "/v1/runtimes", key=ADMIN_KEY)[0], 200)
            self.assertEqual(server.metrics().get('airlock_policy_reloads_total{result="ok"}'), 1)
            log = os.path.join(server.dir.name, "state", "audit.jsonl")
            deadline = time.monotonic() + WAIT_LIMIT_S
            records = []
            while not records and time.monotonic() < deadline:
                with open(log) as f:
                    records = [json.loads(line) for line in f if '"api_keys_reload"' in line]
                time.sleep(0.05)
            self.assertEqual(records[0]["before"], ["test", "admin"])
            self.assertEqual(records[0]["after"], ["test", "admin"])  # names kept, digest rotated
            self.assertIsNone(records[0]["error"])
        finally:
            server.close()

    def test_a_broken_or_keyless_config_keeps_the_keys_in_force(self):
        server = Server(AIRLOCK, base_config())
        try:
            with open(server.config_path) as f:
                original = f.read()
            for broken, why in [("max_concurent: 2\n", "did you mean 'max_concurrent'"),
                                (None, "would let every client in")]:
                with self.subTest(why=why):
                    with open(server.config_path, "w") as f:
                        if broken:
                            f.write(original + broken)
                        else:
                            f.write("listen: 127.0.0.1:0\n")
                    before = len([r for r in server.log_records()
                                  if r["msg"].startswith("api keys not reloaded")])
                    server.terminate(signal.SIGHUP)
                    self.assertTrue(wait_for_log(server, "api keys not reloaded; the keys in force stay",
                                                 before + 1))
                    errors = [r for r in server.log_records()
                              if r["msg"].startswith("api keys not reloaded")]
                    self.assertIn(why, errors[-1]["error"])
                    self.assertEqual(server.request("GET", "/v1/runtimes", key=TEST_KEY)[0], 200)
                    self.assertEqual(server.request("GET", "/v1/runtimes", key=None)[0], 401)
        finally:
            server.close()


class CheckConfigTest(unittest.TestCase):
    def check(self, text):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "serve.yaml")
            with open(path, "w") as f:
                f.write(text)
            done = subprocess.run([AIRLOCK, "serve", "--config", path, "--check-config"],
                                  capture_output=True, text=True, timeout=120)
            return done, path

    def test_a_good_config_is_ok_and_starts_nothing(self):
        done, path = self.check(base_config() + "state_dir: /nonexistent/airlock-check\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, f"OK {path}\n")

    def test_the_built_in_warm_pool_checks_out(self):
        # No warm_pool setting: the default pool runs under default_policy. Before the fix the
        # check read its policy as "" and called the shipped config INVALID, which made the
        # packaged unit's reload (it runs --check-config first) fail.
        config = base_config().replace("warm_pool: []\n", "")
        self.assertNotIn("warm_pool", config)
        done, path = self.check(config + "state_dir: /nonexistent/airlock-check\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, f"OK {path}\n")
        self.assertFalse(os.path.exists("/nonexistent/airlock-check"))

    def test_a_typo_is_named_with_a_suggestion(self):
        done, _ = self.check("max_concurent: 2\n")
        self.assertEqual(done.returncode, 1)
        self.assertIn("unknown setting \"max_concurent\" — did you mean 'max_concurrent'?", done.stderr)

    def test_an_audit_log_that_is_a_directory_or_a_fifo_is_reported(self):
        with tempfile.TemporaryDirectory() as tmp:
            fifo = os.path.join(tmp, "audit.fifo")
            os.mkfifo(fifo)
            for path in (tmp, fifo):
                done, _ = self.check(base_config() + "state_dir: /nonexistent/airlock-check\n"
                                     f"audit_log: {path}\n")
                self.assertEqual(done.returncode, 1, path)
                self.assertIn(f"audit_log: {path} is not a regular file", done.stderr)

    def test_missing_policies_and_bad_addresses_are_each_reported(self):
        done, path = self.check("listen: localhost:8080\ndefault_policy: defualt\n"
                                "warm_pool:\n  - {runtime: cobol, policy: default, size: 1}\n"
                                "audit_log: /nonexistent/dir/audit.jsonl\n")
        self.assertEqual(done.returncode, 1)
        self.assertIn('listen: "localhost" is not an IP address', done.stderr)
        self.assertIn("default_policy: \"defualt\" is not among the policies loaded — did you mean 'default'?",
                      done.stderr)
        self.assertIn('warm_pool: no runtime "cobol"', done.stderr)
        self.assertIn("audit_log: the directory /nonexistent/dir does not exist", done.stderr)
        self.assertEqual(done.stdout, f"INVALID {path} (4 problems)\n")


if __name__ == "__main__":
    AIRLOCK = os.path.abspath(sys.argv.pop(1))
    unittest.main()
