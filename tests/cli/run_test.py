"""run_test.py AIRLOCK SOURCE_DIR: `airlock run` as a developer uses it, against the real sandbox,
with the runtimes and policies of the source tree. Checks the contract it shares with the API:
the default policy, the option names errors use, compiler diagnostics and error lines."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

AIRLOCK, SOURCE = sys.argv[1:3]
del sys.argv[1:]
ENV = dict(os.environ, AIRLOCK_RUNTIMES=os.path.join(SOURCE, "runner", "runtimes.yaml"),
           AIRLOCK_POLICY_DIR=os.path.join(SOURCE, "policies"))
LIMIT_S = 120  # how long a test gives up after; never asserted on


def run(*args, stdin=None):
    return subprocess.run([AIRLOCK, "run", *args], input=stdin, capture_output=True, text=True,
                          timeout=LIMIT_S, env=ENV)


class Run(unittest.TestCase):
    def test_without_policy_it_runs_under_default_as_the_api_does(self):
        done = run("--runtime", "python", "-c", "print(6 * 7)")
        self.assertEqual((done.returncode, done.stdout), (0, "42\n"), done.stderr)
        self.assertIn("[policy default ", done.stderr)

    def test_lang_is_the_same_option(self):
        done = run("--lang", "bash", "-c", "echo hi")
        self.assertEqual((done.returncode, done.stdout), (0, "hi\n"), done.stderr)

    def test_a_limit_error_names_the_option_and_suggests_valid_input(self):
        done = run("--runtime", "python", "--timeout", "1 h", "-c", "print(1)")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--timeout: 1 h is above the limit of policy \"default\" (10 s)", done.stderr)
        self.assertIn("ask for at most 10 s", done.stderr)
        # ... and what it suggests is accepted.
        done = run("--runtime", "python", "--timeout", "10 s", "-c", "print(1)")
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_with_a_config_it_takes_the_servers_policies_and_default_policy(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "strict.yaml"), "w") as f:
                f.write("extends: default\nlimits:\n  wall_time: 3s\n")
            with open(os.path.join(d, "serve.yaml"), "w") as f:
                f.write("policy_dirs: [%s, %s]\ndefault_policy: strict\n"
                        % (d, os.path.join(SOURCE, "policies")))
            done = run("--config", os.path.join(d, "serve.yaml"), "--", "/bin/true")
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("[policy strict ", done.stderr)
            # --policy still chooses, among the config's policies.
            done = run("--config", os.path.join(d, "serve.yaml"), "--policy", "default", "--",
                       "/bin/true")
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("[policy default ", done.stderr)

    def test_an_empty_option_value_is_a_usage_error_not_the_default(self):
        for option in ("--policy", "--runtime", "--timeout"):
            done = run(option, "", "--", "/bin/true")
            self.assertEqual(done.returncode, 2, option)
            self.assertIn(option + " needs a value, not an empty one", done.stderr)

    def test_gcc_errors_reach_stderr_and_the_summary(self):
        with tempfile.NamedTemporaryFile("w", suffix=".c") as f:
            f.write("int main(void) { return undefined_name; }\n")
            f.flush()
            done = run("--runtime", "c", "--policy", "compile", f.name)
        self.assertEqual(done.returncode, 126, done.stderr)
        self.assertIn(": error: ", done.stderr)
        self.assertIn("undefined_name", done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        self.assertIn("airlock: compile_error (main.c:1:", last)

    def test_a_failed_run_quotes_the_exception_line(self):
        done = run("--runtime", "python", "-c", "1/0")
        self.assertEqual(done.returncode, 1, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        self.assertIn("airlock: nonzero_exit (ZeroDivisionError: division by zero)", last)

    def test_json_result_has_numbers_and_the_reason(self):
        done = run("--json", "--runtime", "python", "-c", "import sys; sys.exit('bad input')")
        result = json.loads(done.stdout)
        self.assertEqual(result["status"], "nonzero_exit")
        self.assertEqual(result["reason"], "bad input")
        self.assertIsInstance(result["stderr_bytes"], int)
        self.assertIsInstance(result["usage"]["wall_time_ms"], int)

    def test_a_source_or_file_that_is_not_a_regular_file_is_refused_unread(self):
        with tempfile.TemporaryDirectory() as directory:
            fifo = os.path.join(directory, "main.py")
            os.mkfifo(fifo)  # nobody writes: reading it would wait for ever
            for args, what in [((fifo,), f'cannot read \'{fifo}\': "{fifo}" is a FIFO'),
                               ((directory,), f'cannot read \'{directory}\': "{directory}" is a directory'),
                               (("--file", "/dev/zero", "-c", "print(1)"),
                                '--file: cannot read \'/dev/zero\': "/dev/zero" is a device')]:
                done = run("--runtime", "python", *args)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertIn(what + ", not a regular file", done.stderr)

    def test_code_on_stdin_over_the_body_limit_is_refused(self):
        done = subprocess.run([AIRLOCK, "run", "--runtime", "python", "-"], input=b"#" * (16 * 1024 * 1024 + 1),
                              capture_output=True, timeout=LIMIT_S, env=ENV)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn(b"the code on stdin is larger than 16 MiB", done.stderr)

    @unittest.skipUnless(os.path.exists("/usr/bin/java"), "java is not installed")
    def test_a_java_compile_error_is_compile_error(self):
        done = run("--json", "--runtime", "java", "-c",
                   "public class Main { public static void main(String[] a) { int x = ; } }")
        result = json.loads(done.stdout)
        self.assertEqual(result["status"], "compile_error", result["stderr"])
        self.assertIn("Main.java:1: error:", result["reason"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
