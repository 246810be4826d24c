// Steps shared by a cold sandbox's child (process.cc) and a forked one (fork_child.cc): only
// syscalls and stack memory, since both run where allocation is not safe.
#include "sandbox/child_steps.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sandbox/capabilities.h"
#include "sandbox/fd_passing.h"
#include "sandbox/gateway_sockets.h"
#include "sandbox/namespaces.h"
#include "sandbox/process.h"
#include "sandbox/seccomp.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {
namespace {

void append(char* buffer, size_t size, const char* text) {
  size_t used = std::strlen(buffer);
  while (*text != '\0' && used + 1 < size) buffer[used++] = *text++;
  buffer[used] = '\0';
}

// Above where the program's fds go, so that placing one cannot overwrite another.
int lift_fd(int fd, int floor, int socket) {
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, floor + 1);
  if (lifted < 0) fail(socket, "fcntl(F_DUPFD_CLOEXEC)", nullptr, errno);
  return lifted;
}

// "/proc/sys/user/..." shows and sets the values of the reader's user namespace. optional: a
// kernel without the feature has no such file, and nothing to cap.
void write_user_limit(int socket, const char* path, int value, bool optional = false) {
  char text[16];
  const int length = std::snprintf(text, sizeof text, "%d", value);
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && optional && errno == ENOENT) return;
  if (fd < 0) fail(socket, "open", path, errno);
  if (::write(fd, text, static_cast<size_t>(length)) != length) fail(socket, "write", path, errno);
  ::close(fd);
}

}  // namespace

void limit_user_namespace(int socket) {
  write_user_limit(socket, "/proc/sys/user/max_inotify_instances", kMaxInotifyInstances);
  write_user_limit(socket, "/proc/sys/user/max_inotify_watches", kMaxInotifyWatches);
  write_user_limit(socket, "/proc/sys/user/max_fanotify_groups", kMaxFanotifyGroups, true);
  write_user_limit(socket, "/proc/sys/user/max_fanotify_marks", kMaxFanotifyMarks, true);
}

bool send_message(int socket, const ControlMessage& message, const int* fds, int fd_count) {
  struct iovec io {const_cast<ControlMessage*>(&message), sizeof message};
  return send_with_fds(socket, &io, 1, fds, fd_count, MSG_NOSIGNAL) ==
         static_cast<ssize_t>(sizeof message);
}

[[noreturn]] void fail(int socket, const char* step, const char* detail, int error_number) {
  ControlMessage message;
  message.kind = ControlMessage::setup_failed;
  message.error_number = error_number;
  append(message.text, sizeof message.text, step);
  if (detail != nullptr && *detail != '\0') {
    append(message.text, sizeof message.text, "(\"");
    append(message.text, sizeof message.text, detail);
    append(message.text, sizeof message.text, "\")");
  }
  send_message(socket, message, nullptr, 0);
  ::_exit(kSetupFailedExit);
}

void close_all_but(const int* keep, int count) {
  int sorted[kMaxKeptFds];
  if (count > kMaxKeptFds) count = kMaxKeptFds;  // callers assert they stay within it
  for (int i = 0; i < count; ++i) {  // insertion sort: no allocation here
    int j = i;
    for (; j > 0 && sorted[j - 1] > keep[i]; --j) sorted[j] = sorted[j - 1];
    sorted[j] = keep[i];
  }
  unsigned next = 0;
  for (int i = 0; i < count; ++i) {
    if (sorted[i] < 0) continue;
    if (sorted[i] > static_cast<int>(next)) ::close_range(next, static_cast<unsigned>(sorted[i]) - 1, 0);
    next = static_cast<unsigned>(sorted[i]) + 1;
  }
  ::close_range(next, ~0U, 0);
}

int install_filter(const sock_filter* program, size_t length, bool with_listener) {
  struct sock_fprog fprog {static_cast<unsigned short>(length), const_cast<sock_filter*>(program)};
  return static_cast<int>(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                    with_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &fprog));
}

void die_with_supervisor(int socket, const char* who) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(socket, "prctl(PR_SET_PDEATHSIG)", who, errno);
}

void join_cgroup(int socket, const int* files, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (files[i] < 0) fail(socket, "join cgroup", "no tasks file", EBADF);
    if (::write(files[i], "0", 1) != 1) fail(socket, "write(cgroup tasks, 0)", nullptr, errno);
    ::close(files[i]);
  }
}

void enter_cgroup_namespace(int socket) {
  if (::syscall(SYS_unshare, CLONE_NEWCGROUP) != 0) {
    fail(socket, "unshare(CLONE_NEWCGROUP)", nullptr, errno);
  }
}

void new_session(int socket) {
  if (::setsid() < 0) fail(socket, "setsid", nullptr, errno);
}

void bring_up_network(int socket, const char* hostname, size_t hostname_length,
                      const uint16_t* gateway_ports, size_t gateway_port_count) {
  if (!bring_up_loopback()) fail(socket, "ioctl(SIOCSIFFLAGS, lo)", nullptr, errno);
  if (::sethostname(hostname, hostname_length) != 0) fail(socket, "sethostname", nullptr, errno);
  if (gateway_port_count == 0) return;
  static_assert(kMaxGatewayFds <= kMaxPassedFds);
  int fds[kMaxGatewayFds];
  const char* step = nullptr;
  const int count = open_gateway_sockets(gateway_ports, gateway_port_count, fds, &step);
  if (count < 0) fail(socket, step, nullptr, errno);
  ControlMessage message;
  message.kind = ControlMessage::gateway_sockets;
  if (!send_message(socket, message, fds, count)) fail(socket, "sendmsg(gateway)", nullptr, errno);
  for (int i = 0; i < count; ++i) ::close(fds[i]);
}

void drop_to_sandbox_user(int socket, uint32_t uid, uint32_t gid, bool clear_groups) {
  if (const char* step = drop_privileges(uid, gid, clear_groups)) fail(socket, step, nullptr, errno);
}

int place_fds(const FdLayout& layout) {
  const int number = layout.control_fd_number;
  const int in = lift_fd(layout.stdin_read, number, layout.control);
  const int out = lift_fd(layout.stdout_write, number, layout.control);
  const int err = lift_fd(layout.stderr_write, number, layout.control);
  const int channel =
      layout.channel_write >= 0 ? lift_fd(layout.channel_write, number, layout.control) : -1;
  // In a busy service the inherited socket may already sit at its number, where dup3 fails.
  if (layout.control == number) {
    if (::fcntl(number, F_SETFD, FD_CLOEXEC) != 0) fail(number, "fcntl(control)", nullptr, errno);
  } else if (::dup3(layout.control, number, O_CLOEXEC) < 0) {
    fail(layout.control, "dup3(control)", nullptr, errno);
  }
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) {
    fail(number, "dup2(stdio)", nullptr, errno);
  }
  int first_closed = 3;
  if (channel >= 0) {  // a session driver's control channel is fd 3
    if (::dup2(channel, 3) < 0) fail(number, "dup2(control channel)", nullptr, errno);
    first_closed = 4;
  }
  if (::close_range(first_closed, number - 1, 0) != 0 || ::close_range(number + 1, ~0U, 0) != 0) {
    fail(number, "close_range", nullptr, errno);
  }
  return number;
}

void reset_signals(SignalReset which) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (which == SignalReset::sigchld_only) {
    ::signal(SIGCHLD, SIG_DFL);
    return;
  }
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) ::signal(signal, SIG_DFL);
  }
}

void set_rlimits(int socket, const RlimitSetting* settings, size_t count) {
  if (const RlimitSetting* failed = apply_rlimits(settings, count)) {
    fail(socket, "setrlimit", rlimit_name(failed->resource), errno);
  }
}

int install_filters_and_report(int socket, const sock_filter* policy, size_t policy_length,
                                const sock_filter* floor, size_t floor_length) {
  const int listener = policy != nullptr ? install_filter(policy, policy_length, true) : -1;
  if (policy != nullptr && listener < 0) fail(socket, "seccomp(policy filter)", nullptr, errno);
  if (install_filter(floor, floor_length, false) < 0) {
    fail(socket, "seccomp(floor filter)", nullptr, errno);
  }
  ControlMessage ready;
  ready.kind = ControlMessage::listeners;
  if (!send_message(socket, ready, &listener, listener >= 0 ? 1 : 0)) {
    fail(socket, "sendmsg(listener)", nullptr, errno);
  }
  return listener;
}

}  // namespace airlock::sandbox
