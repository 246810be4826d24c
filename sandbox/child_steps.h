// The named steps of a sandbox's child, shared by a cold child (process.cc) and a forked one
// (fork_child.cc), so that both take them with one set of error names. The checklist, numbered
// as both files number it:
//    1. die with the supervisor; wait until it has written our id maps; join the run's cgroup
//    2. a cgroup namespace, now that we are in the run's cgroup; a time namespace; the user
//       namespace's own inotify limits
//    3. a new session
//    4. the file system
//    5. network: loopback and hostname
//    6. privileges dropped
//    7. not dumpable (cold only); die with the supervisor again, as the kernel cleared it at 6
//    8. pid 1 shows airlock's init (cold only)
//    9. the program forked as pid 2 while init waits for it (cold only)
//   10. fds, signals, rlimits
//   11. both seccomp filters, the listener to the supervisor; then exec (cold) or the
//       interpreter (forked)
// A forked sandbox's A takes 1, enters the namespaces a cold child gets from clone, and makes the
// time namespace of 2, which B enters at its fork. B takes 4 and 5 before waiting in 1 (its
// hello carries the new working dir), then the rest. Each step below
// reports a failure through fail() (process.h), with the step and errno, and then does not
// return. Only syscalls and stack memory: both children run where allocation is not safe.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>

#include "sandbox/rlimits.h"

namespace airlock::sandbox {

// Dies with its parent: SIGKILL when the thread that made it ends (the supervisor's for a cold
// child; the zygote for a forked A, and A for its B). The kernel clears this at every
// uid/gid change, so a child arms it again after drop_to_sandbox_user. who names the child in
// the error ("A" or "B" of a forked sandbox), or nullptr.
void die_with_supervisor(int socket, const char* who);

// Into the run's cgroup by the child itself: "0" written into each of `files` (v1's `tasks`,
// opened by the supervisor), each closed after; a file missing or refused fails the step. We are
// one thread, so moving it moves the process, and a thread moving itself spares the supervisor's
// attach an RCU grace period (cgroup.h).
void join_cgroup(int socket, const int* files, size_t count);

// A cgroup namespace rooted at the cgroup the child is in: called once it is in the run's cgroup
// (joined, cloned into or moved by the supervisor).
void enter_cgroup_namespace(int socket);

// The user namespace's own caps on inotify and fanotify objects (rlimits.h says why), written
// while we hold capabilities in it: the program, without them, cannot raise them again.
void limit_user_namespace(int socket);

// A new session: no controlling terminal to inject into or signal through.
void new_session(int socket);

// Loopback up in the child's own network namespace, and its hostname. With gateway ports, the
// egress gateway's sockets too (open_gateway_sockets), sent to the supervisor in a
// gateway_sockets message and closed here.
void bring_up_network(int socket, const char* hostname, size_t hostname_length,
                      const uint16_t* gateway_ports, size_t gateway_port_count);

// Privileges dropped: uid and gid, no capabilities, no_new_privs (capabilities.h).
void drop_to_sandbox_user(int socket, uint32_t uid, uint32_t gid, bool clear_groups);

// Where a child's fds are before place_fds.
struct FdLayout {
  int stdin_read = -1;
  int stdout_write = -1;
  int stderr_write = -1;
  int channel_write = -1;  // becomes fd 3 when >= 0 (Spec::control_channel)
  int control = -1;        // the socket to the supervisor
  int control_fd_number = 256;  // where it goes: at or above the program's RLIMIT_NOFILE
};

// Only 0-2 (and 3, the channel) reach the program: puts them there, moves the control socket to
// control_fd_number (close-on-exec), and closes every other fd. Returns the control socket.
int place_fds(const FdLayout& layout);

// Handlers reset at exec but ignored signals and the mask do not. A cold child, which execs next,
// restores every handler; a forked one, which goes on running its interpreter, only SIGCHLD
// (ignored in the zygote so that the kernel reaps its children).
enum class SignalReset { all, sigchld_only };
void reset_signals(SignalReset which);

// The run's rlimits; a failure names the resource, e.g. setrlimit("RLIMIT_NOFILE").
void set_rlimits(int socket, const RlimitSetting* settings, size_t count);

// The policy's filter, whose listener goes to the supervisor in a listeners message, then the
// floor under it. Without a policy filter (a zygote: its children install their own, and a
// process can have only one listener) the message carries no fd. Returns the listener (or -1),
// which closes at exec; a child that does not exec closes it itself.
int install_filters_and_report(int socket, const sock_filter* policy, size_t policy_length,
                                const sock_filter* floor, size_t floor_length);

}  // namespace airlock::sandbox
