"""installed_test.py PREFIX STATE_DIR HIDDEN_DIR...: the installed airlock, run with the source and
build trees hidden (install_test.sh covers them with empty tmpfs before starting this). Every
file airlock reads must come from PREFIX."""

import json
import os
import subprocess
import sys
import time
import unittest

import serve_support as s

PREFIX, STATE_DIR, *HIDDEN = sys.argv[1:]
del sys.argv[1:]
AIRLOCK = os.path.join(PREFIX, "bin", "airlock")


def run(*args, env=None, stdin=None):
    return subprocess.run([AIRLOCK, *args], input=stdin, capture_output=True, text=True,
                          timeout=s.REQUEST_LIMIT_S, env=env)


class Hidden(unittest.TestCase):
    def test_the_source_and_build_trees_are_hidden(self):
        for path in HIDDEN:  # empty, or gone under the tmpfs that covers a tree holding it
            self.assertEqual(os.listdir(path) if os.path.exists(path) else [], [], path)

    def test_no_source_or_build_path_is_in_the_binary(self):
        with open(AIRLOCK, "rb") as f:
            binary = f.read()
        for path in HIDDEN:
            self.assertNotIn(path.encode(), binary)


class Run(unittest.TestCase):
    def test_python(self):
        done = run("run", "--lang", "python", "-c", "print(6 * 7)")
        self.assertEqual((done.returncode, done.stdout), (0, "42\n"), done.stderr)
        self.assertIn("[policy default ", done.stderr)  # as the API chooses (CHANGELOG)

    def test_bash_keeps_its_exit_code(self):
        done = run("run", "--lang", "bash", "-", stdin="echo $((6 * 7)); exit 3\n")
        self.assertEqual((done.returncode, done.stdout), (3, "42\n"), done.stderr)

    def test_a_program(self):
        done = run("run", "--", "/bin/echo", "hello")
        self.assertEqual((done.returncode, done.stdout), (0, "hello\n"), done.stderr)

    def test_policy_check_finds_the_installed_policies(self):
        done = run("policy", "check", "default", "python")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("OK default ", done.stdout)

    def test_a_missing_installed_file_is_named_with_where_it_was_looked_for(self):
        installed = os.path.join(PREFIX, "etc", "airlock", "runtimes.yaml")
        os.rename(installed, installed + ".away")
        try:
            done = run("run", "--lang", "python", "-c", "print(1)")
        finally:
            os.rename(installed + ".away", installed)
        self.assertEqual(done.returncode, 125)
        self.assertIn(f"runtimes file {installed} not found (installed beside "
                      f"{os.path.realpath(AIRLOCK)}; give --runtimes FILE or set AIRLOCK_RUNTIMES)",
                      done.stderr)

    def test_a_missing_runtimes_file_is_named(self):
        env = dict(os.environ, AIRLOCK_RUNTIMES="/nonexistent/runtimes.yaml")
        done = run("run", "--lang", "python", "-c", "print(1)", env=env)
        self.assertEqual(done.returncode, 125)
        self.assertIn("runtimes file /nonexistent/runtimes.yaml not found", done.stderr)


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        config = s.base_config(warm_pool=[{"runtime": "python", "policy": "default", "size": 1}])
        cls.server = s.Server(AIRLOCK, config)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_it_uses_the_installed_files(self):
        files = [r for r in self.server.log_records() if r.get("msg") == "files"]
        self.assertEqual(len(files), 1, self.server.logs)
        real_prefix = os.path.realpath(PREFIX)
        self.assertEqual(files[0]["runtimes_file"], PREFIX + "/etc/airlock/runtimes.yaml")
        self.assertEqual(files[0]["policy_dirs"], PREFIX + "/etc/airlock/policies")
        self.assertEqual(files[0]["drivers_dir"], real_prefix + "/lib/airlock/drivers")
        self.assertEqual(files[0]["fork_library"], real_prefix + "/lib/airlock/libairlock_fork.so")

    def test_healthz(self):
        status, _, _ = self.server.request("GET", "/healthz", key=None)
        self.assertEqual(status, 200)

    def test_an_execution(self):
        result = self.server.json("POST", "/v1/executions",
                                  {"language": "bash", "code": "echo $((6 * 7))"})
        self.assertEqual((result["status"], result["stdout"]), ("ok", "42\n"), result)

    def test_a_session_keeps_its_state(self):
        session = self.server.json("POST", "/v1/sessions", {"runtime": "python"}, expect=201)
        try:
            path = f"/v1/sessions/{session['id']}/executions"
            first = self.server.json("POST", path, {"code": "x = 41"})
            self.assertEqual(first["status"], "ok", first)
            second = self.server.json("POST", path, {"code": "print(x + 1)"})
            self.assertEqual(second["stdout"], "42\n", second)
        finally:
            self.server.request("DELETE", f"/v1/sessions/{session['id']}")

    def test_the_warm_pool_serves_from_a_fork_server(self):
        deadline = time.monotonic() + s.STARTUP_LIMIT_S
        while True:
            metrics = self.server.metrics()
            if s.metric_total(metrics, "airlock_warm_pool_ready") == 1:
                break
            self.assertLess(time.monotonic(), deadline, "no warm sandbox became ready:\n" +
                            "\n".join(self.server.logs[-20:]))
            time.sleep(0.1)
        self.assertEqual(s.metric_total(metrics, "airlock_warm_pool_fork_server_up"), 1, metrics)
        hits = s.metric_total(metrics, "airlock_warm_pool_hits_total")
        result = self.server.json("POST", "/v1/executions",
                                  {"language": "python", "code": "print(6 * 7)"})
        self.assertEqual((result["status"], result["stdout"]), ("ok", "42\n"), result)
        self.assertEqual(s.metric_total(self.server.metrics(), "airlock_warm_pool_hits_total"),
                         hits + 1)


class MissingFiles(unittest.TestCase):
    def test_serve_names_a_missing_drivers_dir_and_does_not_start(self):
        config = os.path.join(STATE_DIR, "missing.yaml")
        with open(config, "w") as f:
            f.write("listen: 127.0.0.1:0\ndrivers_dir: /nonexistent/drivers\n"
                    f"state_dir: {json.dumps(STATE_DIR)}\n")
        done = subprocess.run([AIRLOCK, "serve", "--config", config], capture_output=True,
                              text=True, timeout=s.REQUEST_LIMIT_S)
        self.assertEqual(done.returncode, 1)
        self.assertIn("drivers directory /nonexistent/drivers not found", done.stderr)


if __name__ == "__main__":
    os.makedirs(STATE_DIR, exist_ok=True)
    unittest.main(verbosity=2)
