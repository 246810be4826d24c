// A fork server's side of a forked sandbox (docs/warm_pool.md): the request the supervisor sends
// a zygote, and the steps its children take, built into libairlock_fork.so, which the zygote's
// interpreter loads. The zygote runs only airlock's own driver; the code a request brings runs
// only in a child, after every step below.
//
//   zygote --fork()--> A: hello (with a pidfd of itself); unshare(user, mount, pid, net, ipc, uts); own uid/gid maps;
//     a time namespace, which B enters at its fork
//   A --fork--> B (pid 1 of the new pid namespace): fresh /proc (masked), /tmp, /dev/shm, working dir and
//     loopback; hello with the working dir's fd; waits while the supervisor moves it into the
//     run's cgroup; cgroup namespace; privileges dropped; rlimits; stdio; both seccomp filters
//     (the listener goes to the supervisor); then the interpreter takes the request's code.
//   A waits for B and reports its wait status, as init does for a cold sandbox.
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>

#include <cstdint>

namespace airlock::sandbox {

struct ForkTmpfs {
  char path[128] = {};  // absolute, inside the sandbox
  uint64_t size_bytes = 0;
  uint32_t mode = 01777;
};

struct ForkRlimit {
  int32_t resource = 0;
  uint64_t soft = 0, hard = 0;
};

// The zygote's RLIMIT_NOFILE must be above control_fd_number (the children's own limit), so that
// B can put its control socket there before lowering the limit.
//
// Sent on the zygote's fork socket with five fds: the child's stdin (read end), stdout and
// stderr (write ends), the control channel that becomes its fd 3 (write end), and its end of the
// control socket. The two filter programs follow the header, policy first.
struct ForkRequest {
  static constexpr uint32_t kMagic = 0x61726b31;  // "ark1"
  static constexpr int kFdCount = 5;
  static constexpr int kMaxTmpfs = 8;
  static constexpr int kMaxRlimits = 8;
  uint32_t magic = kMagic;
  uint32_t uid = 1000, gid = 1000;  // inside; already the zygote's ids
  int32_t control_fd_number = 256;
  char hostname[64] = {};
  uint32_t tmpfs_count = 0;
  ForkTmpfs tmpfs[kMaxTmpfs];  // tmpfs[0] is the working directory
  uint32_t rlimit_count = 0;
  ForkRlimit rlimits[kMaxRlimits];
  uint32_t policy_length = 0;  // sock_filter instructions
  uint32_t floor_length = 0;
};

// The most filter instructions a request may carry (the kernel's own limit is 4096 per filter).
inline constexpr uint32_t kMaxForkFilterLength = 4096;

}  // namespace airlock::sandbox

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
