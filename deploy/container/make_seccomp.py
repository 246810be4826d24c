#!/usr/bin/python3
"""Writes deploy/container/seccomp.json, the seccomp profile airlock's container runs under.

    deploy/container/make_seccomp.py [/usr/share/containers/seccomp.json] > deploy/container/seccomp.json

It starts from the container runtimes' default profile (containers-common's, the one podman and
CRI-O apply; Debian package golang-github-containers-common) and resolves it for what airlock's
container is: x86_64 or aarch64 (no i386 or x32 entry points: airlock's floor denies them to
sandboxes too), and the capabilities the manifests grant. The result is a flat OCI profile, no
`includes`/`excludes`, because containerd loads a Localhost profile as it is.

Then it takes away what neither airlock nor a sandboxed program may use, each listed below with
the reason; airlock's own per-sandbox filter (sandbox/seccomp_floor.cc) denies these too, so this
is the same floor, enforced once more by the kernel for the whole container, the service included.
What airlock's namespace setup needs (clone/clone3 with namespace flags, unshare, mount, umount2,
pivot_root, sethostname) the default already allows to a process holding CAP_SYS_ADMIN, which the
container has only inside its own user namespace.
"""
import json
import sys

# The capabilities the container holds (deploy/kubernetes/base/deployment.yaml, scripts/container.sh).
CAPABILITIES = {"CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE",
                "CAP_FOWNER", "CAP_CHOWN", "CAP_SYS_RESOURCE"}
ARCHES = {"amd64", "arm64"}
ARCHITECTURES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]

# Allowed by the default with CAP_SYS_ADMIN or for everyone, used by nothing in the container.
REMOVED = {
    # other processes' memory and the kernel's debugging interfaces
    "ptrace": "no debugger runs here",
    "process_vm_readv": "reads another process's memory",
    "process_vm_writev": "writes another process's memory",
    "pidfd_getfd": "takes a descriptor out of another process",
    "kcmp": "compares other processes' kernel objects",
    "perf_event_open": "kernel profiling, a long record of privilege escalations",
    "bpf": "loads programs into the kernel",
    "lookup_dcookie": "kernel profiling",
    "fanotify_init": "watches the whole mount",
    "quotactl": "disk quotas",
    "setdomainname": "airlock sets the hostname only",
    "setns": "airlock makes namespaces and never joins one",
    "userfaultfd": "makes kernel races easy to win",
    "io_uring_setup": "a second system call interface that seccomp does not see",
    "io_uring_enter": "see io_uring_setup",
    "io_uring_register": "see io_uring_setup",
    "keyctl": "the kernel keyring is not namespaced",
    "add_key": "the kernel keyring is not namespaced",
    "request_key": "the kernel keyring is not namespaced",
    "name_to_handle_at": "with open_by_handle_at, opens files by handle past mount boundaries",
}


def applies(rule):
    includes, excludes = rule.get("includes", {}), rule.get("excludes", {})
    if "arches" in includes and not ARCHES & set(includes["arches"]):
        return False
    if "caps" in includes and not set(includes["caps"]) <= CAPABILITIES:
        return False
    if "caps" in excludes and set(excludes["caps"]) & CAPABILITIES:
        return False
    if "arches" in excludes and ARCHES <= set(excludes["arches"]):
        return False
    return not includes.get("minKernel")


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
    with open(source) as f:
        default = json.load(f)
    syscalls = []
    for rule in default["syscalls"]:
        if not applies(rule):
            continue
        names = [n for n in rule["names"] if n not in REMOVED]
        if not names:
            continue
        flat = {"names": names, "action": rule["action"]}
        for key in ("args", "errnoRet"):
            if rule.get(key):
                flat[key] = rule[key]
        syscalls.append(flat)
    syscalls.append({"names": sorted(REMOVED), "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default.get("defaultErrnoRet", 38),
        "architectures": ARCHITECTURES,
        "syscalls": syscalls,
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
