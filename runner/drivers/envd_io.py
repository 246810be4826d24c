"""Plumbing shared by the envd agent's parts (envd_server.py and its helpers): the fd-3 channel,
request field checks, the selector loop with timers, and non-blocking pipe I/O."""

import json
import os
import re
import selectors
import sys
import time

CONTROL_FD = 3
MAX_LINE_BYTES = 8 << 20
OUTPUT_CHUNK_BYTES = 64 << 10
MAX_STDIN_QUEUE_BYTES = 64 << 20
DRAIN_CHUNKS = 32  # at most 2 MiB read from one pipe in one go: a chatty grandchild can't stall us


class OpError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def log(message):
    sys.stderr.write("envd_agent: %s\n" % message)
    sys.stderr.flush()


def _exit_now():
    os._exit(0)


# What to do when the service has closed fd 3: the agent sets this to kill its children first.
on_channel_lost = _exit_now


def send(line):
    """Writes one whole line to fd 3, blocking if the service is behind; exits if it is gone."""
    view = memoryview(line.encode() + b"\n")
    try:
        while view:
            view = view[os.write(CONTROL_FD, view):]
    except BrokenPipeError:
        on_channel_lost()


# A file name that is not UTF-8 comes to Python with its bad bytes as lone surrogates
# (U+DC80..U+DCFF), which json.dumps escapes as such; the service's JSON parser (and E2B's
# protocol, whose strings are UTF-8) refuse them, and with them the whole reply. Each lone
# surrogate becomes U+FFFD instead. Escapes are matched from the left, so an escaped backslash
# is never mistaken for the start of one, and a pair (a character beyond the BMP) is kept.
_ESCAPE = re.compile(r"\\(?:ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|(ud[89a-f][0-9a-f]{2})|.)")


def _no_lone_surrogate(match):
    return "\\ufffd" if match.group(1) else match.group(0)


def dumps(value):
    text = json.dumps(value, separators=(",", ":"))
    return _ESCAPE.sub(_no_lone_surrogate, text) if "\\ud" in text else text


def event(key, body):
    send("E %s %s" % (key, dumps(body)))


def now_us():
    return time.time_ns() // 1000


def arg(request, name, kind, default=...):
    """request[name] checked to be a kind (or None); default when absent, else required."""
    value = request.get(name, default)
    if value is ...:
        raise OpError("invalid_argument", "missing field %r" % name)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)  # the service's JSON (a protobuf Struct) may print 7 as 7.0
    if value is not None and not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise OpError("invalid_argument", "field %r has the wrong type" % name)
    return value


def string_map(value, name):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise OpError("invalid_argument", "%r must map strings to strings" % name)
    return value


def drain(fd, chunks=DRAIN_CHUNKS):
    """Reads what fd has now: (list of chunks, reached_eof)."""
    out = []
    for _ in range(chunks):
        try:
            data = os.read(fd, OUTPUT_CHUNK_BYTES)
        except BlockingIOError:
            return out, False
        except OSError:
            return out, True
        if not data:
            return out, True
        out.append(data)
    return out, False


class Loop:
    """The selector plus timers; callbacks get the event mask."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.timers = []

    def watch(self, fd, events, callback):
        self.selector.register(fd, events, callback)

    def unwatch(self, fd):
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    def call_at(self, deadline, callback):
        self.timers.append((deadline, callback))

    def run_once(self):
        timeout = None
        if self.timers:
            timeout = max(0.0, min(t for t, _ in self.timers) - time.monotonic())
        for key, mask in self.selector.select(timeout):
            if key.fd in self.selector.get_map():  # an earlier callback may have dropped it
                key.data(mask)
        if self.timers:
            now = time.monotonic()
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
            for _, callback in due:
                callback()


class Writer:
    """A non-blocking queue of bytes into a child's stdin."""

    def __init__(self, loop, file):
        self.loop, self.file, self.fd = loop, file, file.fileno()
        os.set_blocking(self.fd, False)
        self.queue = bytearray()
        self.closing = self.watching = self.closed = False

    def write(self, data):
        if self.closed or self.closing:
            raise OpError("failed_precondition", "stdin is closed")
        if len(self.queue) + len(data) > MAX_STDIN_QUEUE_BYTES:
            raise OpError("resource_exhausted", "the process is not reading its stdin")
        self.queue += data
        self.flush()

    def close(self):
        self.closing = True
        self.flush()

    def flush(self, mask=0):
        while self.queue and not self.closed:
            try:
                del self.queue[:os.write(self.fd, self.queue[:OUTPUT_CHUNK_BYTES])]
            except BlockingIOError:
                break
            except OSError:  # the reader is gone: what is queued can never be delivered
                self.queue.clear()
                self.closing = True
        if self.queue and not self.watching:
            self.loop.watch(self.fd, selectors.EVENT_WRITE, self.flush)
            self.watching = True
        elif not self.queue and self.watching:
            self.loop.unwatch(self.fd)
            self.watching = False
        if self.closing and not self.queue and not self.closed:
            self.closed = True
            self.file.close()


def from_pipes(loop, popen, on_data, on_eof):
    """Watches popen's stdout and stderr; on_data(stream, bytes), on_eof(stream)."""
    streams = {}
    for name, file in (("stdout", popen.stdout), ("stderr", popen.stderr)):
        os.set_blocking(file.fileno(), False)
        streams[name] = file

        def readable(mask, name=name, file=file):
            chunks, eof = drain(file.fileno(), 1)
            for chunk in chunks:
                on_data(name, chunk)
            if eof:
                on_eof(name)
        loop.watch(file.fileno(), selectors.EVENT_READ, readable)
    return streams
