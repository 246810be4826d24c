"""Helpers for the integration tests of `airlock serve`: start the real binary on a free port,
talk HTTP with the standard library, read server-sent events, and encode the few protobuf
messages the tests send without a protobuf library."""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

TEST_KEY = "test-key"  # may use policy "default" only
ADMIN_KEY = "admin-key"  # may use every policy
TEST_KEY_SHA256 = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef"
ADMIN_KEY_SHA256 = "69a5265506c94c77b787a7d7377b7685a0eff82e33920a71e7ee22cd6154953e"

# Generous bounds for waiting on the service; they are how long a test gives up after, never
# something a test asserts about.
STARTUP_LIMIT_S = 60
REQUEST_LIMIT_S = 60


def base_config(**overrides):
    settings = {
        "listen": "127.0.0.1:0",
        "max_concurrent": 2,
        "max_queued": 1,
        "max_body_size": "64KiB",
        "heartbeat_interval": "200ms",
        "shutdown_grace": "10s",
        # Cold unless a test asks: a warm pool's fork server imports the data stack at start.
        "warm_pool": [],
    }
    settings.update(overrides)
    lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
    lines += [
        "api_keys:",
        "  - name: test",
        f"    sha256: {TEST_KEY_SHA256}",
        "    policies: [default]",
        "  - name: admin",
        f"    sha256: {ADMIN_KEY_SHA256}",
        "    policies: ['*']",
    ]
    return "\n".join(lines) + "\n"


def parse_metrics(text):
    """The samples of a Prometheus text page (GET /metrics): {'name{labels}': value}. Comments
    and lines that are not `sample value` are skipped."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            pass
    return values


def metric_total(values, name):
    """The sum of one metric's samples, whatever their labels; None when it has none."""
    found = [value for sample, value in values.items() if sample.split("{")[0] == name]
    return sum(found) if found else None


class Server:
    """One `airlock serve` process; the bound port comes from its "listening" log line."""

    def __init__(self, airlock, config_text):
        self.dir = tempfile.TemporaryDirectory(prefix="airlock-serve-test-")
        # The sandboxed program runs as another user and must reach its working dir in here.
        os.chmod(self.dir.name, 0o755)
        state_dir = os.path.join(self.dir.name, "state")
        os.mkdir(state_dir)
        self.config_path = os.path.join(self.dir.name, "serve.yaml")
        with open(self.config_path, "w") as f:
            f.write(config_text + f"state_dir: {json.dumps(state_dir)}\n")
        self.airlock = airlock
        self.start()

    def start(self):
        """Starts the service (again, once the last process has ended: same config, same state
        dir, as a service manager restarts it)."""
        if getattr(self, "_reader", None) is not None:
            self._reader.join(5)  # the last process's log reader, which ends with its stderr
            self.process.stderr.close()
        self.logs = []
        self._port_known = threading.Event()
        self.port = None
        self.process = subprocess.Popen(
            [self.airlock, "serve", "--config", self.config_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        if not self._port_known.wait(STARTUP_LIMIT_S) or self.port is None:
            self.kill()
            raise RuntimeError("airlock serve did not start:\n" + "\n".join(self.logs))

    def _read_logs(self):
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.logs.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "listening":
                self.port = record["port"]
                self._port_known.set()
        self._port_known.set()  # the process ended; the constructor reports it

    def log_records(self):
        records = []
        for line in list(self.logs):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        return records

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_LIMIT_S)

    def request(self, method, path, body=None, key=TEST_KEY, headers=None, conn=None):
        """Returns (status, headers dict, body bytes)."""
        own = conn is None
        conn = conn or self.connect()
        all_headers = {"Accept": "application/json"}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        result = (response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        if own:
            conn.close()
        return result

    def json(self, method, path, body=None, key=TEST_KEY, expect=200):
        status, _, data = self.request(method, path, body, key)
        if status != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {status}: {data!r}")
        return json.loads(data)

    def metrics(self):
        """GET /metrics (it needs no key), parsed by parse_metrics."""
        status, _, body = Server.request(self, "GET", "/metrics", key=None)  # not a subclass's
        if status != 200:
            raise AssertionError(f"/metrics: {status}: {body[:200]!r}")
        return parse_metrics(body.decode())

    def stream(self, body, key=TEST_KEY):
        return EventStream(self, body, key)

    def terminate(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, limit=REQUEST_LIMIT_S):
        return self.process.wait(limit)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self):
        self.terminate()
        try:
            self.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(5)
        self.process.stderr.close()
        self.dir.cleanup()


class EventStream:
    """A POST /v1/executions with Accept: text/event-stream, read event by event."""

    def __init__(self, server, body, key):
        self.conn = server.connect()
        headers = {
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
        }
        self.conn.request("POST", "/v1/executions", body=json.dumps(body).encode(), headers=headers)
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.execution_id = self.response.getheader("X-Execution-Id")
        self.heartbeats = 0

    def next_event(self):
        """(name, id, data dict), or None at the end of the stream."""
        name = event_id = data = None
        while True:
            line = self.response.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if name is not None:
                    return name, int(event_id), json.loads(data)
                continue
            if line.startswith(":"):
                self.heartbeats += 1
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data = value

    def all_events(self):
        events = []
        while (event := self.next_event()) is not None:
            events.append(event)
        return events

    def close(self):
        self.conn.close()

    def disconnect(self):
        """Drops the TCP connection at once, as a client that crashed would."""
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def wait_until(condition, limit_s=REQUEST_LIMIT_S):
    """Polls condition; gives up after limit_s (a bound, never what a test asserts)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def wait_for_status(server, execution_id, wanted, key=TEST_KEY, limit=REQUEST_LIMIT_S):
    """Polls GET /v1/executions/{id} until its status is in `wanted`; returns the result."""
    deadline = time.monotonic() + limit
    while True:
        result = server.json("GET", f"/v1/executions/{execution_id}", key=key)
        if result["status"] in wanted or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


# --- protobuf wire format, just enough for ExecutionRequest and ExecutionResult -------------


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_string_fields(fields):
    """fields: [(field number, str)] -> bytes of length-delimited fields."""
    out = b""
    for number, text in fields:
        data = text.encode()
        out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return out


def decode_fields(data):
    """Top-level fields of a message: {number: [value, ...]}; strings stay bytes."""
    fields = {}
    i = 0

    def read_varint():
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = read_varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value = read_varint()
        elif wire_type == 2:
            length = read_varint()
            value = data[i : i + length]
            i += length
        elif wire_type == 1:
            value = data[i : i + 8]
            i += 8
        elif wire_type == 5:
            value = data[i : i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields
