// The last steps before a sandbox's program runs, shared by a cold child (process.cc) and a forked
// one (fork_child.cc), so that both take them in one order with one set of error names. Each
// reports a failure through fail() (process.h), with the step and errno, and then does not
// return. Only syscalls and stack memory: both children run where allocation is not safe.
#pragma once

#include <linux/filter.h>

#include <cstddef>

#include "sandbox/rlimits.h"

namespace airlock::sandbox {

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
