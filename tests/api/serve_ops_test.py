"""Integration tests of how `airlock serve` behaves as a service: connection limits and timeouts,
the queue, cancellation when a waiting client goes away, SIGHUP reload and SIGTERM shutdown.
Usage: serve_ops_test.py AIRLOCK_BINARY [unittest args]."""

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

from serve_support import ADMIN_KEY, Server, TEST_KEY, base_config, wait_for_status, wait_until

AIRLOCK = None
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# Prints, then sleeps far beyond any test: a run that lasts until it is cancelled.
PRINT_THEN_BLOCK = "import time\nprint('go', flush=True)\ntime.sleep(3600)\n"


def python(code, **extra):
    return {"language": "python", "code": code, **extra}


class DisconnectTest(unittest.TestCase):
    def test_a_client_waiting_for_a_plain_result_cancels_by_going_away(self):
        server = Server(AIRLOCK, base_config())
        try:
            body = json.dumps(python(PRINT_THEN_BLOCK)).encode()
            request = (
                b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TEST_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(request)
            deadline = time.monotonic() + 60
            started = []
            while not started:
                self.assertLess(time.monotonic(), deadline, "the execution never started")
                started = [r for r in server.log_records() if r["msg"] == "execution started"]
                time.sleep(0.05)
            sock.close()
            result = wait_for_status(server, started[0]["execution_id"], {"cancelled", "ok", "timeout"})
            self.assertEqual(result["status"], "cancelled")
        finally:
            server.close()


class ConnectionLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config(header_timeout="300ms", idle_timeout="600ms"))

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def answer_before_close(self, first_bytes):
        """What the server sends before it closes the connection."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
            if first_bytes:
                sock.sendall(first_bytes)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return answer

    def test_a_header_that_never_ends_is_cut_off_with_408(self):
        answer = self.answer_before_close(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 408"), answer)
        self.assertIn(b"within header_timeout (300 ms)", answer)

    def test_an_idle_connection_is_closed(self):
        self.assertEqual(self.answer_before_close(b""), b"")


class ReloadTest(unittest.TestCase):
    def setUp(self):
        # A policy dir of the shipped default alone, for a server of the test's own.
        with open(os.path.join(SOURCE_DIR, "policies", "default.yaml")) as f:
            default_yaml = f.read()
        self.policy_dir = tempfile.mkdtemp(prefix="airlock-reload-test-")
        self.addCleanup(shutil.rmtree, self.policy_dir)
        self.write("default.yaml", default_yaml)

    def write(self, name, text):
        with open(os.path.join(self.policy_dir, name), "w") as f:
            f.write(text)

    def start_server(self):
        server = Server(AIRLOCK, base_config(policy_dirs=[self.policy_dir]))
        self.addCleanup(server.close)
        return server

    def reload(self, server):
        """SIGHUP, then wait until the reload is logged."""
        count = lambda: len([r for r in server.log_records() if r["msg"] == "policies reloaded"])
        before = count()
        server.terminate(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while count() == before:
            self.assertLess(time.monotonic(), deadline, "no reload was logged")
            time.sleep(0.05)

    @staticmethod
    def reload_errors(server):
        return [r["error"] for r in server.log_records() if r["msg"].startswith("policy reload error")]

    def test_sighup_reloads_policies_and_reports_broken_ones(self):
        server = self.start_server()
        names = lambda: [p["name"] for p in server.json("GET", "/v1/policies", key=ADMIN_KEY)["policies"]]
        self.assertEqual(names(), ["default"])
        self.write("tight.yaml", "description: tighter\nextends: default\nlimits:\n  wall_time: 2s\n")
        self.write("broken.yaml", "extends: default\nlimits:\n  wall_time: soon\n")
        self.reload(server)
        self.assertEqual(names(), ["default", "tight"])
        errors = self.reload_errors(server)
        self.assertTrue(any("broken.yaml" in e for e in errors), errors)
        result = server.json("POST", "/v1/executions", python("print(1)", policy="tight"), key=ADMIN_KEY)
        self.assertEqual(result["status"], "ok")

    def test_a_policy_that_aliases_itself_into_megabytes_keeps_its_old_version(self):
        self.write("tight.yaml", "extends: default\nlimits:\n  wall_time: 2s\n")
        server = self.start_server()
        policies = lambda: {p["name"]: p["hash"] for p in
                            server.json("GET", "/v1/policies", key=ADMIN_KEY)["policies"]}
        before = policies()
        # 100 KiB written once and used 40 times: 4 MB of environment from a 100 KiB file.
        text = "extends: default\nenvironment:\n  A0: &big " + "x" * 100 * 1024 + "\n"
        text += "".join(f"  A{i}: *big\n" for i in range(1, 40))
        self.write("tight.yaml", text)
        self.reload(server)
        self.assertEqual(policies(), before)
        errors = self.reload_errors(server)
        self.assertTrue(any("tight.yaml" in e and "more than 1048576 bytes in all" in e for e in errors),
                        errors)


class QueueTest(unittest.TestCase):
    def test_beyond_slots_and_queue_is_429_with_retry_after(self):
        server = Server(AIRLOCK, base_config(max_concurrent=1, max_queued=1))
        try:
            running = server.stream(python(PRINT_THEN_BLOCK))
            self.assertEqual(running.next_event()[0], "started")
            queued = server.stream(python(PRINT_THEN_BLOCK))
            self.assertEqual(queued.status, 200)
            self.assertEqual(server.json("GET", f"/v1/executions/{queued.execution_id}")["status"], "queued")
            status, headers, data = server.request("POST", "/v1/executions", python("print(1)"))
            self.assertEqual(status, 429)
            self.assertEqual(headers["retry-after"], "1")
            self.assertEqual(json.loads(data)["error"]["code"], "queue_full")
            for stream in (queued, running):
                self.assertEqual(server.request("DELETE", f"/v1/executions/{stream.execution_id}")[0], 202)
                self.assertEqual(stream.all_events()[-1][2]["exit"]["result"]["status"], "cancelled")
                stream.close()
            _, _, metrics = server.request("GET", "/metrics", key=None)
            self.assertIn(b'airlock_executions_rejected_total{reason="queue_full"} 1', metrics)
        finally:
            server.close()


class ShutdownTest(unittest.TestCase):
    @staticmethod
    def logged(server, prefix):
        return any(r.get("msg", "").startswith(prefix) for r in server.log_records())

    def test_sigterm_lets_a_running_execution_finish(self):
        server = Server(AIRLOCK, base_config(shutdown_grace="30s"))
        try:
            code = "import time\nprint('working', flush=True)\ntime.sleep(2)\nprint('done')\n"
            stream = server.stream(python(code))
            self.assertEqual(stream.next_event()[0], "started")
            self.assertEqual(stream.next_event()[0], "stdout")
            server.terminate(signal.SIGTERM)
            events = stream.all_events()
            stream.close()
            self.assertEqual(events[-1][2]["exit"]["result"]["status"], "ok")
            self.assertEqual(events[-1][2]["exit"]["result"]["stdout"], "working\ndone\n")
            self.assertEqual(server.wait(), 0)
            # The run was still going when the signal came: the service counted it.
            shutdown = [r for r in server.log_records() if r["msg"].startswith("shutting down")]
            self.assertEqual(shutdown[0]["running"], 1)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        finally:
            server.close()

    def test_sigterm_cancels_what_outlives_the_grace_period(self):
        server = Server(AIRLOCK, base_config(shutdown_grace="200ms"))
        try:
            stream = server.stream(python(PRINT_THEN_BLOCK))
            self.assertEqual(stream.next_event()[0], "started")
            server.terminate(signal.SIGTERM)
            events = stream.all_events()
            stream.close()
            self.assertEqual(events[-1][2]["exit"]["result"]["status"], "cancelled")
            self.assertEqual(server.wait(), 0)
        finally:
            server.close()

    def test_a_second_stop_signal_cancels_at_once(self):
        # A grace period far longer than the test may take: only the second signal ends it.
        server = Server(AIRLOCK, base_config(shutdown_grace="1h"))
        try:
            stream = server.stream(python(PRINT_THEN_BLOCK))
            self.assertEqual(stream.next_event()[0], "started")
            server.terminate(signal.SIGTERM)
            self.assertTrue(wait_until(lambda: self.logged(server, "shutting down")))
            # Within a second it is the same request twice (^C under sudo): the drain goes on.
            server.terminate(signal.SIGINT)
            self.assertTrue(wait_until(lambda: self.logged(server, "stop signal repeated")))
            time.sleep(1.1)  # past the window that merges signals; not what is asserted
            server.terminate(signal.SIGINT)
            # Bounded here, so that without the second signal's effect this fails, not hangs.
            self.assertTrue(wait_until(lambda: self.logged(server, "grace period ended early")))
            events = stream.all_events()
            stream.close()
            self.assertEqual(events[-1][2]["exit"]["result"]["status"], "cancelled")
            self.assertEqual(server.wait(), 0)
            self.assertTrue(wait_until(lambda: self.logged(server, "second stop signal")))
        finally:
            server.close()


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    unittest.main(verbosity=2)
