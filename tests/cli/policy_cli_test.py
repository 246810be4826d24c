"""The `airlock policy` and `airlock audit` commands as a reviewer and a CI job run them: help on
every subcommand, diff as a gate on loosening, check's review notes, the floor's group names.
Usage: policy_cli_test.py AIRLOCK_BINARY [unittest args]."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

AIRLOCK = None
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def airlock(*args, policy_dir=None):
    env = dict(os.environ)
    if policy_dir:
        env["AIRLOCK_POLICY_DIR"] = policy_dir
    return subprocess.run([AIRLOCK, *args], capture_output=True, text=True, timeout=120, env=env)


class PolicyDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="airlock-policy-cli-")
        self.addCleanup(shutil.rmtree, self.dir)
        shutil.copy(os.path.join(SOURCE_DIR, "policies", "default.yaml"), self.dir)

    def write(self, name, text):
        with open(os.path.join(self.dir, name + ".yaml"), "w") as f:
            f.write(text)

    def policy(self, *args):
        return airlock("policy", *args, policy_dir=self.dir)


class HelpTest(unittest.TestCase):
    def test_every_subcommand_takes_help(self):
        for args in (["run"], ["serve"], ["policy"], ["policy", "check"], ["policy", "show"],
                     ["policy", "diff"], ["policy", "groups"], ["audit"], ["audit", "run"],
                     ["audit", "blocked"], ["audit", "refused"], ["version"]):
            with self.subTest(args=args):
                done = airlock(*args, "--help")
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertIn("usage: airlock", done.stdout)
                self.assertEqual(done.stderr, "")

    def test_subcommand_help_says_what_the_subcommand_does(self):
        self.assertIn("--fail-on-loosen", airlock("policy", "diff", "--help").stdout)
        self.assertIn("WARNING", airlock("policy", "check", "--help").stdout)
        self.assertIn("--effective", airlock("policy", "show", "-h").stdout)


class DiffGateTest(PolicyDir):
    def test_fail_on_loosen_exits_3_when_the_change_loosens(self):
        self.write("looser", "extends: default\nlimits:\n  memory: 1GiB\n")
        done = self.policy("diff", "default", "looser", "--fail-on-loosen")
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn("(loosens)", done.stdout)
        self.assertIn("looser loosens default", done.stderr)
        # Without the flag a diff only reports.
        self.assertEqual(self.policy("diff", "default", "looser").returncode, 0)

    def test_fail_on_loosen_passes_a_tightening_or_no_change(self):
        self.write("tighter", "extends: default\nlimits:\n  memory: 64MiB\n")
        done = self.policy("diff", "--fail-on-loosen", "default", "tighter")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("(tightens)", done.stdout)
        same = self.policy("diff", "default", "default", "--fail-on-loosen")
        self.assertEqual(same.returncode, 0)
        self.assertIn("no difference in effect", same.stdout)

    def test_unknown_options_are_usage_errors(self):
        done = self.policy("diff", "default", "default", "--fail-on-looser")
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown option '--fail-on-looser'", done.stderr)


class CheckReviewTest(PolicyDir):
    def test_sensitive_and_writable_binds_warn_but_pass(self):
        self.write("leaky", "extends: default\nfilesystem:\n  binds:\n    - /etc/shadow\n"
                            "    - {path: /srv/shared, host: /var/tmp, writable: true}\n")
        done = self.policy("check", "leaky")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn('WARNING policy "leaky": bind /etc/shadow: exposes /etc/shadow', done.stdout)
        self.assertIn('WARNING policy "leaky": bind /srv/shared (host /var/tmp): writable', done.stdout)

    def test_a_required_bind_of_a_missing_path_fails(self):
        self.write("missing", "extends: default\nfilesystem:\n  binds:\n"
                              "    - /nonexistent/airlock-test-path\n")
        done = self.policy("check", "missing")
        self.assertEqual(done.returncode, 1)
        self.assertIn("INVALID missing", done.stdout)
        self.assertIn('ERROR policy "missing": bind /nonexistent/airlock-test-path: the host path '
                      "does not exist here", done.stdout)
        self.write("optional", "extends: default\nfilesystem:\n  binds:\n"
                               "    - {path: /nonexistent/airlock-test-path, optional: true}\n")
        self.assertEqual(self.policy("check", "optional").returncode, 0)

    def test_the_shipped_default_policy_checks_clean(self):
        done = self.policy("check", "default")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("WARNING", done.stdout)


class EgressTest(PolicyDir):
    PIP = ("extends: default\negress:\n  allow:\n"
           "    - {domain: pypi.org, ports: [443], reason: pip looks up packages}\n"
           "    - domain: api.internal.test\n      ports: [80]\n      reason: the internal API\n"
           "      headers: {Authorization: {secret: internal_api}}\n")

    def test_check_show_and_diff_speak_of_egress(self):
        self.write("pip", self.PIP)
        self.assertEqual(self.policy("check", "pip").returncode, 0)
        shown = self.policy("show", "pip", "--effective").stdout
        self.assertIn("network: egress\n", shown)
        self.assertIn('    - domain: pypi.org  # policy "pip" (egress.allow[0])\n'
                      "      ports: [443]\n"
                      '      reason: "pip looks up packages"\n', shown)
        self.assertIn("        Authorization: {secret: internal_api}\n", shown)
        done = self.policy("diff", "default", "pip", "--fail-on-loosen")
        self.assertEqual(done.returncode, 3, done.stdout + done.stderr)
        self.assertIn("network changed from none to egress (loosens)", done.stdout)
        self.assertIn("egress to pypi.org port 443 added: pip looks up packages (loosens)",
                      done.stdout)

    def test_a_secret_value_in_a_policy_is_refused_at_its_line(self):
        self.write("leak", self.PIP.replace("{secret: internal_api}", "Bearer abc123"))
        done = self.policy("check", "leak")
        self.assertEqual(done.returncode, 1)
        self.assertIn("leak.yaml:8:32: header 'Authorization': expected {secret: NAME}, got a "
                      "string; secrets never go in policies", done.stdout + done.stderr)


class FloorNamesTest(PolicyDir):
    def test_every_floor_group_show_effective_names_is_listed_by_groups(self):
        shown = self.policy("show", "default", "--effective").stdout
        floor = shown[shown.index("  floor:"):]
        named = {part.split(")")[0].split(",")[0] for part in floor.split("floor (")[1:]}
        self.assertIn("@io-uring", named)
        self.assertNotIn("@io_uring", named)
        listed = self.policy("groups").stdout
        listed_names = {line.split(" ")[0] for line in listed.splitlines() if line.startswith("@")}
        self.assertLessEqual(named, listed_names)


if __name__ == "__main__":
    AIRLOCK = os.path.abspath(sys.argv.pop(1))
    unittest.main()
