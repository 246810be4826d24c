"""airlock's python kernel for E2B code contexts: envd_agent.py starts one per context; it runs each
request's code in one persistent namespace and reports results as E2B /execute events. spawn()
below starts every language's kernel (envd_node_kernel.js, envd_bash_kernel.sh speak the same
framing, bash's with its own request encoding).

Started by spawn() as `python3 envd_kernel.py <cwd>` in a new session; it applies
AIRLOCK_ENVS (the workspace's envs, JSON) to its own environment first.

Framing (agent <-> kernel): requests arrive on stdin, one JSON line each, {"code": str, "envs":
{str: str}}, or {"set_envs": {str: str}} for the workspace's envs given after the start (kept for
every later run; answered by "done" alone). Everything the kernel says is one JSON line each on fd 3: "stdout", "stderr",
"result" and "error" events exactly as E2B sends them (sys.stdout and sys.stderr write there, a
line at a time, so prints keep their order with results), then {"type": "done"} when the request
is finished. What reaches fd 1 and 2 directly (the code's subprocesses, C libraries) the agent
streams as stdout/stderr events too; it drains them before each fd-3 line, so a subprocess's
output comes before the run's end. The kernel's stdin is /dev/null for the code; SIGINT raises
KeyboardInterrupt only while code runs.
"""

import os
import sys
import time

_MAX_EVENT_BYTES = 7 << 20  # below the agent's 8 MiB line cap, leaving room for its framing
_FORMATS = (("_repr_html_", "html"), ("_repr_markdown_", "markdown"), ("_repr_svg_", "svg"),
            ("_repr_png_", "png"), ("_repr_jpeg_", "jpeg"), ("_repr_pdf_", "pdf"),
            ("_repr_latex_", "latex"), ("_repr_json_", "json"),
            ("_repr_javascript_", "javascript"))
_BINARY_FORMATS = ("png", "jpeg", "pdf")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Set by the service for the sandbox's python runtime (sitecustomize, matplotlib's cache, /tmp).
_INHERITED_ENV = ("PYTHONPATH", "MPLCONFIGDIR", "TMPDIR")
_CONTROL_FD = 3
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_running = False
_control = -1


def agent_home():
    """The workspace's home: /home/user, or AIRLOCK_AGENT_HOME (tests on the host)."""
    return os.environ.get("AIRLOCK_AGENT_HOME") or "/home/user"


def base_environment(home):
    """The environment every process and kernel starts from, before any envs are added."""
    env = {"PATH": _PATH, "HOME": home, "USER": "user", "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in _INHERITED_ENV if k in os.environ})
    return env


def _kernel_argv(language, cwd):
    """The command that starts a kernel for language (envd_contexts.LANGUAGES' names)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if language == "javascript":
        return ["/usr/bin/node", os.path.join(here, "envd_node_kernel.js"), cwd]
    if language == "bash":
        with open(os.path.join(here, "envd_bash_kernel.sh")) as f:  # -c: messages say "bash:"
            return ["/bin/bash", "--noprofile", "--norc", "-c", f.read(), "bash", cwd]
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    return [python, os.path.abspath(__file__), cwd]


def spawn(cwd, home, language="python"):
    """Starts a kernel with os.posix_spawn (cheap, and needs no import of subprocess: the agent
    starts its default kernel before it has loaded anything else). Returns (pid, stdin, stdout,
    stderr, control): the agent's ends of the kernel's pipes, close-on-exec. The workspace's envs
    (AIRLOCK_ENVS) reach every kernel: python's applies them itself (so that this needs no json
    at the agent's start), the others get them in their environment."""
    argv = _kernel_argv(language, cwd)
    env = base_environment(home)
    if language == "python":
        env.update(MPLBACKEND="Agg", AIRLOCK_ENVS=os.environ.get("AIRLOCK_ENVS", "{}"))
    else:
        import json
        try:
            workspace = json.loads(os.environ.get("AIRLOCK_ENVS") or "{}")
            env.update((k, v) for k, v in workspace.items() if isinstance(v, str))
        except (ValueError, AttributeError) as e:
            sys.stderr.write("envd_agent: AIRLOCK_ENVS ignored: %s\n" % e)
    pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, control
    child_ends = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
    try:
        pid = os.posix_spawn(argv[0], argv, env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fd, n)
                                           for n, fd in enumerate(child_ends)],
                             setsid=True)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in child_ends:
            os.close(fd)
    return (pid, *ours)


def _emit(event):
    import json
    line = json.dumps(event, separators=(",", ":"), default=str).encode() + b"\n"
    if len(line) > _MAX_EVENT_BYTES:
        line = json.dumps({"type": "error", "name": "OutputTooLarge",
                           "value": "a %s of %d bytes exceeds the limit" % (event.get("type"),
                                                                            len(line)),
                           "traceback": ""}).encode() + b"\n"
    view = memoryview(line)
    while view:
        view = view[os.write(_control, view):]


class _Stream:
    """sys.stdout or sys.stderr: text goes to the agent as events on fd 3, a line at a time, so
    it keeps its order with results and errors. fileno() and buffer are the real pipe's (the
    agent streams that too, without that ordering)."""

    MAX_CHARS = 1 << 16

    def __init__(self, name, real):
        self.name, self.real, self.pending = name, real, []
        self.buffer, self.encoding, self.errors = real.buffer, "utf-8", "backslashreplace"

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        self.pending.append(text)
        if "\n" in text or sum(map(len, self.pending)) >= self.MAX_CHARS:
            self.flush()
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        text, self.pending = "".join(self.pending), []
        if not text.isascii():  # lone surrogates (os.fsdecode's) are not valid JSON text
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        for start in range(0, len(text), self.MAX_CHARS):
            _emit({"type": self.name, "text": text[start:start + self.MAX_CHARS],
                   "timestamp": time.time_ns() // 1000})

    def fileno(self):
        return self.real.fileno()

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    closed = False


def _on_sigint(signum, frame):
    if _running:
        raise KeyboardInterrupt


def _is_figure(obj):
    cls = type(obj)
    return cls.__name__ == "Figure" and cls.__module__.startswith("matplotlib")


def _result(obj, is_main):
    """An E2B result event for obj: its repr as text plus every rich format it offers."""
    import base64
    event = {"type": "result"}
    try:
        event["text"] = repr(obj)
    except Exception as e:  # a broken __repr__ must not lose the run
        event["text"] = "<repr failed: %s: %s>" % (type(e).__name__, e)
    for method_name, key in _FORMATS:
        method = getattr(type(obj), method_name, None)
        if not callable(method):
            continue
        try:
            value = method(obj)
        except Exception:
            continue
        if isinstance(value, tuple):  # (data, metadata), as IPython allows
            value = value[0] if value else None
        if value is None:
            continue
        if key in _BINARY_FORMATS and isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(value).decode()
        event[key] = value
    if _is_figure(obj) and "png" not in event:
        import io
        buffer = io.BytesIO()
        obj.savefig(buffer, format="png", bbox_inches="tight")
        event["png"] = base64.b64encode(buffer.getvalue()).decode()
    event["is_main_result"] = is_main
    event["extra"] = {}
    return event


def _error(exc):
    import traceback
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the kernel's own frames are not the user's business
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": text}


def _evaluate(code, namespace):
    """Runs a compiled cell part; top-level await (as IPython allows) runs it in asyncio."""
    value = eval(code, namespace)
    if code.co_flags & _CO_COROUTINE:
        import asyncio
        value = asyncio.run(value)
    return value


def _execute(code, filename, namespace):
    """Runs code in namespace; returns (True, value) when it ends in an expression statement
    that is shown (no trailing semicolon), else (False, None)."""
    import ast
    import linecache
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(code, filename)
    last = tree.body[-1] if tree.body else None
    shown = isinstance(last, ast.Expr) and not code.rstrip().endswith(";")
    if shown:
        tree.body.pop()
    _evaluate(compile(tree, filename, "exec", flags=flags), namespace)
    if not shown:
        return False, None
    return True, _evaluate(compile(ast.Expression(last.value), filename, "eval", flags=flags),
                           namespace)


def _display(*objects):
    """IPython's display() for code written for notebooks: each object becomes a result."""
    sys.stdout.flush()  # what was printed before comes first
    for obj in objects:
        _emit(_result(obj, False))


def _flush_figures(shown):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for number in plt.get_fignums():
            figure = plt.figure(number)
            if figure is not shown:
                _emit(_result(figure, False))
    finally:
        plt.close("all")


def _run(request, count, namespace):
    global _running
    envs = request.get("envs") or {}
    saved = {key: os.environ.get(key) for key in envs}
    shown = None
    try:
        os.environ.update(envs)
        _running = True
        try:
            has_value, value = _execute(request.get("code", ""), "<cell-%d>" % count, namespace)
        finally:
            _running = False
        if has_value and value is not None:
            shown = value
            _emit(_result(value, True))
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: the kernel lives on
        _running = False
        _emit(_error(e))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        _flush_figures(shown)
    except Exception as e:
        _emit(_error(e))


def main():
    global _control
    import ast  # noqa: F401 (each run needs them: loaded before the first request arrives)
    import json
    import linecache  # noqa: F401
    import signal
    import types
    _control = _CONTROL_FD
    os.set_inheritable(_control, False)  # the code's own subprocesses must not get it
    os.closerange(_CONTROL_FD + 1, 1 << 16)  # nothing of the agent's beyond, whatever leaked
    try:
        os.chdir(sys.argv[1])
    except (IndexError, OSError) as e:
        sys.stderr.write("envd_kernel: cwd: %s\n" % e)
    try:
        os.environ.update(json.loads(os.environ.pop("AIRLOCK_ENVS", "") or "{}"))
    except (ValueError, TypeError) as e:
        sys.stderr.write("envd_kernel: AIRLOCK_ENVS ignored: %s\n" % e)
    requests = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout, sys.stderr = _Stream("stdout", sys.stdout), _Stream("stderr", sys.stderr)
    signal.signal(signal.SIGINT, _on_sigint)
    sys.modules["envd_kernel"] = sys.modules["__main__"]  # kept: its functions use its globals
    module = types.ModuleType("__main__")
    module.__builtins__ = __builtins__
    module.display = _display
    sys.modules["__main__"] = module  # so pickle and friends find the code's classes
    sys.argv[:] = [""]
    count = 0
    for line in requests:
        request = json.loads(line)
        if "set_envs" in request:  # not a run: the workspace's envs, given after the start
            os.environ.update(request["set_envs"])
            _emit({"type": "done"})
            continue
        count += 1
        try:
            _run(request, count, module.__dict__)
        except KeyboardInterrupt:  # SIGINT landing between the code's end and ours
            pass
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            _emit({"type": "done"})


if __name__ == "__main__":
    main()
