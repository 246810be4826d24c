"""A stand-in for runner/drivers/envd_agent.py that speaks the agent protocol (plan-15.md) and can
misbehave on request, for runner/workspaces.cc's tests: it reads `<id> <json>` lines on stdin and
answers `R <id> <json>` and `E <key> <json>` lines on fd 3.

Ops: echo (the request back), env (its environment, cwd and ids), write/read (a file), process.start
(runs cmd, answers its pid, then its output as p:<pid> data events in small pieces and an end
event), hang (never answers), die (exits without answering), garbage (writes n bad lines),
noise (writes n bytes to stderr). AIRLOCK_ENVS {"FAKE_NO_READY": "1"} keeps it from saying ready;
{"FAKE_EXIT": "1"} makes it exit at once, saying why on stderr.
"""

import base64
import json
import os
import subprocess
import sys

CONTROL = 3


def send(line):
    data = (line + "\n").encode()
    while data:
        data = data[os.write(CONTROL, data):]


def reply(request_id, body):
    send("R %s %s" % (request_id, json.dumps(body, separators=(",", ":"))))


def event(key, body):
    send("E %s %s" % (key, json.dumps(body, separators=(",", ":"))))


def handle(request_id, request):
    op = request.get("op")
    if op == "echo":
        reply(request_id, {"ok": True, "echo": request})
    elif op == "env":
        reply(request_id, {"ok": True, "env": dict(os.environ), "cwd": os.getcwd(),
                           "uid": os.getuid()})
    elif op == "write":
        with open(request["path"], "w") as f:
            f.write(request["text"])
        reply(request_id, {"ok": True})
    elif op == "read":
        try:
            with open(request["path"]) as f:
                reply(request_id, {"ok": True, "text": f.read()})
        except OSError as e:
            reply(request_id, {"ok": False, "error": {"code": "not_found", "message": str(e)}})
    elif op == "process.start":
        child = subprocess.Popen([request["cmd"]] + request.get("args", []),
                                 stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        reply(request_id, {"ok": True, "pid": child.pid})
        out, _ = child.communicate()
        for at in range(0, len(out), 8):
            event("p:%d" % child.pid, {"type": "data", "stream": "stdout",
                                       "data": base64.b64encode(out[at:at + 8]).decode()})
        event("p:%d" % child.pid, {"type": "end", "exit_code": child.returncode})
    elif op == "hang":
        pass
    elif op == "die":
        os._exit(3)
    elif op == "garbage":
        for _ in range(request.get("n", 1)):
            send("this is not a protocol line")
        reply(request_id, {"ok": True})
    elif op == "noise":
        sys.stderr.write("x" * request.get("n", 1))
        sys.stderr.flush()
        reply(request_id, {"ok": True})
    else:
        reply(request_id, {"ok": False, "error": {"code": "unimplemented", "message": str(op)}})


def main():
    envs = json.loads(os.environ.get("AIRLOCK_ENVS") or "{}")
    if envs.get("FAKE_EXIT") == "1":
        sys.stderr.write("fake agent: told to exit\n")
        sys.exit(1)
    if envs.get("FAKE_NO_READY") != "1":
        event("ready", {})
    for line in sys.stdin.buffer:
        request_id, _, body = line.decode().partition(" ")
        handle(request_id, json.loads(body))


main()
