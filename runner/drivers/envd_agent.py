"""airlock's in-sandbox agent for E2B-compatible workspaces: the program a workspace's sandbox runs
(`/usr/bin/python3 -I -S envd_agent.py`). It starts the default context's python kernel before
anything else, so the kernel's start-up overlaps the agent's own, then serves requests:
envd_server.py (requests, processes) with envd_files.py, envd_contexts.py and envd_io.py; the
kernel is envd_kernel.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script's dir out
# The drivers are a fresh copy in each sandbox (runner/drivers.cc): a .pyc written there would be
# thrown away with it. One shipped beside them in checked-hash mode would still be used.
sys.dont_write_bytecode = True

import envd_kernel  # noqa: E402 (needs the path above)

try:
    _default_kernel = envd_kernel.spawn(envd_kernel.agent_home(), envd_kernel.agent_home())
except OSError as e:  # the first run starts one then, and says why if it cannot
    sys.stderr.write("envd_agent: default kernel: %s\n" % e)
    _default_kernel = None

import envd_server  # noqa: E402 (after the kernel is on its way)

envd_server.main(_default_kernel)
