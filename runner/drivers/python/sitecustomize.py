"""Start-up of airlock's python runtime: every python3 in its sandboxes imports this first
(PYTHONPATH=/opt/airlock/python, runtimes.yaml). It does two things and costs well under a
millisecond; neither imports anything the program did not ask for.

- pip: a sandbox without network cannot reach an index, so there `pip install` (and download,
  wheel) says so at once, with what the runtime has, instead of Debian's PEP 668 message or a
  long wait for a connection that never comes. `pip list`, `pip show` work as usual. Under a
  policy with egress (docs/egress.md) the sandbox has /etc/resolv.conf and pip runs as usual.
- matplotlib: its font list is built ahead (scripts/matplotlib-cache.sh, by scripts/deps.sh)
  into a read-only directory the policy binds, FONT_CACHE/<matplotlib version>/. matplotlib
  itself reads its cache only from a writable directory (else it builds the list anew: about a
  second of every run that draws text), so while matplotlib.font_manager loads, its cache
  directory is that one; afterwards it is MPLCONFIGDIR again (the run's own /tmp).
"""

import os
import sys

FONT_CACHE = "/var/cache/airlock/matplotlib"
PACKAGES = "numpy, pandas, matplotlib (Agg: charts are files, plt.savefig) and scipy"
_NO_NETWORK = (
    "ERROR: pip: no network access: this sandbox cannot download or install packages.\n"
    "The python runtime has " + PACKAGES + " besides the standard library; "
    "`pip list` shows every installed package.\n")


def _pip_subcommand(argv):
    """The pip subcommand of a command line (`pip install x`, `python3 -m pip install x`), or
    None when the process is not pip."""
    for i, arg in enumerate(argv):
        if arg == "-m" and i + 1 < len(argv) and argv[i + 1] == "pip":
            rest = argv[i + 2:]
            break
        if i <= 1 and os.path.basename(arg).startswith("pip") and not arg.endswith(".py"):
            rest = argv[i + 1:]
            break
    else:
        return None
    return next((arg for arg in rest if not arg.startswith("-")), "")


def _refuse_pip_downloads():
    if (_pip_subcommand(getattr(sys, "orig_argv", sys.argv)) in ("install", "download", "wheel")
            and not os.path.exists("/etc/resolv.conf")):  # written only for egress's gateway
        sys.stderr.write(_NO_NETWORK)
        sys.stderr.flush()
        os._exit(1)


class _FontCacheBuiltAhead:
    """A meta path finder that only wraps the loading of matplotlib.font_manager."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.font_manager":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        matplotlib = sys.modules.get("matplotlib")
        directory = os.path.join(FONT_CACHE, getattr(matplotlib, "__version__", "?"))
        try:
            built = any(n.startswith("fontlist-") for n in os.listdir(directory))
        except OSError:
            built = False
        if spec is None or spec.loader is None or not built:
            return spec  # as matplotlib does on its own: the list is built in MPLCONFIGDIR
        load = spec.loader.exec_module

        def exec_module(module):
            writable = matplotlib.get_cachedir
            matplotlib.get_cachedir = lambda: directory
            try:
                load(module)
            finally:
                matplotlib.get_cachedir = writable

        spec.loader.exec_module = exec_module
        return spec


_refuse_pip_downloads()
sys.meta_path.insert(0, _FontCacheBuiltAhead())
