"""Adversarial integration tests of `airlock serve` (the hardening issue): requests that used to
stall the service, make it hold memory, or reach it from a web page. Each test failed before its
fix. Usage: serve_hardening_test.py AIRLOCK_BINARY [unittest args]."""

import json
import socket
import sys
import threading
import time
import unittest

from serve_support import REQUEST_LIMIT_S, Server, TEST_KEY, base_config

AIRLOCK = None


def raw_exchange(port, head, timeout=REQUEST_LIMIT_S):
    """Sends `head` (bytes) and returns the first response's status line and the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(), data


def close_wait_count(port):
    """Connections of the service on `port` that the client closed and the service did not."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "08":  # 08: CLOSE_WAIT
                    count += 1
    return count


class HardeningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config(max_body_size="16MiB", max_concurrent=2,
                                                 max_queued=8))

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def healthy(self):
        status, _, _ = self.server.request("GET", "/healthz", key=None)
        return status == 200

    def session(self):
        status, _, body = self.server.request("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual(status, 201, body)
        session_id = json.loads(body)["id"]
        self.addCleanup(self.server.request, "DELETE", "/v1/sessions/" + session_id)
        return session_id

    def test_a_fifo_in_a_session_neither_blocks_a_write_nor_a_read(self):
        session_id = self.session()
        status, _, body = self.server.request(
            "POST", f"/v1/sessions/{session_id}/executions",
            {"code": "import os\nos.mkfifo('f')\nos.mkfifo('g')"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["status"], "ok", body)
        # Before the fix each of these waited in open(2) on an I/O thread, forever.
        status, _, body = self.server.request(
            "PUT", f"/v1/sessions/{session_id}/files/f", b"data", headers={"Content-Type":
                                                                          "text/plain"})
        self.assertEqual(status, 400, body)
        self.assertIn(b"not a regular file", body)
        status, _, body = self.server.request("GET", f"/v1/sessions/{session_id}/files/g")
        self.assertEqual(status, 404, body)
        status, _, body = self.server.request(
            "POST", f"/v1/sessions/{session_id}/executions",
            {"code": "print(1)", "files": [{"path": "f", "content": "x"}]})
        self.assertIn(status, (200, 400), body)
        self.assertIn(b"not a regular file", body)
        self.assertTrue(self.healthy())

    def test_a_missing_file_is_found_missing_by_its_path(self):
        session_id = self.session()
        status, _, body = self.server.request("GET", f"/v1/sessions/{session_id}/files/nope.txt")
        self.assertEqual(status, 404, body)

    def test_mcp_params_nested_100000_deep_are_refused_at_once(self):
        deep = "[" * 100000 + "]" * 100000
        body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_code",'
                '"arguments":{"code":' + deep + '}}}').encode()
        status, _, answer = self.server.request(
            "POST", "/mcp", body, headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400, answer[:200])
        self.assertIn(b"nest deeper", answer)
        self.assertTrue(self.healthy())

    def test_an_unauthenticated_body_is_refused_before_it_is_sent(self):
        # The header announces 16 MB and no body follows: the answer must not wait for it.
        for key_header in (b"", b"Authorization: Bearer wrong-key\r\n"):
            status_line, _ = raw_exchange(
                self.server.port,
                b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + key_header +
                b"Content-Type: application/json\r\nContent-Length: 16000000\r\n\r\n")
            self.assertIn(" 401 ", status_line)

    def test_forty_unauthenticated_uploads_hold_no_bodies(self):
        socks = []
        try:
            for _ in range(40):
                sock = socket.create_connection(("127.0.0.1", self.server.port),
                                                timeout=REQUEST_LIMIT_S)
                socks.append(sock)
                sock.sendall(b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 16000000\r\n\r\n")
            for sock in socks:
                self.assertIn(b" 401 ", sock.recv(4096).split(b"\r\n", 1)[0])
        finally:
            for sock in socks:
                sock.close()
        self.assertTrue(self.healthy())

    def test_idle_connections_at_the_limit_make_room_for_a_real_client(self):
        # 1024 is the service's connection limit (api/transport/server.h kMaxConnections). Before the fix
        # every further connection was closed at once until the idle ones timed out.
        socks = []
        try:
            for _ in range(1030):
                socks.append(socket.create_connection(("127.0.0.1", self.server.port),
                                                      timeout=REQUEST_LIMIT_S))
            status, _, body = self.server.request("GET", "/v1/runtimes")
            self.assertEqual(status, 200, body)
            self.assertTrue(self.healthy())
        finally:
            for sock in socks:
                sock.close()

    def test_pipelined_requests_apply_back_pressure_instead_of_cancelling(self):
        body = json.dumps({"language": "python",
                           "code": "import time\ntime.sleep(1)\nprint('done')"}).encode()
        head = (b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n" +
                f"Authorization: Bearer {TEST_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        pipelined = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3000  # ~130 KB
        with socket.create_connection(("127.0.0.1", self.server.port),
                                      timeout=REQUEST_LIMIT_S) as sock:
            sock.sendall(head + body)
            # Past 64 KiB the service stops reading; before the fix it then dropped the
            # connection and cancelled the execution.
            sender = threading.Thread(target=lambda: sock.sendall(pipelined), daemon=True)
            sender.start()
            data = b""
            while b"}" not in data.split(b"\r\n\r\n", 1)[-1]:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "the connection was closed before the result came")
                data += chunk
            self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0])
            self.assertIn(b'"status":"ok"', data)
            self.assertIn(b"done", data)

    def test_a_cross_site_form_post_is_never_read(self):
        for content_type in ("application/x-www-form-urlencoded", "text/plain",
                             "multipart/form-data; boundary=x"):
            status, _, body = self.server.request(
                "POST", "/v1/executions", b'{"language":"python","code":"print(1)"}',
                headers={"Content-Type": content_type})
            self.assertEqual(status, 415, body)

    def test_dns_rebinding_and_foreign_origins_are_refused(self):
        session_id = self.session()
        status, _, body = self.server.request(
            "GET", f"/v1/sessions/{session_id}/files", headers={"Host": "rebound.example:80"})
        self.assertEqual(status, 421, body)
        for path in ("/v1/runtimes", f"/v1/sessions/{session_id}/files", "/mcp"):
            status, _, body = self.server.request(
                "GET", path, headers={"Origin": "https://evil.example"})
            self.assertEqual(status, 403, body)
        status, _, _ = self.server.request("GET", "/v1/runtimes",
                                           headers={"Origin": "http://localhost:3000"})
        self.assertEqual(status, 200)

    def test_sparse_files_do_not_multiply_the_response(self):
        # 100 sparse 1 MiB files: a few KB on the tmpfs; before the fix a 629 MB response.
        code = ("for i in range(100):\n"
                "    with open(f's{i:03}.bin', 'wb') as f: f.truncate(1 << 20)\n")
        status, _, body = self.server.request(
            "POST", "/v1/executions",
            {"language": "python", "code": code, "output": {"files": ["*.bin"]}})
        self.assertEqual(status, 200, body[:300])
        result = json.loads(body)
        self.assertEqual(len(result["files"]), 100)
        # 8 MiB of content in all, base64: about 11 MB, against 629 MB before.
        self.assertLess(len(body), 12 * 1024 * 1024)
        self.assertEqual(result["files"][0]["encoding"], "base64")
        self.assertTrue(result["files"][-1]["truncated"])

    def test_a_client_that_closes_after_its_answer_leaves_no_connection_behind(self):
        # The client closes as its answer arrives, while the service's disconnect watch is
        # still reading. Before the fix that read's end of stream was dropped and the
        # connection sat in CLOSE_WAIT until the idle timeout (60 s), holding a slot.
        for index in range(40):
            accept = b"Accept: text/event-stream\r\n" if index % 2 else b""
            body = json.dumps({"language": "bash", "code": f"echo {index}"}).encode()
            head = (b"POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + accept +
                    b"Content-Type: application/json\r\n" +
                    f"Authorization: Bearer {TEST_KEY}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode())
            with socket.create_connection(("127.0.0.1", self.server.port),
                                          timeout=REQUEST_LIMIT_S) as sock:
                sock.sendall(head + body)
                data = b""
                # The end of a JSON answer or of the event stream's last chunk.
                while not (data.endswith(b"}") or data.endswith(b"0\r\n\r\n")):
                    chunk = sock.recv(65536)
                    self.assertTrue(chunk, data)
                    data += chunk
                self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0])
        # The service closes its side as soon as it reads the end; give it a moment, far less
        # than the idle timeout, before counting what is left.
        deadline = time.monotonic() + 10
        while close_wait_count(self.server.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(close_wait_count(self.server.port), 0)

    def test_healthz_answers_while_slow_requests_are_in_flight(self):
        failures = []

        def create_and_close():
            for _ in range(3):
                status, _, body = self.server.request("POST", "/v1/sessions",
                                                      {"runtime": "python"})
                if status == 201:
                    self.server.request("DELETE", "/v1/sessions/" + json.loads(body)["id"])
                elif status != 429:
                    failures.append((status, body))

        workers = [threading.Thread(target=create_and_close) for _ in range(4)]
        for worker in workers:
            worker.start()
        answered = 0
        while any(worker.is_alive() for worker in workers):
            self.assertTrue(self.healthy())
            answered += 1
        for worker in workers:
            worker.join()
        self.assertEqual(failures, [])
        self.assertGreater(answered, 0)


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    unittest.main(verbosity=2)
