"""Replicas and routing (issue 17), on loopback: three `airlock serve` replicas behind nginx
running the shipped config of deploy/balancer/. 200 sessions are created and used through the
balancer, each call reaching the replica its id names; one replica is told to stop mid-test: it
drains (not ready, no new sessions, its running execution finishes, its sessions closed), and
afterwards its sessions answer session_lost through the balancer while the others keep working."""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import serve_support as s  # noqa: E402

AIRLOCK = None
BALANCER_DIR = None
MCP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mcp")
REPLICAS = ("r1", "r2", "r3")
SESSIONS = 200


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def replica_of(session_id):
    """The replica name an id carries: se_r1_<24 hex> -> r1."""
    return session_id.split("_")[1]


def local_replicas_conf(ports):
    """replicas.conf for replicas on this host, as deploy/balancer/replicas.conf shows."""
    lines = []
    for name, port in ports.items():
        lines.append(f"upstream airlock_{name} {{ server 127.0.0.1:{port}; keepalive 16; }}")
    lines.append("upstream airlock_any {")
    lines += [f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;" for port in ports.values()]
    lines += ["    keepalive 32;", "}", "map $airlock_replica $airlock_upstream {",
              '    "" airlock_any;']
    lines += [f"    {name} airlock_{name};" for name in ports]
    lines += ['    default "";', "}"]
    return "\n".join(lines) + "\n"


class Balancer:
    """nginx with the shipped nginx.conf and balancer.conf; replicas.conf (and any other site
    file) written for this test's replicas, as a site writes its own; listen.conf on a free port."""

    def __init__(self, replicas_conf, site_files=None):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise RuntimeError("nginx is not installed; scripts/deps.sh installs it")
        self.dir = tempfile.TemporaryDirectory(prefix="airlock-balancer-test-")
        for name in ("nginx.conf", "balancer.conf"):
            shutil.copy(os.path.join(BALANCER_DIR, name), self.dir.name)
        files = {"replicas.conf": replicas_conf, **(site_files or {})}
        for name, text in files.items():
            with open(os.path.join(self.dir.name, name), "w") as f:
                f.write(text)
        self.port = free_port()
        with open(os.path.join(self.dir.name, "listen.conf"), "w") as f:
            f.write(f"listen 127.0.0.1:{self.port};\n")
        prefix = self.dir.name + "/"
        conf = os.path.join(self.dir.name, "nginx.conf")
        checked = subprocess.run([nginx, "-t", "-p", prefix, "-c", conf], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError("nginx refused the shipped config:\n" + checked.stderr)
        self.process = subprocess.Popen([nginx, "-p", prefix, "-c", conf, "-g", "daemon off;"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + s.STARTUP_LIMIT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: " + self.process.stderr.read().decode())
                time.sleep(0.05)

    def request(self, method, path, body=None, key=s.TEST_KEY):
        """(status, body dict or text) through the balancer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=s.REQUEST_LIMIT_S)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def close(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()
        self.dir.cleanup()


class ReplicasBehindABalancerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        config = dict(max_sessions=SESSIONS, max_sessions_per_key=SESSIONS, max_concurrent=2,
                      max_queued=64, shutdown_grace="60s", session_idle_timeout="30m")
        cls.replicas = {}
        try:
            for name in REPLICAS:
                # A fixed port: the balancer's config names it, and r2 comes back on it.
                listen = f"127.0.0.1:{free_port()}"
                cls.replicas[name] = s.Server(
                    AIRLOCK, s.base_config(replica=name, listen=listen, **config))
            cls.balancer = Balancer(
                local_replicas_conf({name: server.port for name, server in cls.replicas.items()}))
        except Exception:
            for server in cls.replicas.values():
                server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.balancer.close()
        for server in cls.replicas.values():
            server.close()

    def run_in(self, session_id, code):
        status, body = self.balancer.request(
            "POST", f"/v1/sessions/{session_id}/executions", {"code": code})
        self.assertEqual(status, 200, body)
        return body

    def test_sessions_reach_their_replica_and_survive_another_replicas_drain(self):
        b = self.balancer
        pool = concurrent.futures.ThreadPoolExecutor(8)

        # 200 sessions through the balancer, each given a value of its own.
        def create(n):
            status, body = b.request("POST", "/v1/sessions", {"runtime": "python"})
            self.assertEqual(status, 201, body)
            result = self.run_in(body["id"], f"n = {n}\nprint('set', n)")
            self.assertEqual(result["stdout"], f"set {n}\n", result)
            return body["id"]

        ids = list(pool.map(create, range(SESSIONS)))
        self.assertEqual(len(set(ids)), SESSIONS)
        by_replica = {name: [i for i, sid in enumerate(ids) if replica_of(sid) == name]
                      for name in REPLICAS}
        for name in REPLICAS:
            self.assertTrue(by_replica[name], f"no session was placed on {name}: {ids[:5]}...")

        # Each replica holds exactly the sessions whose ids name it.
        for name, server in self.replicas.items():
            held = {info["id"] for info in server.json("GET", "/v1/sessions")["sessions"]}
            self.assertEqual(held, {ids[i] for i in by_replica[name]}, name)

        # Every session answers with its own state: each call reached its session's replica.
        def check(n):
            result = self.run_in(ids[n], "print(n * 2)")
            self.assertEqual(result["stdout"], f"{n * 2}\n", result)

        list(pool.map(check, range(SESSIONS)))

        # An MCP client (the official SDK) is pinned to one replica by its Mcp-Session-Id, so the
        # sessions it creates are where its later calls go.
        if not os.path.isdir(os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol", "sdk")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=MCP_DIR, check=True,
                           stdout=subprocess.DEVNULL)
        pinned = subprocess.run(
            ["node", os.path.join(MCP_DIR, "mcp_pinned_client.mjs"),
             f"http://127.0.0.1:{b.port}/mcp", s.TEST_KEY],
            capture_output=True, text=True, timeout=s.REQUEST_LIMIT_S * 2)
        self.assertEqual(pinned.returncode, 0, pinned.stderr)
        mcp = json.loads(pinned.stdout.strip().splitlines()[-1])
        pinned_to = mcp["mcp_session"].split("_")[1]
        self.assertIn(pinned_to, REPLICAS)
        self.assertEqual({replica_of(sid) for sid in mcp["sessions"]}, {pinned_to}, mcp)
        # Straight to a replica, another replica's MCP session is misrouted, and one from an
        # earlier run of this replica has ended (MCP clients then initialize again).
        other_name = next(name for name in REPLICAS if name != pinned_to)
        mcp_call = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        status, _, body = self.replicas[other_name].request(
            "POST", "/mcp", mcp_call, headers={"Mcp-Session-Id": mcp["mcp_session"]})
        self.assertEqual(status, 404, body)
        self.assertIn("belongs to replica " + pinned_to, json.loads(body)["error"]["message"])
        ended = f"mcp_{pinned_to}_{'0' * 24}"
        status, _, body = self.replicas[pinned_to].request(
            "POST", "/mcp", mcp_call, headers={"Mcp-Session-Id": ended})
        self.assertEqual(status, 404, body)
        self.assertIn("initialize again", json.loads(body)["error"]["message"])

        # The balancer refuses what needs no replica to refuse: a keyless API request before its
        # body is read, a body over the size limit, and /metrics (scraped from replicas).
        for head, expected in ((b"POST /v1/executions HTTP/1.1\r\nContent-Length: 10000000\r\n", b" 401 "),
                               (b"POST /mcp HTTP/1.1\r\nContent-Length: 10000000\r\n", b" 401 "),
                               (b"POST /v1/executions HTTP/1.1\r\nAuthorization: Bearer " +
                                s.TEST_KEY.encode() + b"\r\nContent-Length: 20000000\r\n", b" 413 ")):
            with socket.create_connection(("127.0.0.1", b.port), timeout=s.REQUEST_LIMIT_S) as sock:
                sock.sendall(head + b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n")
                self.assertIn(expected, sock.recv(4096).split(b"\r\n", 1)[0], head)
        self.assertEqual(b.request("GET", "/metrics")[0], 404)

        # Sent straight to the wrong replica, a session's id is refused as misrouted.
        other = self.replicas["r3"]
        status, _, body = other.request("GET", "/v1/sessions/" + ids[by_replica["r1"][0]])
        self.assertEqual(status, 421, body)
        self.assertEqual(json.loads(body)["error"]["code"], "wrong_replica")

        # A stateless execution's result is looked up on the replica that ran it.
        status, body = b.request("POST", "/v1/executions", {"runtime": "python", "code": "print(7)"})
        self.assertEqual(status, 200, body)
        status, looked_up = b.request("GET", "/v1/executions/" + body["id"])
        self.assertEqual((status, looked_up.get("stdout")), (200, "7\n"), looked_up)

        # Replica r2 is told to stop while one of its sessions runs an execution.
        stopping = self.replicas["r2"]
        running_n, *idle_on_r2 = by_replica["r2"]
        stopping_incarnation = ids[running_n].split("_")[2][:8]  # runner/ids.h
        long_run = pool.submit(
            self.run_in, ids[running_n],
            "import time\nprint('started', flush=True)\ntime.sleep(4)\nprint('finished', n)")
        self.assertTrue(s.wait_until(lambda: stopping.json("GET", "/v1/sessions/" + ids[running_n])["busy"]))
        stopping.terminate(signal.SIGTERM)

        # Draining: not ready, no new sessions, idle sessions closed and said to be lost.
        self.assertTrue(s.wait_until(lambda: stopping.request("GET", "/readyz", key=None)[0] == 503))
        status, _, body = stopping.request("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["error"]["code"], "shutting_down")
        # An MCP client pinned to it is told to initialize again, and initialize goes elsewhere.
        r2_mcp = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}
        status, headers, body = stopping.request("POST", "/mcp", r2_mcp)
        self.assertEqual(status, 503, body)
        status, _, body = stopping.request(
            "POST", "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "ping"},
            headers={"Mcp-Session-Id": f"mcp_r2_{stopping_incarnation}{'0' * 16}"})
        self.assertEqual(status, 404, body)
        self.assertIn("shutting down", json.loads(body)["error"]["message"])
        status, body = b.request("POST", f"/v1/sessions/{ids[idle_on_r2[0]]}/executions",
                                 {"code": "print(n)"})
        self.assertEqual(status, 410, body)
        self.assertEqual(body["error"]["code"], "session_lost")
        self.assertIn("shutting down", body["error"]["message"])
        # New sessions through the balancer go to the replicas that take them.
        status, body = b.request("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual(status, 201, body)
        self.assertIn(replica_of(body["id"]), ("r1", "r3"))
        b.request("DELETE", "/v1/sessions/" + body["id"])

        # The running execution finishes; then the replica exits cleanly.
        finished = long_run.result(s.REQUEST_LIMIT_S)
        self.assertEqual(finished["status"], "ok", finished)
        self.assertEqual(finished["stdout"], f"started\nfinished {running_n}\n")
        self.assertEqual(stopping.wait(), 0)

        # Gone: its sessions answer session_lost through the balancer, every one of them.
        for n in by_replica["r2"]:
            status, body = b.request("POST", f"/v1/sessions/{ids[n]}/executions", {"code": "print(n)"})
            self.assertEqual(status, 410, body)
            self.assertEqual(body["error"]["code"], "session_lost", body)
        status, body = b.request("GET", f"/v1/sessions/{ids[by_replica['r2'][0]]}")
        self.assertEqual((status, body["error"]["code"]), (410, "session_lost"))

        # The others keep working, state intact, and stateless work goes to the live replicas.
        survivors = by_replica["r1"] + by_replica["r3"]
        list(pool.map(check, survivors))
        for _ in range(6):
            status, body = b.request("POST", "/v1/executions", {"runtime": "python", "code": "print(1)"})
            self.assertEqual((status, body.get("stdout")), (200, "1\n"), body)

        # A replica that comes back under its old name knows it lost what it had.
        stopping.start()
        status, body = b.request("GET", f"/v1/sessions/{ids[by_replica['r2'][0]]}")
        self.assertEqual((status, body["error"]["code"]), (410, "session_lost"), body)
        self.assertIn("restarted", body["error"]["message"])

        def close(n):
            status, body = b.request("DELETE", "/v1/sessions/" + ids[n])
            self.assertEqual(status, 200, body)

        list(pool.map(close, survivors))
        pool.shutdown()


class ClusterDns:
    """A DNS server on loopback standing in for a cluster's: A records for the names the
    Kubernetes balancer config asks for, NXDOMAIN for the rest (a pod that is gone)."""

    def __init__(self):
        self.records = {}  # name -> [IPv4 address]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                query, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(query) < 12:
                continue
            labels, at = [], 12
            while at < len(query) and query[at] != 0:
                labels.append(query[at + 1:at + 1 + query[at]].decode("ascii", "replace"))
                at += 1 + query[at]
            question = query[12:at + 5]
            qtype = int.from_bytes(query[at + 1:at + 3], "big")
            addresses = self.records.get(".".join(labels).lower())
            answers = b""
            if addresses and qtype == 1:
                for address in addresses:
                    answers += (b"\xc0\x0c" + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") +
                                (1).to_bytes(4, "big") + (4).to_bytes(2, "big") +
                                socket.inet_aton(address))
            flags = 0x8180 if addresses is not None else 0x8183  # NOERROR / NXDOMAIN
            count = len(addresses) if addresses and qtype == 1 else 0
            header = (query[:2] + flags.to_bytes(2, "big") + (1).to_bytes(2, "big") +
                      count.to_bytes(2, "big") + bytes(4))
            self.sock.sendto(header + question + answers, peer)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def kubernetes_site_file(name):
    """A site file as deploy/kubernetes/base/balancer.yaml's ConfigMap holds it."""
    with open(os.path.join(BALANCER_DIR, "..", "kubernetes", "base", "balancer.yaml")) as f:
        text = f.read()
    block = text.split(f"  {name}: |\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip("\n") + "\n"


class KubernetesRoutingTest(unittest.TestCase):
    """The Kubernetes balancer config (its ConfigMap's replicas.conf, names resolved per request)
    against a stand-in for the cluster's DNS: StatefulSet pods airlock-0 and airlock-1 on their
    own loopback addresses, one port as in the pods. A pod that is gone is a name that does not
    resolve: its sessions answer session_lost."""

    DOMAIN = "test-ns.svc.cluster.local"

    def setUp(self):
        self.dns = ClusterDns()
        self.addCleanup(self.dns.close)
        with socket.socket() as probe:  # one port for every pod, as in the cluster
            probe.bind(("127.0.0.11", 0))
            port = probe.getsockname()[1]
        self.pods = {}
        for n in range(2):
            address = f"127.0.0.{11 + n}"
            name = f"airlock-{n}"
            self.pods[name] = s.Server(AIRLOCK, s.base_config(
                replica=name, listen=f"{address}:{port}", max_sessions=32, max_sessions_per_key=32))
            self.addCleanup(self.pods[name].close)
            self.dns.records[f"{name}.airlock-replicas.{self.DOMAIN}"] = [address]
        self.dns.records[f"airlock-ready.{self.DOMAIN}"] = ["127.0.0.11", "127.0.0.12"]
        site = (f"resolver 127.0.0.1:{self.dns.port} valid=1s ipv6=off;\n"
                f'map "" $airlock_service_domain {{ default "{self.DOMAIN}"; }}\n')
        replicas = kubernetes_site_file("replicas.conf").replace(":8080;", f":{port};")
        self.assertNotEqual(replicas, kubernetes_site_file("replicas.conf"))
        self.balancer = Balancer(replicas, {"site.conf": site})
        self.addCleanup(self.balancer.close)

    def test_sessions_reach_their_pod_by_name_and_a_gone_pods_sessions_are_lost(self):
        b = self.balancer
        ids = []
        for n in range(12):
            status, body = b.request("POST", "/v1/sessions", {"runtime": "python"})
            self.assertEqual(status, 201, body)
            ids.append(body["id"])
            status, body = b.request("POST", f"/v1/sessions/{ids[-1]}/executions", {"code": f"n = {n}"})
            self.assertEqual(status, 200, body)
        placed = {replica_of(sid) for sid in ids}
        self.assertEqual(placed, {"airlock-0", "airlock-1"}, ids)
        for n, sid in enumerate(ids):
            status, body = b.request("POST", f"/v1/sessions/{sid}/executions", {"code": "print(n)"})
            self.assertEqual((status, body.get("stdout")), (200, f"{n}\n"), body)

        # airlock-0 stops; its pod's name no longer resolves, the Service has one address left.
        gone = self.pods["airlock-0"]
        gone.terminate(signal.SIGTERM)
        self.assertEqual(gone.wait(), 0)
        del self.dns.records[f"airlock-0.airlock-replicas.{self.DOMAIN}"]
        self.dns.records[f"airlock-ready.{self.DOMAIN}"] = ["127.0.0.12"]
        time.sleep(1.5)  # past the resolver's valid=1s: nginx asks again
        for n, sid in enumerate(ids):
            status, body = b.request("POST", f"/v1/sessions/{sid}/executions", {"code": "print(n)"})
            if replica_of(sid) == "airlock-0":
                self.assertEqual((status, body["error"]["code"]), (410, "session_lost"), body)
            else:
                self.assertEqual((status, body.get("stdout")), (200, f"{n}\n"), body)
        status, body = b.request("POST", "/v1/sessions", {"runtime": "python"})
        self.assertEqual((status, replica_of(body["id"])), (201, "airlock-1"), body)
        # A name that is not a pod of the StatefulSet is never looked up.
        status, body = b.request("GET", "/v1/sessions/se_elsewhere_" + "0" * 24)
        self.assertEqual((status, body["error"]["code"]), (410, "session_lost"), body)


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    BALANCER_DIR = sys.argv.pop(1)
    unittest.main(verbosity=2)
