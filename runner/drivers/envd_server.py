"""The body of airlock's in-sandbox agent for E2B-compatible workspaces (envd_agent.py is its
entry): runs processes, file operations and code-interpreter contexts for the requests it reads on
stdin and answers on fd 3 (the protocol: docs/workspace_agent.md).

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
import errno
import json
import os
import selectors
import signal
import subprocess
import time

import envd_io
import envd_kernel
from envd_contexts import Context, EnvUpdate, Run, default_context_id, language_of
from envd_files import MAX_READ_BYTES, Watcher, entry, fs_list, fs_move, fs_read, fs_remove, \
    fs_write, resolve
from envd_io import MAX_LINE_BYTES, Loop, OpError, Writer, arg, drain, dumps, event, \
    from_pipes, log, send, string_map

HOME = envd_kernel.agent_home()
MAX_PROCESSES = 256
MAX_CONTEXTS = 32
MAX_GROUPS = 4096
EXIT_GRACE_SECONDS = 0.1
SIGNAL_STATUS = {1: "hangup", 2: "interrupt", 3: "quit", 6: "aborted", 9: "killed",
                 11: "segmentation fault", 13: "broken pipe", 15: "terminated"}
ERRNO_CODES = {errno.ENOENT: "not_found", errno.EEXIST: "already_exists",
               errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
               errno.ENOSPC: "resource_exhausted", errno.EDQUOT: "resource_exhausted",
               errno.ENOTDIR: "invalid_argument", errno.EISDIR: "invalid_argument",
               errno.EINVAL: "invalid_argument", errno.ENAMETOOLONG: "invalid_argument",
               errno.ELOOP: "invalid_argument", errno.ENOTEMPTY: "failed_precondition",
               errno.EXDEV: "failed_precondition", errno.ENXIO: "invalid_argument",
               errno.EMFILE: "resource_exhausted", errno.ENFILE: "resource_exhausted"}


def base_env():
    """A process's environment before its request's envs: the base plus the workspace's."""
    env = envd_kernel.base_environment(HOME)
    try:
        env.update(string_map(json.loads(os.environ.get("AIRLOCK_ENVS") or "{}"), "AIRLOCK_ENVS"))
    except (ValueError, OpError) as e:
        log("AIRLOCK_ENVS ignored: %s" % e)
    return env


def request_id_of(line):
    """The id a request line starts with, or "" when it has none."""
    head = bytes(line[:24]).split(b" ", 1)[0]
    return head.decode() if head.isdigit() else ""


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


# --- The agent ----------------------------------------------------------------------------------

class Agent:
    def __init__(self):
        self.loop = Loop()
        self.processes = {}  # pid -> Process, until its end event
        self.groups = set()  # every process group started: killed at the end, with what stayed
        self.children = {}  # pid -> Process or Kernel, until reaped
        self.contexts = {}
        self.watcher = None
        envd_io.on_channel_lost = self.shutdown
        self.next_context = 0
        self.pending = bytearray()
        self.skipping = None  # the id (or "") of an over-long line being skipped
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)  # one byte is enough
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
            "env.set": self.env_set,
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
        """The service is gone (stdin at EOF, or fd 3 closed): nothing started may outlive us."""
        for group in self.groups | set(self.children):
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)  # not sys.exit: this may run inside a write to fd 3

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
            *lines, rest = chunk.split(b"\n")  # only new bytes are searched: big lines stay cheap
            if lines:
                lines[0] = bytes(self.pending) + lines[0]
                self.pending = bytearray()
                for line in lines:
                    self.take_line(line)
            if self.skipping is None:
                self.pending += rest
            if len(self.pending) > MAX_LINE_BYTES:
                self.skipping = request_id_of(self.pending)
                self.pending = bytearray()
        if eof:
            self.shutdown()

    def take_line(self, line):
        if self.skipping is not None:  # the end of an over-long line
            self.reject_long(self.skipping)
            self.skipping = None
        elif len(line) > MAX_LINE_BYTES:
            self.reject_long(request_id_of(line))
        else:
            self.handle_line(line)

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
        except ValueError as e:  # a NUL byte in an argument or a variable
            raise OpError("invalid_argument", str(e))
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
            except (OSError, AttributeError, ImportError) as e:  # no libffi, no inotify_init1
                raise OpError("unimplemented", "inotify is unavailable: %s" % e)
        path = resolve(arg(request, "path", str))
        return {"watch_id": self.watcher.start(path, bool(request.get("recursive")))}

    def watch_stop(self, request):
        watch_id = arg(request, "watch_id", str)
        if self.watcher is None or watch_id not in self.watcher.watches:
            raise OpError("not_found", "no watch %r" % watch_id)
        self.watcher.stop(watch_id)

    # Code contexts ---------------------------------------------------------------------------

    def context(self, request, language="python"):
        """The request's context_id's context, or language's default one (made when missing)."""
        context_id = arg(request, "context_id", str, None) or default_context_id(language)
        if context_id not in self.contexts:
            if context_id != default_context_id(language):
                raise OpError("not_found", "no context %r" % context_id)
            self.contexts[context_id] = Context(self, context_id, HOME, language)
        return self.contexts[context_id]

    def ctx_create(self, request):
        language = language_of(arg(request, "language", str, None))
        if len(self.contexts) >= MAX_CONTEXTS:
            raise OpError("resource_exhausted", "at most %d contexts" % MAX_CONTEXTS)
        cwd = resolve(arg(request, "cwd", str, None) or HOME)
        if not os.path.isdir(cwd):
            raise OpError("invalid_argument", "cwd is not a directory: " + cwd)
        self.next_context += 1
        context = Context(self, "ctx-%d" % self.next_context, cwd, language)
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
        context = self.context(request, language_of(arg(request, "language", str, None)))
        run = Run(arg(request, "run_id", str), arg(request, "code", str),
                  string_map(request.get("envs"), "envs"))
        if context.language == "bash" and any("\0" in text for text in (
                run.code, *run.envs.keys(), *run.envs.values())):
            raise OpError("invalid_argument", "bash code and envs cannot hold a NUL byte")
        return {}, lambda: context.submit(run)  # events only after the reply

    def env_set(self, request):
        """The workspace's envs, added to those it started with: for every process started and
        every run after this reply, in running kernels too (a spare workspace taken by its owner)."""
        envs = string_map(request.get("envs"), "envs")
        for name, value in envs.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise OpError("invalid_argument", "no environment variable can be named %r or "
                              "hold a NUL byte" % name)
        workspace = string_map(json.loads(os.environ.get("AIRLOCK_ENVS") or "{}"), "AIRLOCK_ENVS")
        workspace.update(envs)
        os.environ["AIRLOCK_ENVS"] = json.dumps(workspace)
        for context in self.contexts.values():
            if context.kernel is not None:
                context.submit(EnvUpdate(envs))

    def code_interrupt(self, request):
        run_id = arg(request, "run_id", str)
        for context in self.contexts.values():
            if context.interrupt(run_id):
                break


def main(default_kernel):
    Agent().serve(default_kernel)
