#!/usr/bin/env python3
"""A session across several calls, with only the standard library: load data in one call, explore
it in the next, and fetch a file the code wrote. Usage:
  AIRLOCK_URL=http://127.0.0.1:8080 AIRLOCK_KEY=... python3 examples/python_session.py"""

import json
import os
import urllib.request

URL = os.environ.get("AIRLOCK_URL", "http://127.0.0.1:8080")
KEY = os.environ.get("AIRLOCK_KEY", "")


def call(method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if KEY:
        request.add_header("Authorization", "Bearer " + KEY)
    with urllib.request.urlopen(request) as response:
        return response.read()


session = json.loads(call("POST", "/v1/sessions", {"runtime": "python", "idle_timeout": "5m"}))
sid = session["id"]
print("session", sid, "ends at the latest", session["lifetime_ends_at"])
try:
    call("PUT", f"/v1/sessions/{sid}/files/data.csv", raw=b"city,temp\nOslo,4\nLima,19\nCairo,27\n")
    for code in [
        "import csv\nrows = list(csv.DictReader(open('data.csv')))\nlen(rows)",
        "warm = [r['city'] for r in rows if int(r['temp']) > 10]\nwarm",
        "open('warm.txt', 'w').write('\\n'.join(warm))",
    ]:
        result = json.loads(call("POST", f"/v1/sessions/{sid}/executions", {"code": code}))
        print(result["summary"].splitlines()[0], "|", result["stdout"].strip())
    print("warm.txt:", call("GET", f"/v1/sessions/{sid}/files/warm.txt").decode())
finally:
    call("DELETE", f"/v1/sessions/{sid}")
