"""The body of airlock's in-sandbox agent for E2B-compatible workspaces (envd_agent.py is its
entry): runs processes, file operations and code-interpreter contexts for the requests it reads on
stdin and answers on fd 3 (the protocol is "The agent protocol" in plan-15.md, mirrored in
runner/workspaces.cc and api/e2b/).

One thread, one selector loop over stdin, every child's pipes, an inotify fd and a SIGCHLD wakeup
pipe; the only call allowed to block is the write to fd 3 (back-pressure from the service).

End of a process: its "end" event is sent once it is reaped and both its output pipes reached EOF,
or EXIT_GRACE_SECONDS after it was reaped if a background grandchild still holds a pipe open (its
output after that is dropped). So `cmd &` in a command returns as it does under E2B's envd, and
everything the process itself wrote before exiting is still delivered.

AIRLOCK_AGENT_HOME replaces /home/user (tests run the agent on the host); AIRLOCK_ENVS (a JSON
object) holds the workspace's environment for every process and kernel.
"""

import base64
import codecs
import errno
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time

import envd_kernel

HOME = envd_kernel.agent_home()
CONTROL_FD = 3
MAX_LINE_BYTES = 8 << 20
OUTPUT_CHUNK_BYTES = 64 << 10
MAX_READ_BYTES = 1 << 20
MAX_STDIN_QUEUE_BYTES = 64 << 20
MAX_PROCESSES = 256
MAX_CONTEXTS = 32
MAX_GROUPS = 4096
MAX_LIST_ENTRIES = 10000
EXIT_GRACE_SECONDS = 0.1
DRAIN_CHUNKS = 32  # at most 2 MiB read from one pipe in one go: a chatty grandchild can't stall us
SIGNAL_STATUS = {1: "hangup", 2: "interrupt", 3: "quit", 6: "aborted", 9: "killed",
                 11: "segmentation fault", 13: "broken pipe", 15: "terminated"}
ERRNO_CODES = {errno.ENOENT: "not_found", errno.EEXIST: "already_exists",
               errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
               errno.ENOSPC: "resource_exhausted", errno.EDQUOT: "resource_exhausted",
               errno.ENOTDIR: "invalid_argument", errno.EISDIR: "invalid_argument",
               errno.EINVAL: "invalid_argument", errno.ENAMETOOLONG: "invalid_argument",
               errno.ELOOP: "invalid_argument", errno.ENOTEMPTY: "failed_precondition",
               errno.EXDEV: "failed_precondition", errno.ENXIO: "invalid_argument"}


class OpError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def log(message):
    sys.stderr.write("envd_agent: %s\n" % message)
    sys.stderr.flush()


def send(line):
    """Writes one whole line to fd 3, blocking if the service is behind; exits if it is gone."""
    view = memoryview(line.encode() + b"\n")
    try:
        while view:
            view = view[os.write(CONTROL_FD, view):]
    except BrokenPipeError:
        os._exit(0)


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


def event(key, body):
    send("E %s %s" % (key, dumps(body)))


def now_us():
    return time.time_ns() // 1000


def arg(request, name, kind, default=...):
    value = request.get(name, default)
    if value is ...:
        raise OpError("invalid_argument", "missing field %r" % name)
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


def base_env():
    """A process's environment before its request's envs: the base plus the workspace's."""
    env = envd_kernel.base_environment(HOME)
    try:
        env.update(string_map(json.loads(os.environ.get("AIRLOCK_ENVS") or "{}"), "AIRLOCK_ENVS"))
    except (ValueError, OpError) as e:
        log("AIRLOCK_ENVS ignored: %s" % e)
    return env


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


def group_alive(group):
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except OSError:
        return True


def exit_fields(status):
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return {"exit_code": code, "exited": True, "signal": None,
                "status": "exit status %d" % code, "error": None}
    name = SIGNAL_STATUS.get(-code) or (signal.strsignal(-code) or "signal %d" % -code).lower()
    return {"exit_code": -1, "exited": False, "signal": -code, "status": "signal: " + name,
            "error": None}


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


class Process:
    """A started command: streams its output under p:<pid>, ends once reaped and drained."""

    def __init__(self, agent, popen, info):
        self.agent, self.popen, self.pid, self.info = agent, popen, popen.pid, info
        self.key = "p:%d" % popen.pid
        self.stdin = Writer(agent.loop, popen.stdin) if popen.stdin else None
        self.status = None
        self.ended = False
        self.streams = from_pipes(agent.loop, popen, self.on_data, self.on_eof)

    def on_data(self, stream, data):
        event(self.key, {"type": "data", "stream": stream,
                         "data": base64.b64encode(data).decode()})

    def on_eof(self, stream):
        self.agent.loop.unwatch(self.streams[stream].fileno())
        self.streams.pop(stream).close()
        if self.status is not None and not self.streams:
            self.end()

    def on_exit(self, status):
        self.status = status
        self.popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        self.drain()
        if self.streams:
            self.agent.loop.call_at(time.monotonic() + EXIT_GRACE_SECONDS, self.end)
        else:
            self.end()

    def drain(self):
        for stream, file in list(self.streams.items()):
            chunks, eof = drain(file.fileno())
            for chunk in chunks:
                self.on_data(stream, chunk)
            if eof and stream in self.streams:
                self.on_eof(stream)

    def end(self):
        if self.ended:
            return
        self.ended = True
        self.drain()
        for file in self.streams.values():  # held open by a grandchild: the rest is dropped
            self.agent.loop.unwatch(file.fileno())
            file.close()
        self.streams = {}
        if self.stdin and not self.stdin.closed:
            self.stdin.queue.clear()
            self.stdin.close()
        self.agent.processes.pop(self.pid, None)
        event(self.key, dict({"type": "end"}, **exit_fields(self.status)))


class Run:
    def __init__(self, run_id, code, envs):
        self.run_id, self.code, self.envs = run_id, code, envs
        self.key = "r:" + run_id

    def emit(self, body):
        event(self.key, body)

    def end(self, count):
        self.emit({"type": "number_of_executions", "execution_count": count})
        self.emit({"type": "end_of_execution"})


class SpawnedKernel:
    """The parts of a Popen that the pipes' plumbing uses, for a kernel from posix_spawn."""

    def __init__(self, pid, stdin, stdout, stderr, control):
        self.pid, self.returncode = pid, None
        self.stdin = os.fdopen(stdin, "wb", buffering=0)
        self.stdout = os.fdopen(stdout, "rb", buffering=0)
        self.stderr = os.fdopen(stderr, "rb", buffering=0)


class Kernel:
    """One python kernel process (envd_kernel.py); reports its lines and its death to context."""

    def __init__(self, agent, context, spawned=None):
        self.agent, self.context = agent, context
        self.dead = False
        spawned = spawned or envd_kernel.spawn(context.cwd, HOME)
        self.popen = SpawnedKernel(*spawned)
        control_read = spawned[4]
        self.pid = self.popen.pid
        self.stdin = Writer(agent.loop, self.popen.stdin)
        self.decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                         for s in ("stdout", "stderr")}
        self.streams = from_pipes(agent.loop, self.popen, self.on_data, self.on_eof)
        self.control = control_read
        self.pending = bytearray()
        os.set_blocking(control_read, False)
        agent.loop.watch(control_read, selectors.EVENT_READ, self.on_control)
        agent.children[self.pid] = self

    def send(self, request):
        self.stdin.write(dumps(request).encode() + b"\n")

    def on_data(self, stream, data):
        text = self.decoders[stream].decode(data)
        run = self.context.current
        if text and run is not None:
            run.emit({"type": stream, "text": text, "timestamp": now_us()})

    def on_eof(self, stream):
        self.agent.loop.unwatch(self.streams[stream].fileno())
        self.streams.pop(stream).close()

    def drain_output(self):
        for stream, file in list(self.streams.items()):
            chunks, eof = drain(file.fileno())
            for chunk in chunks:
                self.on_data(stream, chunk)
            if eof:
                self.on_eof(stream)

    def on_control(self, mask):
        chunks, eof = drain(self.control)
        for chunk in chunks:
            self.pending += chunk
        *lines, rest = self.pending.split(b"\n")
        self.pending = bytearray(rest)
        if len(self.pending) > MAX_LINE_BYTES:
            log("kernel %d: line too long" % self.pid)
            eof = True
        for line in lines:
            self.drain_output()  # the code's output written before this line comes first
            try:
                message = json.loads(line)
            except ValueError:
                log("kernel %d: bad line" % self.pid)
                continue
            self.context.on_kernel_message(self, message)
        if eof:
            self.die()

    def on_exit(self, status):
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.die()

    def die(self, reason=None):
        """The kernel is gone (or is to be): close everything, tell the context once."""
        if self.dead:
            return
        self.dead = True
        self.drain_output()
        if self.popen.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
        for file in self.streams.values():
            self.agent.loop.unwatch(file.fileno())
            file.close()
        self.streams = {}
        self.agent.loop.unwatch(self.control)
        os.close(self.control)
        self.stdin.queue.clear()
        self.stdin.close()
        self.context.on_kernel_death(self, reason)


class Context:
    """A code-interpreter context: a kernel, its queue of runs, its execution count."""

    def __init__(self, agent, context_id, cwd):
        self.agent, self.id, self.cwd = agent, context_id, cwd
        self.kernel = None
        self.queue = []
        self.current = None
        self.count = 0
        self.removed = False

    def describe(self):
        return {"id": self.id, "language": "python", "cwd": self.cwd}

    def start_kernel(self, spawned=None):
        if self.kernel is None:
            self.kernel = Kernel(self.agent, self, spawned)
            self.count = 0

    def submit(self, run):
        self.queue.append(run)
        self.next()

    def next(self):
        if self.current is not None or not self.queue or self.removed:
            return
        try:
            self.start_kernel()
        except Exception as e:  # e.g. out of processes: fail what waits, try again next time
            log("kernel for %s: %r" % (self.id, e))
            for run in self.queue:
                run.emit({"type": "error", "name": "KernelStartFailed", "value": str(e),
                          "traceback": ""})
                run.end(self.count)
            self.queue = []
            return
        self.current = self.queue.pop(0)
        self.count += 1
        self.kernel.send({"code": self.current.code, "envs": self.current.envs})

    def on_kernel_message(self, kernel, message):
        run = self.current
        if kernel is not self.kernel or run is None:
            return
        if message.get("type") == "done":
            self.current = None
            run.end(self.count)
            self.next()
        elif message.get("type") in ("result", "error"):
            run.emit(message)

    def on_kernel_death(self, kernel, reason=None):
        if kernel is not self.kernel:
            return
        reason = reason or "the kernel died; its state is lost and it restarts on the next run"
        self.kernel = None
        run, self.current = self.current, None
        if run is not None:
            run.emit({"type": "error", "name": "KernelDied", "value": reason, "traceback": ""})
            run.end(self.count)
        if self.removed:
            for queued in self.queue:
                queued.emit({"type": "error", "name": "ContextRemoved",
                             "value": "the context was removed", "traceback": ""})
                queued.end(0)
            self.queue = []
        self.next()

    def interrupt(self, run_id):
        if self.current is not None and self.current.run_id == run_id and self.kernel:
            os.kill(self.kernel.pid, signal.SIGINT)
            return True
        for queued in self.queue:
            if queued.run_id == run_id:
                self.queue.remove(queued)
                queued.emit({"type": "error", "name": "KeyboardInterrupt", "value": "",
                             "traceback": "KeyboardInterrupt: interrupted before it ran\n"})
                queued.end(self.count)
                return True
        return False

    def stop(self, reason):
        """Kills the kernel; a run in progress ends with an error saying reason."""
        if self.kernel is not None:
            self.kernel.die(reason)
        elif self.removed:
            self.on_kernel_death(None, reason)


# --- Filesystem ---------------------------------------------------------------------------------

_names = {}


def owner_name(uid, lookup):
    """The SDK's user is "user"; other ids by name where the sandbox's files know them."""
    if uid == os.getuid():
        return "user"
    if (lookup, uid) not in _names:
        try:
            import grp
            import pwd
            getter = pwd.getpwuid if lookup == "pwd" else grp.getgrgid
            _names[lookup, uid] = getter(uid)[0]
        except (KeyError, ImportError):
            _names[lookup, uid] = str(uid)
    return _names[lookup, uid]


def resolve(path):
    if not isinstance(path, str) or not path or "\0" in path:
        raise OpError("invalid_argument", "path must be a non-empty string")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    return os.path.normpath(os.path.join(HOME, path))


def kind_of(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def entry(path, st=None):
    st = st or os.lstat(path)
    kind, target = kind_of(st.st_mode), None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        try:
            kind = kind_of(os.stat(path).st_mode)
        except OSError:
            pass  # dangling: stays "symlink"
    return {"name": os.path.basename(path) or path, "type": kind, "path": path,
            "size": st.st_size, "mode": stat.S_IMODE(st.st_mode),
            "permissions": stat.filemode(st.st_mode)[1:], "owner": owner_name(st.st_uid, "pwd"),
            "group": owner_name(st.st_gid, "grp"), "modified_time": st.st_mtime,
            "symlink_target": target}


def fs_list(path, depth):
    if not os.path.isdir(path):
        os.lstat(path)  # not_found when missing
        raise OpError("invalid_argument", "not a directory: " + path)
    entries = []
    level = [path]
    for _ in range(depth):
        below = []
        for directory in level:
            with os.scandir(directory) as it:
                for item in sorted(it, key=lambda e: e.name):
                    if len(entries) >= MAX_LIST_ENTRIES:
                        raise OpError("resource_exhausted",
                                      "more than %d entries" % MAX_LIST_ENTRIES)
                    entries.append(entry(item.path, item.stat(follow_symlinks=False)))
                    if item.is_dir(follow_symlinks=False):
                        below.append(item.path)
        level = below
    return entries


def open_regular(path, flags):
    """Opens path only if it is a regular file; O_NONBLOCK so a FIFO can never block us."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OpError("invalid_argument", "not a regular file: " + path)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in between
        os.close(fd)
        raise OpError("invalid_argument", "not a regular file: " + path)
    return fd


def fs_read(path, offset, length):
    if os.path.isdir(path):
        raise OpError("invalid_argument", "a directory: " + path)
    fd = open_regular(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(length, MAX_READ_BYTES), offset)
    finally:
        os.close(fd)
    return {"data": base64.b64encode(data).decode(), "size": size,
            "eof": offset + len(data) >= size}


def fs_write(path, data, truncate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = open_regular(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return entry(path)


def fs_remove(path):
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        import shutil
        shutil.rmtree(path)
    else:
        os.unlink(path)


def fs_move(source, destination):
    os.lstat(source)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        os.rename(source, destination)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        import shutil
        shutil.move(source, destination)
    return entry(destination)


class Watcher:
    """inotify through ctypes: watch ids over watch descriptors, recursive by walking."""
    MASKS = ((0x100 | 0x80, "create"), (0x2, "write"), (0x200 | 0x400, "remove"),
             (0x40 | 0x800, "rename"), (0x4, "chmod"))  # IN_CREATE|IN_MOVED_TO, IN_MODIFY, ...
    WATCH_MASK = 0x100 | 0x80 | 0x2 | 0x200 | 0x40 | 0x4
    IN_ISDIR, IN_IGNORED, IN_Q_OVERFLOW = 0x40000000, 0x8000, 0x4000

    def __init__(self, loop):
        import ctypes
        import struct
        self.struct = struct
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.ctypes = ctypes
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OpError("unimplemented", "inotify: " + os.strerror(ctypes.get_errno()))
        self.loop = loop
        self.by_wd = {}  # wd -> {watch_id: relative dir}
        self.watches = {}  # watch_id -> (root, recursive, set of wd)
        self.next_id = 0
        loop.watch(self.fd, selectors.EVENT_READ, self.on_events)

    def add_dir(self, watch_id, directory):
        root, recursive, wds = self.watches[watch_id]
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(directory), self.WATCH_MASK)
        if wd < 0:
            raise OSError(self.ctypes.get_errno(), os.strerror(self.ctypes.get_errno()),
                          directory)
        wds.add(wd)
        relative = os.path.relpath(directory, root)
        self.by_wd.setdefault(wd, {})[watch_id] = "" if relative == "." else relative

    def add_tree(self, watch_id, top):
        self.add_dir(watch_id, top)
        if self.watches[watch_id][1]:
            for directory, subdirs, _ in os.walk(top):
                for name in subdirs:
                    try:
                        self.add_dir(watch_id, os.path.join(directory, name))
                    except OSError:
                        pass  # gone already

    def start(self, path, recursive):
        if not os.path.isdir(path):
            os.lstat(path)
            raise OpError("invalid_argument", "not a directory: " + path)
        self.next_id += 1
        watch_id = "w%d" % self.next_id
        self.watches[watch_id] = (path, recursive, set())
        try:
            self.add_tree(watch_id, path)
        except BaseException:
            self.stop(watch_id)
            raise
        return watch_id

    def stop(self, watch_id):
        _, _, wds = self.watches.pop(watch_id)
        for wd in wds:
            users = self.by_wd.get(wd, {})
            users.pop(watch_id, None)
            if not users:
                self.by_wd.pop(wd, None)
                self.libc.inotify_rm_watch(self.fd, wd)

    def on_events(self, mask):
        buffer = b"".join(drain(self.fd)[0])
        offset = 0
        while offset + 16 <= len(buffer):
            wd, bits, _, size = self.struct.unpack_from("iIII", buffer, offset)
            name = buffer[offset + 16:offset + 16 + size].rstrip(b"\0").decode(errors="replace")
            offset += 16 + size
            if bits & self.IN_IGNORED:
                for watch_id in self.by_wd.pop(wd, {}):
                    self.watches[watch_id][2].discard(wd)
                continue
            for watch_id, relative in list(self.by_wd.get(wd, {}).items()):
                path = os.path.join(relative, name) if relative else name
                for flags, kind in self.MASKS:
                    if bits & flags and name:
                        event("w:" + watch_id, {"type": kind, "name": path})
                root, recursive, _ = self.watches[watch_id]
                if recursive and bits & self.IN_ISDIR and bits & (0x100 | 0x80):
                    try:
                        self.add_tree(watch_id, os.path.join(root, path))
                    except OSError:
                        pass


# --- The agent ----------------------------------------------------------------------------------

class Agent:
    def __init__(self):
        self.loop = Loop()
        self.processes = {}  # pid -> Process, until its end event
        self.groups = set()  # every process group started: killed at the end, with what stayed
        self.children = {}  # pid -> Process or Kernel, until reaped
        self.contexts = {}
        self.watcher = None
        self.next_context = 0
        self.pending = bytearray()
        self.skipping = None  # the id (or "") of an over-long line being skipped
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
        signal.set_wakeup_fd(wake_write)
        self.wake = wake_read
        self.loop.watch(wake_read, selectors.EVENT_READ, self.reap)
        os.set_blocking(0, False)
        self.loop.watch(0, selectors.EVENT_READ, self.on_stdin)
        self.ops = {
            "process.start": self.process_start, "process.input": self.process_input,
            "process.close_stdin": self.process_close_stdin,
            "process.signal": self.process_signal, "process.list": self.process_list,
            "process.find": self.process_find,
            "fs.stat": lambda r: entry(resolve(arg(r, "path", str))),
            "fs.list": self.fs_list, "fs.mkdir": self.fs_mkdir,
            "fs.move": lambda r: fs_move(resolve(arg(r, "source", str)),
                                         resolve(arg(r, "destination", str))),
            "fs.remove": lambda r: fs_remove(resolve(arg(r, "path", str))),
            "fs.read": self.fs_read, "fs.write": self.fs_write,
            "fs.watch_start": self.watch_start, "fs.watch_stop": self.watch_stop,
            "ctx.create": self.ctx_create, "ctx.list": self.ctx_list,
            "ctx.remove": self.ctx_remove, "ctx.restart": self.ctx_restart,
            "code.run": self.code_run, "code.interrupt": self.code_interrupt,
        }

    def serve(self, default_kernel):
        """default_kernel: envd_kernel.spawn's result for the default context, or None."""
        self.contexts["default"] = Context(self, "default", HOME)
        if default_kernel is not None:
            self.contexts["default"].start_kernel(default_kernel)
            self.reap(0)  # it may have died before SIGCHLD had a handler
        event("ready", {})
        while True:
            self.loop.run_once()

    def shutdown(self):
        for group in self.groups | set(self.children):
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
        sys.exit(0)

    def reap(self, mask):
        drain(self.wake)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)  # None: an orphan we adopted as pid 1
            if child is not None:
                child.on_exit(status)

    # Requests --------------------------------------------------------------------------------

    def on_stdin(self, mask):
        chunks, eof = drain(0, 4)
        for chunk in chunks:
            self.pending += chunk
            while True:
                newline = self.pending.find(b"\n")
                if newline < 0:
                    break
                line = bytes(self.pending[:newline])
                del self.pending[:newline + 1]
                if self.skipping is not None:
                    self.reject_long(self.skipping)
                    self.skipping = None
                elif len(line) > MAX_LINE_BYTES:
                    head = line[:24].split(b" ", 1)[0]
                    self.reject_long(head.decode() if head.isdigit() else "")
                else:
                    self.handle_line(line)
            if len(self.pending) > MAX_LINE_BYTES and self.skipping is None:
                head = bytes(self.pending[:24]).split(b" ", 1)[0]
                self.skipping = head.decode() if head.isdigit() else ""
                self.pending.clear()
            elif self.skipping is not None:
                self.pending.clear()
        if eof:
            self.shutdown()

    def reject_long(self, request_id):
        if request_id:
            self.reply_error(request_id, "invalid_argument",
                             "a request line exceeds %d bytes" % MAX_LINE_BYTES)
        else:
            log("skipped an over-long line without an id")

    def reply(self, request_id, body):
        line = "R %s %s" % (request_id, dumps(dict({"ok": True}, **(body or {}))))
        if len(line) >= MAX_LINE_BYTES:  # the service would drop it and the caller never hear
            return self.reply_error(request_id, "resource_exhausted",
                                    "the reply exceeds %d bytes" % MAX_LINE_BYTES)
        send(line)

    def reply_error(self, request_id, code, message):
        send("R %s %s" % (request_id, dumps({"ok": False, "error": {"code": code,
                                                                      "message": message}})))

    def handle_line(self, line):
        head, _, rest = line.partition(b" ")
        if not head.isdigit() or len(head) > 20:
            log("ignored a line without an id: %r" % line[:80])
            return
        request_id = head.decode()
        try:
            request = json.loads(rest)
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise ValueError("a request is an object with a string op")
        except ValueError as e:
            return self.reply_error(request_id, "invalid_argument", "malformed request: %s" % e)
        handler = self.ops.get(request["op"])
        if handler is None:
            return self.reply_error(request_id, "unimplemented", "unknown op " + request["op"])
        try:
            result = handler(request)
        except OpError as e:
            return self.reply_error(request_id, e.code, str(e))
        except OSError as e:
            return self.reply_error(request_id, ERRNO_CODES.get(e.errno, "internal"), str(e))
        except Exception as e:
            log("op %s failed: %r" % (request["op"], e))
            return self.reply_error(request_id, "internal", "%s: %s" % (type(e).__name__, e))
        if isinstance(result, tuple):  # (reply, then what to do after it is sent)
            result, after = result
            self.reply(request_id, result)
            after()
        else:
            self.reply(request_id, result)

    # Processes -------------------------------------------------------------------------------

    def running(self, request):
        process = self.processes.get(arg(request, "pid", int))
        if process is None or process.status is not None:
            raise OpError("not_found", "no running process %s" % request["pid"])
        return process

    def process_start(self, request):
        if len(self.processes) >= MAX_PROCESSES:
            raise OpError("resource_exhausted", "at most %d processes" % MAX_PROCESSES)
        cmd = arg(request, "cmd", str)
        args = arg(request, "args", list, [])
        if not cmd or not all(isinstance(a, str) for a in args or []):
            raise OpError("invalid_argument", "cmd and args must be strings")
        cwd = resolve(arg(request, "cwd", str, None) or HOME)
        if not os.path.isdir(cwd):
            raise OpError("invalid_argument", "cwd is not a directory: " + cwd)
        envs = dict(base_env(), **string_map(request.get("envs"), "envs"))
        with_stdin = arg(request, "stdin", bool, True) is not False
        try:
            popen = subprocess.Popen(
                [cmd] + (args or []), stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=envs,
                start_new_session=True, close_fds=True, bufsize=0)
        except FileNotFoundError as e:
            raise OpError("not_found", "%s: %s" % (cmd, e.strerror))
        except PermissionError as e:
            raise OpError("permission_denied", "%s: %s" % (cmd, e.strerror))
        except OSError as e:
            raise OpError("invalid_argument", "%s: %s" % (cmd, e.strerror))
        info = {"pid": popen.pid, "cmd": cmd, "args": args or [],
                "envs": string_map(request.get("envs"), "envs"), "cwd": cwd,
                "tag": arg(request, "tag", str, None)}
        process = Process(self, popen, info)
        self.processes[popen.pid] = self.children[popen.pid] = process
        if len(self.groups) >= MAX_GROUPS:  # forget the groups that are gone
            self.groups = {g for g in self.groups if group_alive(g)}
        self.groups.add(popen.pid)
        return {"pid": popen.pid}

    def process_input(self, request):
        process = self.running(request)
        if process.stdin is None:
            raise OpError("failed_precondition", "the process was started without stdin")
        try:
            data = base64.b64decode(arg(request, "data", str))
        except ValueError:
            raise OpError("invalid_argument", "data is not base64")
        process.stdin.write(data)

    def process_close_stdin(self, request):
        process = self.running(request)
        if process.stdin is not None:
            process.stdin.close()

    def process_signal(self, request):
        process = self.running(request)
        number = arg(request, "signal", int)
        if number not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            raise OpError("invalid_argument", "unsupported signal %d" % number)
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:  # it left its group: the process itself then
            os.kill(process.pid, number)

    def process_list(self, request):
        return {"processes": [p.info for p in self.processes.values() if p.status is None]}

    def process_find(self, request):
        tag = arg(request, "tag", str)
        for process in self.processes.values():
            if process.info["tag"] == tag and process.status is None:
                return {"pid": process.pid}
        raise OpError("not_found", "no running process tagged %r" % tag)

    # Files -----------------------------------------------------------------------------------

    def fs_list(self, request):
        depth = arg(request, "depth", int, 1) or 1
        if depth < 1:
            raise OpError("invalid_argument", "depth must be at least 1")
        return {"entries": fs_list(resolve(arg(request, "path", str)), depth)}

    def fs_mkdir(self, request):
        path = resolve(arg(request, "path", str))
        os.makedirs(path)  # EEXIST: already_exists
        return entry(path)

    def fs_read(self, request):
        offset = arg(request, "offset", int, 0) or 0
        length = arg(request, "length", int, MAX_READ_BYTES)
        if offset < 0 or length is None or length < 0 or length > MAX_READ_BYTES:
            raise OpError("invalid_argument", "offset >= 0 and 0 <= length <= 1 MiB")
        return fs_read(resolve(arg(request, "path", str)), offset, length)

    def fs_write(self, request):
        try:
            data = base64.b64decode(arg(request, "data", str, ""))
        except ValueError:
            raise OpError("invalid_argument", "data is not base64")
        path = resolve(arg(request, "path", str))
        return fs_write(path, data, bool(arg(request, "truncate", bool, True)))

    def watch_start(self, request):
        if self.watcher is None:
            try:
                self.watcher = Watcher(self.loop)
            except (OSError, AttributeError) as e:
                raise OpError("unimplemented", "inotify is unavailable: %s" % e)
        path = resolve(arg(request, "path", str))
        return {"watch_id": self.watcher.start(path, bool(request.get("recursive")))}

    def watch_stop(self, request):
        watch_id = arg(request, "watch_id", str)
        if self.watcher is None or watch_id not in self.watcher.watches:
            raise OpError("not_found", "no watch %r" % watch_id)
        self.watcher.stop(watch_id)

    # Code contexts ---------------------------------------------------------------------------

    def context(self, request, name="context_id"):
        context_id = arg(request, name, str, None) or "default"
        if context_id not in self.contexts:
            if context_id != "default":
                raise OpError("not_found", "no context %r" % context_id)
            self.contexts["default"] = Context(self, "default", HOME)
        return self.contexts[context_id]

    def ctx_create(self, request):
        language = arg(request, "language", str, None) or "python"
        if language not in ("python", "python3"):
            raise OpError("invalid_argument", "unsupported language %r" % language)
        if len(self.contexts) >= MAX_CONTEXTS:
            raise OpError("resource_exhausted", "at most %d contexts" % MAX_CONTEXTS)
        cwd = resolve(arg(request, "cwd", str, None) or HOME)
        if not os.path.isdir(cwd):
            raise OpError("invalid_argument", "cwd is not a directory: " + cwd)
        self.next_context += 1
        context = Context(self, "ctx-%d" % self.next_context, cwd)
        context.start_kernel()
        self.contexts[context.id] = context
        return {"context": context.describe()}

    def ctx_list(self, request):
        return {"contexts": [c.describe() for c in self.contexts.values()]}

    def ctx_remove(self, request):
        context = self.context(request)
        del self.contexts[context.id]
        context.removed = True
        context.stop("the context was removed")

    def ctx_restart(self, request):
        context = self.context(request)
        context.stop("the context was restarted; its state is lost")
        context.start_kernel()

    def code_run(self, request):
        language = arg(request, "language", str, None)
        if language not in (None, "python", "python3"):
            raise OpError("invalid_argument", "unsupported language %r" % language)
        context = self.context(request)
        run = Run(arg(request, "run_id", str), arg(request, "code", str),
                  string_map(request.get("envs"), "envs"))
        return {}, lambda: context.submit(run)  # events only after the reply

    def code_interrupt(self, request):
        run_id = arg(request, "run_id", str)
        for context in self.contexts.values():
            if context.interrupt(run_id):
                break


def main(default_kernel):
    Agent().serve(default_kernel)
