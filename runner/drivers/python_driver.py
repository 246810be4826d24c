"""airlock's Python session driver: runs each execution it is sent in one persistent namespace.

Frames arrive on stdin: a header line "MARKER CODE_BYTES STDIN_BYTES\n", then the code, then the
bytes the code reads as its stdin. The code's output goes to the real stdout/stderr as it is
written; the value of a final expression is shown as the interactive interpreter shows it. When an
execution ends, MARKER is written to stdout and to stderr (so airlock knows both streams are
complete) and one record to fd 3: "MARKER end STATUS EXIT_CODE OUT_MARKED ERR_MARKED REASON_BYTES\n"
then the reason. STATUS is ok, error (an exception) or exit (SystemExit).

AIRLOCK_DRIVER_MODE=script runs each frame as `python3 -u main.py` would (a warm pool's one-shot
interpreter); AIRLOCK_DRIVER_MODE=zygote makes this a fork server whose children do that (see
_zygote): no echo of a final expression, __file__ and sys.argv[0] are main.py, output is written
through at once. AIRLOCK_PRELOAD lists modules (comma-separated) imported before the first frame, so
that the code finds them ready; AIRLOCK_WARM_UP is code run once after them (a first chart), its
output dropped. These variables are removed before any code runs.
"""

import ast
import io
import os
import sys
import traceback

_MODE = os.environ.pop("AIRLOCK_DRIVER_MODE", "")
_SCRIPT = _MODE in ("script", "zygote")
_FORK_LIBRARY = os.environ.pop("AIRLOCK_FORK_LIBRARY", "")
_frames = _control = _out = _err = None
# Taken now, before any code runs and could replace them.
_kill_all_others = os.kill
_reap = os.waitpid
_SIGKILL = 9


def _attach():
    """Private copies of the channels, so code that closes or redirects fd 1, 2 or 3 cannot break
    them."""
    global _frames, _control, _out, _err
    _frames = os.fdopen(os.dup(0), "rb", buffering=0)
    _control = os.dup(3)
    _out = os.dup(1)
    _err = os.dup(2)
    os.close(3)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)


for _module in filter(None, os.environ.pop("AIRLOCK_PRELOAD", "").split(",")):
    try:
        __import__(_module)
    except ImportError:
        pass  # a preload is an optimisation: the code's own import reports what is missing
_WARM_UP_CODE = os.environ.pop("AIRLOCK_WARM_UP", "")


class _FrameArrived(BaseException):
    """A request's frame arrived while the child was still warming up: the warm-up stops."""


_stoppable = False  # while True, SIGIO (a frame arrived) stops the warm-up


def _on_frame_arrived(signum, frame):
    global _stoppable
    if _stoppable:  # raised once at most, and never once the warm-up code has ended
        _stoppable = False
        raise _FrameArrived


def _run_warm_up_code(stoppable=False):
    """The runtime's warm-up (a first chart), in a namespace of its own. Run once at start, so
    that a zygote's children share what it imports and loads; and again in each forked child
    while it waits for its request, so that the pages it writes (copied from the zygote's on
    first write, ~70 us a page on this kind of VM) are copied then, not while a request waits
    (_warm_up_until_a_frame_arrives). The code may define cleanup(): called after it, whether
    it ended or was stopped, and never stopped itself. An optimisation like the preloads: its
    output and its failure are dropped."""
    global _stoppable
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    namespace = {"__name__": "__warm_up__"}
    try:
        try:
            try:
                _stoppable = stoppable
                exec(compile(_WARM_UP_CODE, "<warm-up>", "exec"), namespace)
            finally:
                _stoppable = False
        except (Exception, _FrameArrived):
            pass
        cleanup = namespace.get("cleanup")
        if callable(cleanup):
            try:
                cleanup()
            except Exception:
                pass
    finally:
        sys.stdout, sys.stderr = saved


if _WARM_UP_CODE:
    _run_warm_up_code()
_FILENAME = "main.py" if _SCRIPT else "<session>"
if _SCRIPT:
    import atexit  # noqa: F401  (used at the end of each script; imported ahead, off the clock)
    import threading  # noqa: F401

# The working directory comes first on the import path, as in the interactive interpreter.
sys.path[0] = ""
_namespace = {"__name__": "__main__", "__builtins__": __builtins__}
if _SCRIPT:
    _namespace["__file__"] = _FILENAME
    sys.argv = [_FILENAME]
    sys.stdout.reconfigure(write_through=True)
    sys.stderr.reconfigure(write_through=True)
_MAX_REASON_BYTES = 2000


_received = bytearray()  # read from the frames but not yet taken: one read serves a whole frame
_READ_BYTES = 65536
_MAX_HEADER_BYTES = 200  # a longer first line is not a frame airlock sent


class _Closed(Exception):
    """airlock closed the frames' pipe: the session is over."""


def _read_more(wanted=0):
    chunk = _frames.read(max(_READ_BYTES, wanted))
    if not chunk:
        raise _Closed
    _received.extend(chunk)


def _read_exact(n):
    while len(_received) < n:
        _read_more(n - len(_received))
    taken = bytes(_received[:n])
    del _received[:n]
    return taken


def _read_header():
    """The frame's header line, or None for bytes that are not a frame airlock sent."""
    while True:
        end = _received.find(b"\n", 0, _MAX_HEADER_BYTES + 1)
        if end >= 0:
            return _read_exact(end + 1)
        if len(_received) > _MAX_HEADER_BYTES:
            return None
        _read_more()


def _write_all(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
        return True
    except OSError:
        return False


def _end_like_a_script(warming_up=False):
    """What the interpreter does when a script ends: wait for its threads, run atexit handlers.
    A warm-up goes the same way but leaves the handlers for the real end."""
    import atexit
    import threading
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    if not warming_up:
        atexit._run_exitfuncs()


def _run(code, warming_up=False):
    """Returns (status, exit_code, reason). A warm-up leaves atexit handlers for the real end."""
    try:
        tree = ast.parse(code, _FILENAME, "exec")
        last = None
        if not _SCRIPT and tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, _FILENAME, "exec"), _namespace)
        if last is not None:
            value = eval(compile(last, _FILENAME, "eval"), _namespace)
            sys.displayhook(value)
        if _SCRIPT:
            _end_like_a_script(warming_up)
        return "ok", 0, "exited normally" if _SCRIPT else ""
    except SystemExit as stop:
        code = stop.code
        if _SCRIPT:  # as the process `python3 main.py` would end
            _end_like_a_script(warming_up)
            if isinstance(code, int):
                code &= 0xFF  # the status the process would end with: the OS keeps 8 bits
            if code is None or code == 0:
                return "exit", 0, "exited normally"
            if not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
            return "exit", code, f"exited with code {code}"
        if code is None:
            return "exit", 0, "the code called exit(); the interpreter and its state are kept"
        if isinstance(code, int):
            return "exit", code, f"the code called exit({code}); the interpreter and its state are kept"
        print(code, file=sys.stderr)
        return "exit", 1, "the code called exit() with a message; the interpreter and its state are kept"
    except BaseException as error:  # the code's own failure, reported like the interpreter would
        trace = traceback.TracebackException.from_exception(error)
        # Hide this driver's frames: the code's first frame is the code's own file name.
        while trace.stack and trace.stack[0].filename != _FILENAME:
            trace.stack.pop(0)
        sys.stderr.write("".join(trace.format()))
        line = "".join(trace.format_exception_only()).strip().splitlines()
        return "error", 1, (line[-1] if line else type(error).__name__)


def main(while_idle=None):
    """Says ready, runs while_idle (if given) until the first frame arrives, then serves frames."""
    # Initialised (preloads imported): a warm pool hands this interpreter out only from now on.
    if not _write_all(_control, b"ready\n"):
        return
    if while_idle is not None:
        while_idle()
    while _serve_next(_out, _err, _control):
        pass


def _serve_next(out, err, control, warming_up=False):
    """Reads the next frame and serves it; False once the frames or the report channel end."""
    try:
        header = _read_header()
        if header is None:
            return False
        marker, code_bytes, stdin_bytes = header.decode("ascii").rstrip("\n").split(" ")
        code = _read_exact(int(code_bytes)).decode("utf-8", "replace")
        stdin = _read_exact(int(stdin_bytes)) if int(stdin_bytes) > 0 else b""
    except _Closed:
        return False
    return _serve(marker, code, stdin, out, err, control, warming_up)


def _serve(marker, code, stdin, out, err, control, warming_up=False):
    """Runs one frame's code and reports its end; False when the report could not be sent."""
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="replace")
    status, exit_code, reason = _run(code, warming_up)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if not _SCRIPT:
        _end_leftovers()
    out_marked = _write_all(out, marker.encode())
    err_marked = _write_all(err, marker.encode())
    reason_bytes = reason.encode("utf-8", "replace")[:_MAX_REASON_BYTES]
    record = f"{marker} end {status} {exit_code} {int(out_marked)} {int(err_marked)} {len(reason_bytes)}\n"
    return _write_all(control, record.encode() + reason_bytes)


def _end_leftovers():
    """A session's processes end with the execution that started them: kill(-1) reaches every
    process of the sandbox but this one and its init, so nothing burns CPU between executions.
    The session's CPU limit bounds whatever might dodge this."""
    try:
        _kill_all_others(-1, _SIGKILL)
    except OSError:
        return  # ESRCH: nothing was left
    # Reap the children among them, so no zombie stays behind either.
    while True:
        try:
            _reap(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _warm_up_frame_path():
    """In a fresh child, before it says ready: serve one frame down the whole path a request's
    takes, from its header to the end of the script, output and reports to /dev/null, so that
    the pages that path writes (copied on write from the zygote's) are copied now rather than
    while a request waits. atexit handlers stay for the request's own end."""
    sink = os.open(os.devnull, os.O_WRONLY)
    saved_stdin = sys.stdin
    _received.extend(b"\x02warm-up\x03 8 0\nprint(1)")
    try:
        os.dup2(sink, 1)  # sys.stdout and sys.stderr themselves are warmed, writing to nothing
        os.dup2(sink, 2)
        _serve_next(sink, sink, sink, warming_up=True)
    finally:
        os.dup2(_out, 1)
        os.dup2(_err, 2)
        sys.stdin = saved_stdin
        os.close(sink)


def _warm_up_until_a_frame_arrives():
    """After the child has said ready, while it waits for its request: the runtime's warm-up
    (a first chart), for the pages it writes, as _warm_up_frame_path does for the frame path.
    It costs far more CPU than the rest of the child's start (~200 ms against ~30 here), so it
    does not hold up the pool: the child is ready without it, its cgroup has the lowest CPU
    weight until it serves (a warm pool's refill), and the frame's arrival stops it (SIGIO on the
    frames pipe): a request waits at most for the C call in progress, never for the whole chart.
    The warm-up code must leave nothing a request could see when stopped at any point (python's
    closes its figures in its cleanup())."""
    import fcntl
    import select
    import signal
    fd = _frames.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    previous = signal.signal(signal.SIGIO, _on_frame_arrived)
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_ASYNC)
    if not select.select([_frames], [], [], 0)[0]:  # one that came before O_ASYNC was set
        _run_warm_up_code(stoppable=True)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    signal.signal(signal.SIGIO, previous)


def _zygote():
    """A fork server (AIRLOCK_DRIVER_MODE=zygote; docs/warm_pool.md): fd 3 is a socket on which
    airlock sends fork requests. Each becomes a child that enters sandboxes of its own (the
    library's steps) and then serves one script-mode execution; this process never runs code
    it is sent."""
    import ctypes
    import select
    import signal
    library = ctypes.PyDLL(_FORK_LIBRARY)  # PyDLL: the GIL stays held, as os.fork() expects
    ctypes.pythonapi.PyOS_AfterFork_Child.restype = None
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    # Everything imported so far stays shared with the children: the collector never visits
    # these objects, so it never writes to (and copies) their pages in a child.
    import gc
    gc.collect()
    gc.freeze()
    # Writable shared memory (a preload's mmap or SysV segment) would stay shared by every child,
    # a channel from one execution to the next: refuse to serve (the pool then starts fresh).
    with open("/proc/self/maps") as maps:
        shared = [line.strip() for line in maps if line.split()[1].startswith("rw") and
                  line.split()[1].endswith("s")]
    if shared:
        sys.stderr.write("fork server: writable shared mappings after the preloads: %s\n" % shared)
        os._exit(1)
    # A child keeps only fds 0-3: a file a preload or the warm-up left open would be closed under
    # the object that holds it, and its number reused for the child's own channels.
    fds = ["/proc/self/fd/" + fd for fd in os.listdir("/proc/self/fd") if int(fd) > 3]
    left_open = [os.readlink(fd) for fd in fds if os.path.exists(fd)]  # not listdir's own
    if left_open:
        sys.stderr.write("fork server: files open after the preloads: %s\n" % left_open)
        os._exit(1)
    os.write(3, b"ready")
    # The zygote stays in the library's loop from here on; it returns only in a child.
    if library.airlock_zygote_serve(3) != 0:
        os._exit(0)  # airlock closed the socket: the server is stopping
    # B: a sandbox of its own now (fork_child.h). As os.fork() would in a child:
    ctypes.pythonapi.PyOS_AfterFork_Child()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _attach()
    if not select.select([_frames], [], [], 0)[0]:
        _warm_up_frame_path()  # only while no request is waiting: otherwise it would delay it
    main(while_idle=_warm_up_until_a_frame_arrives if _WARM_UP_CODE else None)
    sys.stdout.flush()
    os._exit(0)


if _MODE == "zygote":
    _zygote()
else:
    _attach()
    main()
