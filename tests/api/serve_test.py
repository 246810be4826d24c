"""Integration tests of the execution API of `airlock serve`: the real binary, the real sandbox,
HTTP from Python's standard library. Usage: serve_test.py AIRLOCK_BINARY [unittest args]."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import unittest

from serve_support import (
    ADMIN_KEY,
    Server,
    TEST_KEY,
    base_config,
    decode_fields,
    encode_string_fields,
    wait_for_status,
)

AIRLOCK = None
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXAMPLES = os.path.join(SOURCE_DIR, "examples")

# Prints, then sleeps far beyond any test: a run that lasts until it is cancelled.
PRINT_THEN_BLOCK = "import time\nprint('go', flush=True)\ntime.sleep(3600)\n"


def python(code, **extra):
    return {"language": "python", "code": code, **extra}


class ExecutionApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config())

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_json_execution_returns_the_result(self):
        result = self.server.json("POST", "/v1/executions", python("print(6 * 7)"))
        self.assertEqual(result["status"], "ok", result)
        self.assertEqual(result["exit_code"], 0)
        self.assertEqual(result["stdout"], "42\n")
        self.assertEqual(result["policy"]["name"], "default")
        self.assertTrue(result["policy"]["hash"].startswith("sha256:"))
        self.assertTrue(result["summary"])
        again = self.server.json("GET", f"/v1/executions/{result['id']}")
        self.assertEqual(again["stdout"], "42\n")

    def test_the_contract_clients_code_against(self):
        # What many clients send gets JSON, not an event stream.
        status, headers, data = self.server.request(
            "POST", "/v1/executions", {"runtime": "python", "code": "print(1)"},
            headers={"Accept": "application/json, text/event-stream"})
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        result = json.loads(data)
        self.assertEqual(result["runtime"], "python")
        # Counters and times are numbers, like exit_code.
        for value in (result["stdout_bytes"], result["usage"]["wall_time_ms"],
                      result["usage"]["peak_memory_bytes"], result["exit_code"]):
            self.assertIsInstance(value, int)
        # A limit as airlock prints it is accepted back; one over the policy names the field
        # and suggests what would be valid, which is accepted too.
        status, _, data = self.server.request(
            "POST", "/v1/executions", python("print(1)", limits={"wall_time": "2 min"}))
        self.assertEqual(status, 400, data)
        error = json.loads(data)["error"]
        self.assertEqual(error["field"], "limits.wall_time")
        self.assertIn("2 min is above the limit of policy \"default\" (10 s)", error["message"])
        self.assertIn("ask for at most 10 s", error["message"])
        result = self.server.json("POST", "/v1/executions",
                                  python("print(1)", limits={"wall_time": "10 s", "memory": "64 MiB"}))
        self.assertEqual(result["status"], "ok", result)
        # A failed run's summary quotes the error line.
        result = self.server.json("POST", "/v1/executions", python("import json\njson.loads('{')"))
        self.assertEqual(result["status"], "nonzero_exit")
        self.assertTrue(result["summary"].startswith("status: nonzero_exit — json.decoder."
                                                     "JSONDecodeError: Expecting property name"),
                        result["summary"])

    def test_compiler_errors_stream_as_stderr_events(self):
        stream = self.server.stream({"runtime": "c", "code": "int main(void) { return nope; }"})
        self.assertEqual(stream.status, 200)
        events = []
        while (event := stream.next_event()) is not None:
            events.append(event)
        names = [name for name, _, _ in events]
        self.assertEqual(names[0], "started")
        self.assertEqual(names[-1], "exit")
        self.assertEqual([seq for _, seq, _ in events], list(range(1, len(events) + 1)))
        streamed = "".join(data["stderr"]["data"] for name, _, data in events if name == "stderr")
        self.assertIn(": error: ", streamed)
        result = events[-1][2]["exit"]["result"]
        self.assertEqual(result["status"], "compile_error")
        self.assertIn("nope", result["reason"])
        self.assertIsInstance(events[-1][2]["sequence"], int)

    def test_a_failing_program_is_still_200_with_its_status(self):
        result = self.server.json(
            "POST", "/v1/executions", python("import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)")
        )
        self.assertEqual(result["status"], "nonzero_exit")
        self.assertEqual(result["exit_code"], 3)
        self.assertEqual(result["stderr"], "bad\n")

    def test_stdin_and_args_reach_the_program(self):
        result = self.server.json(
            "POST",
            "/v1/executions",
            python("import sys\nprint(sys.stdin.read().upper(), sys.argv[1:])", stdin="hi", args=["-x"]),
        )
        self.assertEqual(result["stdout"], "HI ['-x']\n", result)

    def test_output_reaches_the_client_while_the_program_runs(self):
        code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second', flush=True)\n"
        stream = self.server.stream(python(code))
        self.assertEqual(stream.status, 200)
        events = []
        seen = ""
        while "first\n" not in seen:  # a line may come in more than one chunk
            event = stream.next_event()
            self.assertIsNotNone(event, "the stream ended without a final event")
            self.assertNotIn(event[0], ("exit", "error"))
            events.append(event)
            if event[0] == "stdout":
                seen += event[2]["stdout"]["data"]
        self.assertEqual(seen, "first\n")
        # The first line arrived while the program still ran: the service says so itself.
        self.assertEqual(
            self.server.json("GET", f"/v1/executions/{stream.execution_id}")["status"], "running"
        )
        events += stream.all_events()
        stream.close()
        names = [name for name, _, _ in events]
        self.assertEqual(names[0], "started")
        self.assertEqual(names[-1], "exit")
        self.assertEqual(names.count("exit") + names.count("error"), 1)
        self.assertEqual([seq for _, seq, _ in events], list(range(1, len(events) + 1)))
        stdout = "".join(data["stdout"]["data"] for name, _, data in events if name == "stdout")
        self.assertEqual(stdout, "first\nsecond\n")
        self.assertEqual(events[-1][2]["exit"]["result"]["status"], "ok")

    def test_heartbeats_keep_a_quiet_stream_alive(self):
        stream = self.server.stream(python("import time\ntime.sleep(1.5)\n"))
        events = stream.all_events()
        stream.close()
        self.assertEqual(events[-1][0], "exit")
        self.assertGreater(stream.heartbeats, 0)

    def test_protobuf_in_and_out(self):
        body = encode_string_fields([(1, "python"), (2, "print('proto')")])
        status, headers, data = self.server.request(
            "POST",
            "/v1/executions",
            body,
            headers={"Content-Type": "application/x-protobuf", "Accept": "application/x-protobuf"},
        )
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-protobuf")
        fields = decode_fields(data)
        self.assertEqual(fields[2], [b"ok"])  # status
        self.assertEqual(fields[5], [b"proto\n"])  # stdout

    def test_cancel_by_delete(self):
        stream = self.server.stream(python(PRINT_THEN_BLOCK))
        name, _, _ = stream.next_event()
        self.assertEqual(name, "started")
        self.assertEqual(stream.next_event()[0], "stdout")
        status, _, _ = self.server.request("DELETE", f"/v1/executions/{stream.execution_id}")
        self.assertEqual(status, 202)
        events = stream.all_events()
        stream.close()
        self.assertEqual(events[-1][0], "exit")
        self.assertEqual(events[-1][2]["exit"]["result"]["status"], "cancelled")
        status, _, _ = self.server.request("DELETE", f"/v1/executions/{stream.execution_id}")
        self.assertEqual(status, 409)

    def test_cancel_by_disconnect(self):
        stream = self.server.stream(python(PRINT_THEN_BLOCK))
        self.assertEqual(stream.next_event()[0], "started")
        self.assertEqual(stream.next_event()[0], "stdout")
        execution_id = stream.execution_id
        stream.disconnect()
        result = wait_for_status(self.server, execution_id, {"cancelled", "ok", "timeout"})
        self.assertEqual(result["status"], "cancelled")

    def test_concurrent_executions(self):
        results = {}

        def run(n):
            code = f"import time\ntime.sleep(0.3)\nprint({n} * {n})"
            results[n] = self.server.json("POST", "/v1/executions", python(code))

        threads = [threading.Thread(target=run, args=(n,)) for n in (3, 4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(results[3]["stdout"], "9\n")
        self.assertEqual(results[4]["stdout"], "16\n")

    def test_files_in_and_out(self):
        code = (
            "data = open('data.txt').read()\n"
            "raw = open('blob.bin', 'rb').read()\n"
            "open('out.txt', 'w').write(data.upper())\n"
            "open('out.bin', 'wb').write(bytes(reversed(raw)))\n"
        )
        request = python(
            code,
            files=[
                {"path": "data.txt", "content": "hello"},
                {"path": "blob.bin", "content": base64.b64encode(b"\x00\x01\xfe").decode(), "encoding": "base64"},
            ],
            output={"files": ["out.*"]},
        )
        result = self.server.json("POST", "/v1/executions", request)
        self.assertEqual(result["status"], "ok", result)
        files = {f["path"]: f for f in result["files"]}
        self.assertEqual(files["out.txt"]["content"], "HELLO")
        self.assertEqual(files["out.txt"]["encoding"], "utf-8")
        self.assertEqual(files["out.bin"]["encoding"], "base64")
        self.assertEqual(base64.b64decode(files["out.bin"]["content"]), b"\xfe\x01\x00")

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = self.server.connect()
        for _ in range(3):
            status, _, data = self.server.request("GET", "/v1/runtimes", conn=conn)
            self.assertEqual(status, 200)
            names = [r["name"] for r in json.loads(data)["runtimes"]]
            self.assertIn("python", names)
        status, _, _ = self.server.request("POST", "/v1/executions", python("print(1)"), conn=conn)
        self.assertEqual(status, 200)
        conn.close()

    def test_malformed_json_is_400_naming_the_field(self):
        status, _, data = self.server.request(
            "POST", "/v1/executions", {"language": "python", "code": "1", "timeout": 5}
        )
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["error"]["field"], "timeout")
        status, _, data = self.server.request(
            "POST", "/v1/executions", b"{not json", headers={"Content-Type": "application/json"}
        )
        self.assertEqual(status, 400)
        status, _, data = self.server.request(
            "POST", "/v1/executions", python("1", limits={"memory": "lots"})
        )
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["error"]["field"], "limits.memory")

    def test_unknown_runtime_lists_the_valid_ones(self):
        status, _, data = self.server.request("POST", "/v1/executions", {"language": "cobol", "code": ""})
        self.assertEqual(status, 400)
        error = json.loads(data)["error"]
        self.assertEqual(error["code"], "unknown_runtime")
        self.assertIn("python", error["valid"])

    def test_missing_or_wrong_key_is_401(self):
        status, headers, _ = self.server.request("POST", "/v1/executions", python("1"), key=None)
        self.assertEqual(status, 401)
        self.assertEqual(headers["www-authenticate"], "Bearer")
        status, _, _ = self.server.request("GET", "/v1/runtimes", key="guess")
        self.assertEqual(status, 401)

    def test_policy_not_allowed_for_the_key_is_403(self):
        status, _, data = self.server.request("POST", "/v1/executions", python("1", policy="python"))
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(data)["error"]["valid"], ["default"])
        result = self.server.json("POST", "/v1/executions", python("print(1)", policy="python"), key=ADMIN_KEY)
        self.assertEqual(result["policy"]["name"], "python")

    def test_unknown_paths_and_executions_are_404(self):
        self.assertEqual(self.server.request("GET", "/nope")[0], 404)
        self.assertEqual(self.server.request("GET", "/v1/executions/ex_000000000000000000000000")[0], 404)

    def test_a_body_over_the_limit_is_413(self):
        status, _, _ = self.server.request("POST", "/v1/executions", python("#" + "x" * 70000))
        self.assertEqual(status, 413)

    def test_health_readiness_and_metrics_need_no_key(self):
        self.assertEqual(self.server.json("GET", "/healthz", key=None)["status"], "ok")
        self.assertEqual(self.server.json("GET", "/readyz", key=None)["status"], "ok")
        status, headers, data = self.server.request("GET", "/metrics", key=None)
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertIn(b"airlock_executions_in_flight", data)

    def test_policies_show_their_effective_form_and_hash(self):
        listed = self.server.json("GET", "/v1/policies")
        self.assertEqual([p["name"] for p in listed["policies"]], ["default"])
        policy = self.server.json("GET", "/v1/policies/default")
        self.assertTrue(policy["hash"].startswith("sha256:"))
        self.assertTrue(policy["effective"])
        self.assertEqual(self.server.request("GET", "/v1/policies/python")[0], 403)

    def test_garbage_on_the_socket_does_not_hurt_the_service(self):
        for garbage in (b"\x00\xff\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/executions HTTP/1.1\r\nContent-Length: -1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
                sock.sendall(garbage)
                sock.recv(4096)
        self.assertEqual(self.server.json("GET", "/healthz", key=None)["status"], "ok")

    def test_logs_are_json_lines_with_the_execution_id(self):
        result = self.server.json("POST", "/v1/executions", python("print(1)"))
        records = self.server.log_records()
        self.assertTrue(records)
        ids = [r.get("execution_id") for r in records if r.get("msg") == "execution finished"]
        self.assertIn(result["id"], ids)


class ExamplesTest(unittest.TestCase):
    """The examples in examples/ work against a real service."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(AIRLOCK, base_config())
        cls.url = f"http://127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def run_example(self, *command, env=None):
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)

    def test_python_client_runs_and_streams(self):
        client = os.path.join(EXAMPLES, "airlock_client.py")
        common = [sys.executable, client, "--url", self.url, "--key", TEST_KEY, "--lang", "python"]
        done = self.run_example(*common, "--code", "print(7 * 6)")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["stdout"], "42\n")
        streamed = self.run_example(*common, "--stream", "--code", "print('a')\nprint('b')")
        self.assertEqual(streamed.returncode, 0, streamed.stderr)
        self.assertEqual(streamed.stdout, "a\nb\n")

    def test_agent_loop_recovers_from_its_mistake_and_answers(self):
        loop = os.path.join(EXAMPLES, "agent_loop.py")
        done = self.run_example(sys.executable, loop, "--url", self.url, "--key", TEST_KEY)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("NameError", done.stderr)  # the first try failed in the sandbox
        self.assertEqual(done.stdout.strip(), "The sum of the first 100 primes is 24133.")

    def test_curl_example(self):
        env = dict(os.environ, AIRLOCK_URL=self.url, AIRLOCK_KEY=TEST_KEY)
        done = self.run_example("bash", os.path.join(EXAMPLES, "curl.sh"), env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("tick 3", done.stdout)
        self.assertIn("apple\\nfig\\npear", done.stdout)


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    unittest.main(verbosity=2)
