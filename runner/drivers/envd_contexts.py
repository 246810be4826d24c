"""The envd agent's code-interpreter contexts: a context owns a kernel for its language (python:
envd_kernel.py, javascript: envd_node_kernel.js, bash: envd_bash_kernel.sh), a queue of runs and
an execution count, and turns the kernel's output into a run's E2B events."""

import codecs
import json
import os
import selectors
import signal
import time

import envd_kernel
from envd_io import MAX_LINE_BYTES, OpError, Writer, drain, dumps, event, from_pipes, log, now_us

HOME = envd_kernel.agent_home()
BASH_INTERRUPT_REPEAT = 0.2
# The names a request may give a language by (E2B's code interpreter lower-cases them and takes
# "js" for "javascript"), and the language each means.
LANGUAGES = {"python": "python", "python3": "python", "javascript": "javascript",
             "js": "javascript", "bash": "bash"}


def language_of(name):
    """The language a request's name means (None: python), or invalid_argument."""
    language = LANGUAGES.get((name or "python").strip().lower())
    if language is None:
        raise OpError("invalid_argument", "unsupported language %r: python, javascript (js) or "
                      "bash" % name)
    return language


def default_context_id(language):
    """The context a run naming only its language goes to: python's is "default", made at the
    start; the others' are made at their first run."""
    return "default" if language == "python" else "default-" + language


class Run:
    def __init__(self, run_id, code, envs):
        self.run_id, self.code, self.envs = run_id, code, envs
        self.key = "r:" + run_id

    def emit(self, body):
        event(self.key, body)

    def end(self, count):
        self.emit({"type": "number_of_executions", "execution_count": count})
        self.emit({"type": "end_of_execution"})


class EnvUpdate:
    """Not a run: envs for the workspace given after its kernels started (a spare workspace handed
    to its owner). Queued like a run, so every run after it sees them; it says nothing."""

    run_id = None

    def __init__(self, envs):
        self.envs = envs

    def emit(self, body):
        pass

    def end(self, count):
        pass


class SpawnedKernel:
    """The parts of a Popen that the pipes' plumbing uses, for a kernel from posix_spawn."""

    def __init__(self, pid, stdin, stdout, stderr, control):
        self.pid, self.returncode = pid, None
        self.stdin = os.fdopen(stdin, "wb", buffering=0)
        self.stdout = os.fdopen(stdout, "rb", buffering=0)
        self.stderr = os.fdopen(stderr, "rb", buffering=0)


class Kernel:
    """One kernel process for context's language; reports its lines and its death to context."""

    def __init__(self, agent, context, spawned=None):
        self.agent, self.context = agent, context
        self.dead = False
        self.marker = None  # bash's: the request's, which its lines must carry
        spawned = spawned or envd_kernel.spawn(context.cwd, HOME, context.language)
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
        if self.context.language != "bash":
            self.stdin.write(dumps(request).encode() + b"\n")
            return
        # envd_bash_kernel.sh's encoding: NUL-terminated fields (bash cannot parse JSON)
        self.marker = os.urandom(8).hex()
        envs = request.get("set_envs", request.get("envs")) or {}
        fields = ["env" if "set_envs" in request else "run", self.marker, str(len(envs))]
        for name, value in envs.items():
            fields += [name, value]
        if "set_envs" not in request:
            fields.append(request["code"])
        self.stdin.write(b"".join(f.encode("utf-8", "surrogateescape") + b"\0" for f in fields))

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
            if self.marker is not None and (not isinstance(message, dict) or
                                            message.pop("marker", None) != self.marker):
                log("kernel %d: a line without the request's marker" % self.pid)
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

    def __init__(self, agent, context_id, cwd, language="python"):
        self.agent, self.id, self.cwd, self.language = agent, context_id, cwd, language
        self.kernel = None
        self.queue = []
        self.current = None
        self.count = 0
        self.removed = False

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

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
        if isinstance(self.current, EnvUpdate):
            self.kernel.send({"set_envs": self.current.envs})
            return
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
        elif message.get("type") in ("stdout", "stderr", "result", "error"):
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
            if self.language == "bash":
                self.interrupt_bash(self.current, self.kernel)
            else:
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

    def interrupt_bash(self, run, kernel):
        """SIGINT to the kernel's process group: its foreground command too, which bash waits for.
        Sent again every BASH_INTERRUPT_REPEAT s while the run goes on: one that lands while bash
        forks a command reaches the child before it execs, and the command never sees it."""
        if self.current is not run or self.kernel is not kernel:
            return
        try:
            os.killpg(kernel.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        self.agent.loop.call_at(time.monotonic() + BASH_INTERRUPT_REPEAT,
                                lambda: self.interrupt_bash(run, kernel))

    def stop(self, reason):
        """Kills the kernel; a run in progress ends with an error saying reason."""
        if self.kernel is not None:
            self.kernel.die(reason)
        elif self.removed:
            self.on_kernel_death(None, reason)
