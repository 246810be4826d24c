"""The examples an agent developer starts from, against a real service: the Python client behind
a path prefix (sessions, files, /version), the OpenAI and Anthropic tool formats built from
/v1/runtimes with results mapped back, and the stdio bridge for MCP hosts without URL support.
Usage: examples_test.py AIRLOCK_BINARY [unittest args]."""

import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

from serve_support import Server, TEST_KEY, base_config

AIRLOCK = None
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
sys.path.insert(0, EXAMPLES)
import airlock_client  # noqa: E402
import tool_formats  # noqa: E402

# A 1x1 PNG, written by the sandboxed program as a chart would be.
WRITE_PNG = (
    "import base64\nopen('chart.png', 'wb').write(base64.b64decode("
    "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='))\n"
    "print('drawn')\n"
)


class PrefixProxy:
    """A reverse proxy that serves the service under /airlock, as a gateway would."""

    def __init__(self, port):
        target = port

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                if not self.path.startswith("/airlock/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", target, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path[len("/airlock"):], body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config())
        cls.url = f"http://127.0.0.1:{cls.server.port}"
        cls.client = airlock_client.AirlockClient(cls.url, TEST_KEY)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_urls_with_https_and_path_prefixes(self):
        secure = airlock_client.AirlockClient("https://gateway.example.com/airlock/")
        self.assertEqual((secure.https, secure.host, secure.port, secure.prefix),
                         (True, "gateway.example.com", 443, "/airlock"))
        self.assertIsInstance(secure._connect(), http.client.HTTPSConnection)
        plain = airlock_client.AirlockClient("http://[::1]:9000")
        self.assertEqual((plain.https, plain.host, plain.port, plain.prefix), (False, "::1", 9000, ""))
        for bad in ("ftp://x/", "127.0.0.1:8080", "http://x/?a=1"):
            with self.subTest(url=bad):
                with self.assertRaises(ValueError):
                    airlock_client.AirlockClient(bad)

    def test_the_client_works_behind_a_path_prefix_with_sessions_and_files(self):
        proxy = PrefixProxy(self.server.port)
        try:
            client = airlock_client.AirlockClient(f"http://127.0.0.1:{proxy.port}/airlock", TEST_KEY)
            self.assertEqual(client.version()["api"], "v1")
            result = client.run("python", WRITE_PNG, output={"files": ["*.png"]})
            self.assertEqual(result["status"], "ok", result["summary"])
            with tempfile.TemporaryDirectory() as out:
                saved = airlock_client.save_files(result, out)
                self.assertEqual([os.path.basename(p) for p in saved], ["chart.png"])
                with open(saved[0], "rb") as f:
                    self.assertTrue(f.read().startswith(b"\x89PNG"))
                # A hostile path in a result never leaves the directory.
                escaped = airlock_client.save_files({"files": [{"path": "../x", "content": "no"}]}, out)
                self.assertEqual(escaped, [])
            session = client.create_session("python")
            try:
                client.upload(session["id"], "data.csv", b"city,temp\nOslo,4\nLima,19\n")
                client.run_in(session["id"], "import csv\nrows = list(csv.DictReader(open('data.csv')))")
                shown = client.run_in(session["id"], "print(len(rows))\n_ = open('n.txt', 'w').write(str(len(rows)))")
                self.assertEqual(shown["stdout"], "2\n")
                self.assertEqual(client.download(session["id"], "n.txt"), b"2")
                names = [f["path"] for f in client.session_files(session["id"])["files"]]
                self.assertIn("data.csv", names)
            finally:
                client.close_session(session["id"])
            with self.assertRaises(airlock_client.AirlockError) as raised:
                client.session(session["id"])
            self.assertEqual(raised.exception.status, 404)
        finally:
            proxy.close()

    def test_tool_definitions_come_from_the_services_runtimes(self):
        runtimes = self.client.runtimes()
        names = sorted(r["name"] for r in runtimes)
        openai = tool_formats.openai_tool(runtimes)
        anthropic = tool_formats.anthropic_tool(runtimes)
        self.assertEqual(openai["function"]["parameters"]["properties"]["runtime"]["enum"], names)
        self.assertEqual(anthropic["input_schema"], openai["function"]["parameters"])
        self.assertEqual(anthropic["name"], "run_code")
        # Arguments as each API sends them: a JSON string (OpenAI), an object (Anthropic).
        self.assertEqual(tool_formats.run_arguments('{"runtime":"python","code":"1"}', runtimes)["code"], "1")
        self.assertEqual(tool_formats.run_arguments({"runtime": "python", "code": "1"}, runtimes)["runtime"],
                         "python")
        for bad, why in [({"runtime": "cobol", "code": "1"}, "runtime must be one of"),
                         ({"runtime": "python"}, "code must be a string"),
                         ({"runtime": "python", "code": "1", "shell": True}, "unknown arguments: shell"),
                         ("[1]", "must be an object")]:
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, why):
                    tool_formats.run_arguments(bad, runtimes)

    def test_results_map_into_both_formats_with_images(self):
        runtimes = self.client.runtimes()
        arguments = tool_formats.run_arguments({"runtime": "python", "code": WRITE_PNG}, runtimes)
        result = self.client.run(**arguments)
        self.assertEqual(result["status"], "ok", result["summary"])
        message = tool_formats.openai_tool_message("call_1", result)
        self.assertEqual((message["role"], message["tool_call_id"]), ("tool", "call_1"))
        self.assertIn("stdout:\ndrawn", message["content"])
        self.assertIn("file chart.png", message["content"])
        shown = tool_formats.openai_image_message(result)
        self.assertTrue(shown["content"][1]["image_url"]["url"].startswith("data:image/png;base64,"))
        block = tool_formats.anthropic_tool_result("toolu_1", result)
        self.assertEqual((block["type"], block["tool_use_id"], block["is_error"]), ("tool_result", "toolu_1", False))
        self.assertEqual(block["content"][1]["type"], "image")
        self.assertEqual(block["content"][1]["source"]["media_type"], "image/png")
        failed = self.client.run("python", "raise SystemExit(3)")
        self.assertTrue(tool_formats.anthropic_tool_result("toolu_2", failed)["is_error"])
        noisy = tool_formats.result_text({"summary": "ok", "stdout": "x" * 100000})
        self.assertLess(len(noisy), 5000)
        self.assertIn("characters cut", noisy)


class StdioBridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config())

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def bridge(self, lines, key=TEST_KEY):
        env = dict(os.environ, AIRLOCK_URL=f"http://127.0.0.1:{self.server.port}", AIRLOCK_KEY=key)
        done = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mcp_stdio_bridge.py")],
                              input="".join(json.dumps(line) + "\n" for line in lines),
                              capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        return [json.loads(line) for line in done.stdout.splitlines()]

    def test_a_stdio_host_initializes_lists_tools_and_runs_code(self):
        answers = self.bridge([
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "test", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
             "params": {"name": "run_code", "arguments": {"runtime": "python", "code": "print(6*7)"}}},
        ])
        self.assertEqual([a["id"] for a in answers], [1, 2, 3])  # the notification has no answer
        self.assertEqual(answers[0]["result"]["serverInfo"]["name"], "airlock")
        self.assertIn("run_code", [t["name"] for t in answers[1]["result"]["tools"]])
        self.assertIn("42", json.dumps(answers[2]["result"]))

    def test_a_refused_key_reaches_the_host_as_an_error(self):
        answers = self.bridge([{"jsonrpc": "2.0", "id": 7, "method": "tools/list"}], key="wrong")
        self.assertEqual(len(answers), 1)
        self.assertIn("error", answers[0])


if __name__ == "__main__":
    AIRLOCK = os.path.abspath(sys.argv.pop(1))
    unittest.main()
