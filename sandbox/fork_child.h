// A fork server's side of a forked sandbox (docs/warm_pool.md): the steps the children of a
// zygote take for one request (fork_request.h), built into libairlock_fork.so, which the zygote's
// interpreter loads. The zygote runs only airlock's own driver; the code a request brings runs
// only in a child, after every step below.
//
//   zygote --fork()--> A: (v1) joins the run's cgroup; hello (with a pidfd of itself);
//     unshare(user, mount, pid, net, ipc, uts); own uid/gid maps; a time namespace, which B
//     enters at its fork
//   A --fork--> B (pid 1 of the new pid namespace): fresh /proc (masked), /tmp, /dev/shm, working
//     dir and loopback; hello with the working dir's fd; waits for the supervisor's go (on v2 it
//     moves A and B into the run's cgroup first); cgroup namespace; privileges dropped; rlimits;
//     stdio; both seccomp filters
//     (the listener goes to the supervisor); then the interpreter takes the request's code.
//   A waits for B and reports its wait status, as init does for a cold sandbox.
#pragma once

#include "sandbox/fork_request.h"

// The library's entry points, called through ctypes by the zygote's driver (one thread, the
// GIL held).
extern "C" {
// Closes the last request's fds, then waits for the next request on fork_socket.
// 1: a request is loaded; 0: the socket closed (the server is stopping); -1: a bad request.
int airlock_zygote_next(int fork_socket);
// Serves the loaded request: forks A, which forks B. Returns A's pid in the zygote (-1 if the
// fork failed) and 0 in B once it is a sandbox with fds 0-3 in place; B must then run the
// interpreter's after-fork steps (PyOS_AfterFork_Child). A never returns: it waits for B,
// reports B's status and exits. A failed step is reported to the supervisor and ends the child.
int airlock_zygote_fork(void);
// The two above in a loop, until a request has made this process a sandbox's B: returns 0 there
// (as airlock_zygote_fork does in B), 1 in the zygote when the socket has closed. Bad requests and
// failed forks are skipped (the supervisor's wait for them times out or is told). The zygote
// stays in C between forks: each fork write-protects all its pages again, and the interpreter's
// own writes between forks (refcounts, frames) would then copy dozens of them every time.
int airlock_zygote_serve(int fork_socket);
}
