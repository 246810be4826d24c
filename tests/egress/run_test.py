"""run_test.py AIRLOCK SOURCE_DIR: code under a policy with egress reaches what the policy
names through airlock's gateway, and nothing else (issue 16).

The whole test runs in a network namespace of its own (it re-runs itself under `unshare -n`):
upstream servers on 127.0.0.x stand in for the internet, the gateway is pointed at them by the
config's egress.hosts, and no packet can leave for any other address."""

import atexit
import base64
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

AIRLOCK, SOURCE = sys.argv[1:3]
ONLY = sys.argv[3:]  # test names for unittest, e.g. WarmPooledEgress
if os.environ.get("AIRLOCK_EGRESS_TEST_NETNS") != "1":
    # A namespace of our own, loopback up: nothing here can reach the host's network.
    # 2001:db8::5 stands for an IPv6 upstream, 2001:db8:1::9 for an address of the host's own.
    os.execvpe("unshare", ["unshare", "--net", "sh", "-c",
                           'ip link set lo up && ip -6 addr add 2001:db8::5/128 dev lo && '
                           'ip -6 addr add 2001:db8:1::9/128 dev lo && exec "$@"', "sh",
                           sys.executable, *sys.argv],
               dict(os.environ, AIRLOCK_EGRESS_TEST_NETNS="1"))
del sys.argv[1:]
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import serve_support as s  # noqa: E402
LIMIT_S = 120  # how long a run may take before the test gives up; never asserted on
SECRET = "s3cret-token-for-the-test-only"
NARROW_KEY = "narrow-key-for-the-test-only"
TMP = tempfile.mkdtemp(prefix="airlock-egress-test-")
atexit.register(shutil.rmtree, TMP, True)


class Upstream(http.server.ThreadingHTTPServer):
    """An HTTP(S) server on 127.0.0.x that records what it was asked."""

    def __init__(self, address, routes, tls=None):
        self.routes, self.seen = routes, []
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, 0), Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append({"path": self.path, "headers": dict(self.headers.items())})
        body = self.server.routes.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        # pip reads an index page only with its content type.
        self.send_header("Content-Type", "text/html" if self.path.endswith("/") else
                         "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def make_wheel():
    """A one-module wheel, airlock_demo 1.0, for the local package index."""
    files = {"airlock_demo/__init__.py": b"VALUE = 42\n",
             "airlock_demo-1.0.dist-info/METADATA":
                 b"Metadata-Version: 2.1\nName: airlock-demo\nVersion: 1.0\n",
             "airlock_demo-1.0.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: egress_test\nRoot-Is-Purelib: true\n"
                 b"Tag: py3-none-any\n"}
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
    record += "airlock_demo-1.0.dist-info/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("airlock_demo-1.0.dist-info/RECORD", record)
    return buffer.getvalue()


def make_test_ca():
    """A CA and a certificate for secure.test it signed, made with the openssl CLI."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=TMP, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=airlock egress test CA", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=secure.test",
            "-keyout", "secure.key", "-out", "secure.csr")
    with open(os.path.join(TMP, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:secure.test\n")
    openssl("x509", "-req", "-in", "secure.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "secure.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(TMP, "secure.pem"), os.path.join(TMP, "secure.key"))
    return context


WHEEL = make_wheel()
WHEEL_NAME = "airlock_demo-1.0-py3-none-any.whl"
PLAIN = Upstream("127.0.0.2", {"/hello": b"hello from plain.test\n"})
SECURE = Upstream("127.0.0.3", {"/hello": b"hello over TLS\n"}, tls=make_test_ca())
INDEX = Upstream("127.0.0.4", {
    "/simple/airlock-demo/": ('<a href="/files/%s#sha256=%s">%s</a>\n' % (
        WHEEL_NAME, hashlib.sha256(WHEEL).hexdigest(), WHEEL_NAME)).encode(),
    "/files/" + WHEEL_NAME: WHEEL})
V6 = Upstream("2001:db8::5", {"/hello": b"hello over IPv6\n"})

with open(os.path.join(TMP, "token"), "w") as f:
    f.write("Bearer " + SECRET + "\n")
with open(os.path.join(TMP, "config.yaml"), "w") as f:
    f.write("""egress:
  hosts:
    plain.test: 127.0.0.2:%d
    other.test: 127.0.0.2:%d
    secure.test: 127.0.0.3:%d
    pypi.test: 127.0.0.4:%d
  secrets:
    plain_token: {file: %s/token}
""" % (PLAIN.port, PLAIN.port, SECURE.port, INDEX.port, TMP))
POLICY_DIR = os.path.join(TMP, "policies")
os.mkdir(POLICY_DIR)
with open(os.path.join(POLICY_DIR, "egress-test.yaml"), "w") as f:
    f.write("""extends: python
description: the egress test's destinations
limits:
  wall_time: 60s
  cpu_time: 60s
egress:
  allow:
    - domain: plain.test
      ports: [80]
      reason: the test's plain HTTP upstream, its token added by the gateway
      headers:
        Authorization: {secret: plain_token}
    - domain: secure.test
      ports: [443]
      reason: the test's TLS upstream
    - domain: pypi.test
      ports: [80]
      reason: the test's package index
    - cidr: "2001:db8::5"
      ports: [%d]
      reason: the test's IPv6 upstream
    - cidr: "2001:db8:1::/48"
      ports: [%d]
      reason: a network that holds an address of the host's own
""" % (V6.port, V6.port))
ENV = dict(os.environ, AIRLOCK_RUNTIMES=os.path.join(SOURCE, "runner", "runtimes.yaml"),
           AIRLOCK_POLICY_DIR=POLICY_DIR + ":" + os.path.join(SOURCE, "policies"))


def run_python(code, *extra):
    done = subprocess.run([AIRLOCK, "run", "--json", "--config", os.path.join(TMP, "config.yaml"),
                           "--policy", "egress-test", *extra, "--runtime", "python", "-c", code],
                          capture_output=True, text=True, timeout=LIMIT_S, env=ENV)
    try:
        return json.loads(done.stdout), done
    except ValueError:
        raise AssertionError("no JSON result: %r %r" % (done.stdout, done.stderr))


def refused(result):
    return {(b["destination"], b["reason"]) for b in result.get("blocked_connections", [])}


class Egress(unittest.TestCase):
    def test_an_allowed_name_over_http_gets_the_secret_the_sandbox_never_sees(self):
        code = """
import os, urllib.request
print(urllib.request.urlopen("http://plain.test/hello", timeout=20).read().decode(), end="")
print(open("/etc/resolv.conf").read().split()[1])
print(any("s3cret" in value for value in os.environ.values()))
"""
        result, done = run_python(code)
        self.assertEqual(result["status"], "ok", done.stderr + result["stderr"])
        self.assertEqual(result["stdout"], "hello from plain.test\n198.18.0.1\nFalse\n")
        asked = PLAIN.seen[-1]
        self.assertEqual(asked["path"], "/hello")
        self.assertEqual(asked["headers"].get("Authorization"), "Bearer " + SECRET)
        self.assertEqual(asked["headers"].get("Host"), "plain.test")
        self.assertEqual(asked["headers"].get("Connection"), "close")
        usage = result["usage"]
        self.assertGreaterEqual(usage["network_connections"], 1)
        self.assertGreater(usage["network_bytes_sent"], 0)
        self.assertGreater(usage["network_bytes_received"], len("hello from plain.test\n"))
        self.assertNotIn(SECRET, done.stdout + done.stderr)
        self.assertIn("network: ", result["summary"])

    def test_an_allowed_name_over_tls_by_its_sni(self):
        code = """
import ssl, urllib.request
context = ssl.create_default_context(cafile="ca.pem")
print(urllib.request.urlopen("https://secure.test/hello", context=context, timeout=20).read().decode(), end="")
"""
        result, done = run_python(code, "--file", os.path.join(TMP, "ca.pem"))
        self.assertEqual(result["status"], "ok", done.stderr + result["stderr"])
        self.assertEqual(result["stdout"], "hello over TLS\n")
        self.assertEqual(refused(result), set())

    def test_a_name_not_on_the_list_does_not_resolve_and_is_reported(self):
        code = """
import socket
try:
    socket.getaddrinfo("other.test", 80)
    print("resolved")
except socket.gaierror as e:
    print("gaierror")
"""
        result, done = run_python(code)
        self.assertEqual(result["stdout"], "gaierror\n", done.stderr + result["stderr"])
        self.assertIn("dns other.test", {d for d, _ in refused(result)})
        self.assertIn("refused: dns other.test", result["summary"])

    def test_a_raw_address_and_a_foreign_host_header_are_refused_and_reported(self):
        code = """
import socket
for address in [("127.0.0.2", 80), ("93.184.216.34", 443)]:
    try:
        s = socket.create_connection(address, timeout=20)
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n")
        print(address[0], repr(s.recv(100)[:12]))
    except OSError as e:
        print(address[0], type(e).__name__)
s = socket.create_connection(("plain.test", 80), timeout=20)
s.sendall(b"GET /hello HTTP/1.1\\r\\nHost: other.test\\r\\n\\r\\n")
print(s.recv(100).split(b"\\r\\n")[0].decode())
"""
        before = len(PLAIN.seen)
        result, done = run_python(code)
        self.assertEqual(result["status"], "ok", done.stderr + result["stderr"])
        lines = result["stdout"].splitlines()
        for line in lines[:2]:  # closed without an answer, or reset
            self.assertNotIn("HTTP", line)
        self.assertIn("403", lines[2])
        destinations = {d for d, _ in refused(result)}
        self.assertIn("127.0.0.2:80", destinations)
        self.assertIn("93.184.216.34:443", destinations)
        self.assertTrue(any("other.test" in d or "plain.test" in d for d in destinations),
                        destinations)
        self.assertEqual(len(PLAIN.seen), before)  # none of them reached the upstream
        self.assertGreaterEqual(result["usage"]["network_refused"], 3)

    def test_another_port_udp_and_ipv6_are_refused_inside_and_reported_each(self):
        code = """
import socket
for port in (8080, 22):
    try:
        socket.create_connection(("plain.test", port), timeout=20)
        print("connected")
    except OSError as e:
        print(type(e).__name__)
for port in (443, 2222):
    try:
        socket.create_connection(("2001:db8::7", port), timeout=20).recv(1)
        print("connected")
    except OSError as e:
        print(type(e).__name__)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.sendto(b"ntp?", ("93.184.216.34", 123))
udp.settimeout(0.5)
try:
    udp.recv(10)
except OSError as e:
    print(type(e).__name__)
"""
        result, done = run_python(code)
        # An unconnected UDP socket never hears of the port-unreachable answer: it times out.
        # 443 is a port the gateway listens on, for IPv6 too: it closes what no rule allows.
        self.assertEqual(result["stdout"], "ConnectionRefusedError\nConnectionRefusedError\n"
                         "connected\nConnectionRefusedError\nTimeoutError\n",
                         done.stderr + result["stderr"])
        reasons = dict(refused(result))
        # Each destination, by the name the program used where it used one.
        self.assertIn("port 8080 is named by no egress rule", reasons.get("plain.test:8080", ""),
                      reasons)
        self.assertIn("port 22 is named by no egress rule", reasons.get("plain.test:22", ""),
                      reasons)
        self.assertIn("a raw address no rule allows", reasons.get("[2001:db8::7]:443", ""), reasons)
        self.assertIn("port 2222 is named by no egress rule", reasons.get("[2001:db8::7]:2222", ""),
                      reasons)
        self.assertIn("only DNS", reasons.get("udp 93.184.216.34:123", ""), reasons)
        self.assertGreaterEqual(result["usage"]["network_refused"], 3)

    def test_an_ipv6_network_a_rule_allows_is_reached_and_no_other(self):
        code = """
import urllib.request
print(urllib.request.urlopen("http://[2001:db8::5]:%d/hello", timeout=20).read().decode(), end="")
for other in ("2001:db8::6", "2001:db8:1::9"):
    try:
        urllib.request.urlopen("http://[%%s]:%d/hello" %% other, timeout=20)
    except OSError:
        print("refused")
""" % (V6.port, V6.port)
        result, done = run_python(code)
        self.assertEqual(result["stdout"], "hello over IPv6\nrefused\nrefused\n",
                         done.stderr + result["stderr"])
        reasons = dict(refused(result))
        self.assertIn("a raw address no rule allows", reasons.get("[2001:db8::6]:%d" % V6.port, ""),
                      reasons)
        # A rule's network holds it, but it is the host's own: only a rule naming it exactly.
        self.assertIn("a host-local address: only a rule naming it exactly, with this port, may",
                      reasons.get("[2001:db8:1::9]:%d" % V6.port, ""), reasons)

    def test_the_cli_last_line_names_a_refusal(self):
        done = subprocess.run(
            [AIRLOCK, "run", "--config", os.path.join(TMP, "config.yaml"), "--policy",
             "egress-test", "--runtime", "python", "-c",
             "import socket\ntry:\n socket.create_connection(('plain.test', 2222), timeout=5)\n"
             "except OSError as e:\n print(type(e).__name__)"],
            capture_output=True, text=True, timeout=LIMIT_S, env=ENV)
        self.assertEqual(done.stdout, "ConnectionRefusedError\n", done.stderr)
        self.assertIn("; network refused plain.test:2222 (port 2222 is named by no egress rule",
                      done.stderr.splitlines()[-1])

    def test_pip_installs_from_the_allowed_index(self):
        code = """
import subprocess, sys
done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir",
                       "--disable-pip-version-check", "--index-url", "http://pypi.test/simple",
                       "--trusted-host", "pypi.test", "--target", "pkgs", "airlock-demo"],
                      capture_output=True, text=True)
print(done.returncode, done.stderr[-2000:])
sys.path.insert(0, "pkgs")
import airlock_demo
print("VALUE", airlock_demo.VALUE)
"""
        result, done = run_python(code)
        self.assertEqual(result["status"], "ok", done.stderr + result["stdout"] + result["stderr"])
        self.assertTrue(result["stdout"].endswith("VALUE 42\n"), result["stdout"])
        self.assertIn("/files/" + WHEEL_NAME, [seen["path"] for seen in INDEX.seen])

    def test_without_egress_there_is_still_no_network(self):
        done = subprocess.run(
            [AIRLOCK, "run", "--json", "--config", os.path.join(TMP, "config.yaml"), "--policy",
             "python", "--runtime", "python", "-c",
             "import socket\ntry:\n socket.create_connection(('plain.test', 80), timeout=5)\n"
             "except OSError as e:\n print(type(e).__name__)"],
            capture_output=True, text=True, timeout=LIMIT_S, env=ENV)
        result = json.loads(done.stdout)
        self.assertIn(result["stdout"], ("gaierror\n", "PermissionError\n", "OSError\n"),
                      result)
        self.assertNotIn("blocked_connections", {k for k, v in result.items() if v})


class ServedEgress(unittest.TestCase):
    """The same gateway behind `airlock serve`: one-shot executions and sessions, the audit log
    and /metrics."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(TMP, "config.yaml")) as f:
            egress_section = f.read()
        # A third key whose runs may reach only secure.test of any policy's destinations.
        narrow_key = ("  - name: narrow\n    sha256: %s\n    policies: ['*']\n"
                      "    egress: [secure.test, not-in-any-policy.test]\n" %
                      hashlib.sha256(NARROW_KEY.encode()).hexdigest())
        cls.server = s.Server(AIRLOCK, s.base_config(
            policy_dirs=[POLICY_DIR, os.path.join(SOURCE, "policies")],
            e2b={"enabled": True, "spares": 0}) + narrow_key + egress_section)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def post(self, path, body, key=s.ADMIN_KEY):
        status, _, data = self.server.request("POST", path, body, key=key)
        return status, json.loads(data)

    def test_a_request_or_a_key_may_narrow_the_policys_egress_but_never_widen_it(self):
        code = ("import socket\nfor name in ('plain.test', 'secure.test'):\n"
                "    try:\n        socket.getaddrinfo(name, 80)\n        print(name, 'resolves')\n"
                "    except socket.gaierror:\n        print(name, 'does not resolve')\n")
        request = {"runtime": "python", "code": code, "policy": "egress-test"}
        status, result = self.post("/v1/executions", dict(request, egress={"allow": ["secure.test"]}))
        self.assertEqual(status, 200, result)
        self.assertEqual(result["stdout"],
                         "plain.test does not resolve\nsecure.test resolves\n", result)
        self.assertNotEqual(result["policy"]["hash"], self.policy_hash())  # what it ran under
        status, refused = self.post("/v1/executions",
                                    dict(request, egress={"allow": ["evil.test"]}))
        self.assertEqual(status, 400, refused)
        self.assertIn("may only narrow", refused["error"]["message"])
        status, result = self.post("/v1/executions", request, key=NARROW_KEY)
        self.assertEqual(status, 200, result)
        self.assertEqual(result["stdout"],
                         "plain.test does not resolve\nsecure.test resolves\n", result)

    def policy_hash(self):
        status, _, data = self.server.request("GET", "/v1/policies/egress-test", key=s.ADMIN_KEY)
        return json.loads(data)["hash"]

    def test_a_one_shot_execution_reports_refusals_in_its_result_audit_and_metrics(self):
        code = ("import socket, urllib.request\n"
                "print(urllib.request.urlopen('http://plain.test/hello', timeout=20).read())\n"
                "try:\n    socket.getaddrinfo('served-refusal.test', 443)\n"
                "except socket.gaierror:\n    print('refused')\n")
        status, result = self.post("/v1/executions", {"runtime": "python", "code": code,
                                                      "policy": "egress-test"})
        self.assertEqual(status, 200, result)
        self.assertEqual(result["status"], "ok", result["summary"])
        self.assertIn("dns served-refusal.test", {b["destination"] for b in
                                                  result["blocked_connections"]})
        self.assertGreaterEqual(result["usage"]["network_connections"], 1)
        metrics = self.server.metrics()
        self.assertGreaterEqual(metrics.get('airlock_egress_connections_total{policy="egress-test"'
                                            ',result="allowed"}', 0), 1)
        self.assertGreater(metrics.get('airlock_egress_bytes_total{policy="egress-test",'
                                       'direction="received"}', 0), 0)
        audit = os.path.join(self.server.dir.name, "state", "audit.jsonl")
        with open(audit) as f:
            records = [json.loads(line) for line in f]
        refused = [r for r in records if r.get("event") == "connection_refused"
                   and r.get("run_id") == result["id"]]
        self.assertEqual([r["destination"] for r in refused], ["dns served-refusal.test"])
        with open(audit) as f:
            self.assertNotIn(SECRET, f.read())

    def test_a_session_reaches_its_destinations_across_executions(self):
        status, session = self.post("/v1/sessions", {"runtime": "python",
                                                     "policy": "egress-test"})
        self.assertEqual(status, 201, session)
        self.addCleanup(self.server.request, "DELETE", "/v1/sessions/" + session["id"],
                        key=s.ADMIN_KEY)
        executions = "/v1/sessions/%s/executions" % session["id"]
        status, first = self.post(executions, {"code": (
            "import urllib.request\n"
            "page = urllib.request.urlopen('http://plain.test/hello', timeout=20).read()")})
        self.assertEqual((status, first["status"]), (200, "ok"), first)
        self.assertGreaterEqual(first["usage"]["network_connections"], 1)
        status, second = self.post(executions, {"code": "print(page.decode(), end='')"})
        self.assertEqual(second["stdout"], "hello from plain.test\n", second)
        self.assertEqual(second["usage"]["network_connections"], 0)  # this execution's own
        status, third = self.post(executions, {"code": (
            "import socket\nfor port in (80, 2222):\n  try:\n"
            "    socket.create_connection(('10.9.8.7', port), timeout=20).recv(1)\n"
            "  except OSError as e:\n    print(type(e).__name__)")})
        # The gateway's refusal (port 80) and the kernel's (2222), in this execution's result.
        destinations = {b["destination"] for b in third["blocked_connections"]}
        self.assertIn("10.9.8.7:80", destinations)
        self.assertIn("10.9.8.7:2222", destinations)
        status, fourth = self.post(executions, {"code": "print(1)"})
        self.assertEqual(fourth.get("blocked_connections", []), [], fourth)

    def test_an_e2b_sandbox_reaches_an_allowed_name_and_nothing_else(self):
        status, _, body = self.server.request(
            "POST", "/e2b/api/sandboxes",
            {"templateID": "base", "metadata": {"airlock.policy": "egress-test"}},
            key=None, headers={"X-API-Key": s.ADMIN_KEY})
        self.assertEqual(status, 201, body)
        sandbox = json.loads(body)
        self.addCleanup(self.server.request, "DELETE", "/e2b/api/sandboxes/" +
                        sandbox["sandboxID"], key=None, headers={"X-API-Key": s.ADMIN_KEY})
        code = ("import socket, urllib.request\n"
                "print(urllib.request.urlopen('http://plain.test/hello', timeout=20).read())\n"
                "try:\n    socket.getaddrinfo('e2b-refusal.test', 80)\n"
                "except socket.gaierror:\n    print('no such name')\n"
                "try:\n    socket.create_connection(('plain.test', 2222), timeout=20)\n"
                "except OSError:\n    pass\n")
        status, _, body = self.server.request(
            "POST", "/e2b/sandbox/execute", {"code": code}, key=None,
            headers={"E2b-Sandbox-Id": sandbox["sandboxID"], "E2b-Sandbox-Port": "49999",
                     "X-Access-Token": sandbox["envdAccessToken"]})
        self.assertEqual(status, 200, body)
        stdout = "".join(json.loads(line).get("text", "") for line in body.decode().splitlines()
                         if json.loads(line).get("type") == "stdout")
        self.assertEqual(stdout, "b'hello from plain.test\\n'\nno such name\n", body)
        # E2B's protocol has no place for refusals: the audit log has each, naming the sandbox.
        audit = os.path.join(self.server.dir.name, "state", "audit.jsonl")
        wanted = {"dns e2b-refusal.test", "plain.test:2222"}
        seen = set()
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:  # the log's own thread writes them
            with open(audit) as f:
                seen = {r["detail"].split(": ")[0] for r in map(json.loads, f)
                        if r.get("event") == "workspace_connection_refused"
                        and r.get("workspace_id") == sandbox["sandboxID"]}
            if wanted <= seen:
                break
            time.sleep(0.05)
        self.assertLessEqual(wanted, seen)
        # Its connections count in /metrics once it has ended.
        allowed = 'airlock_egress_connections_total{policy="egress-test",result="allowed"}'
        before = self.server.metrics().get(allowed, 0)
        status, _, body = self.server.request("DELETE", "/e2b/api/sandboxes/" +
                                              sandbox["sandboxID"], key=None,
                                              headers={"X-API-Key": s.ADMIN_KEY})
        self.assertEqual(status, 204, body)
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline and self.server.metrics().get(allowed, 0) <= before:
            time.sleep(0.05)
        self.assertGreaterEqual(self.server.metrics().get(allowed, 0), before + 1)


@unittest.skipUnless(os.environ.get("AIRLOCK_EGRESS_WARM") == "1",
                     "egress_warm_pool_test runs it (a warm pool's fork server takes minutes in "
                     "the cgroup-v2 VM)")
class WarmPooledEgress(unittest.TestCase):
    """A warm pool under an egress policy: sandboxes forked from its fork server reach the
    gateway as cold ones do."""

    def test_a_warm_sandbox_forked_under_an_egress_policy_reaches_the_gateway(self):
        config = s.base_config(policy_dirs=[POLICY_DIR, os.path.join(SOURCE, "policies")],
                               warm_pool=[{"runtime": "python", "policy": "egress-test",
                                           "size": 1, "refill": "fork"}])
        with open(os.path.join(TMP, "config.yaml")) as f:
            server = s.Server(AIRLOCK, config + f.read())
        self.addCleanup(server.close)
        code = ("import socket, urllib.request\n"
                "print(urllib.request.urlopen('http://plain.test/hello', timeout=20).read())\n"
                "try:\n    socket.getaddrinfo('warm-refusal.test', 80)\n"
                "except socket.gaierror:\n    print('no such name')\n"
                "try:\n    socket.create_connection(('plain.test', 2222), timeout=20)\n"
                "except OSError:\n    pass\n")
        hits = 0
        for _ in range(600):  # until the pool has a sandbox ready, and a run used it
            status, _, data = server.request("POST", "/v1/executions", {
                "runtime": "python", "code": code, "policy": "egress-test"}, key=s.ADMIN_KEY)
            result = json.loads(data)
            self.assertEqual((status, result["status"]), (200, "ok"), result)
            self.assertEqual(result["stdout"], "b'hello from plain.test\\n'\nno such name\n")
            destinations = {b["destination"] for b in result["blocked_connections"]}
            self.assertIn("dns warm-refusal.test", destinations)
            self.assertIn("plain.test:2222", destinations)  # the forked sandbox's watch too
            hits = s.metric_total(server.metrics(), "airlock_warm_pool_hits_total") or 0
            if hits >= 1:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(hits, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=[sys.argv[0], *ONLY])
