// The steps both kinds of sandbox child take before the program runs (child_steps.h), each run in
// a fork()ed test child that reports what it sees over a socket. No root needed.
#include "sandbox/child_steps.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <string>

#include "sandbox/process.h"

namespace airlock::sandbox {
namespace {

// Runs steps(socket) in a forked child and returns what the child sent on socket (one message),
// or the failed step's text if it sent a setup_failed message.
template <typename Steps>
std::string in_child(Steps steps) {
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ends[0]);
    steps(ends[1]);
    ::_exit(0);
  }
  ::close(ends[1]);
  char message[512] = {};
  const ssize_t n = ::recv(ends[0], message, sizeof message, 0);
  ::close(ends[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ControlMessage failed;
  if (n == static_cast<ssize_t>(sizeof failed)) {
    std::memcpy(&failed, message, sizeof failed);
    if (failed.kind == ControlMessage::setup_failed) return std::string("failed: ") + failed.text;
  }
  return n > 0 ? std::string(message, static_cast<size_t>(n)) : std::string();
}

// Appends to the child's report without allocating.
struct Report {
  char text[256] = {};
  size_t used = 0;
  template <typename... Args>
  void add(const char* format, Args... args) {
    used += static_cast<size_t>(std::snprintf(text + used, sizeof text - used, format, args...));
  }
  void send(int socket) const { ::send(socket, text, used, MSG_NOSIGNAL); }
};

ino_t inode(int fd) {
  struct stat status {};
  ::fstat(fd, &status);
  return status.st_ino;
}

}  // namespace

TEST_CASE("die_with_supervisor arms SIGKILL at the parent's end, and new_session leads a session") {
  const std::string report = in_child([](int socket) {
    die_with_supervisor(socket, nullptr);
    new_session(socket);
    int signal = 0;
    ::prctl(PR_GET_PDEATHSIG, &signal);
    Report seen;
    seen.add("%s, %s", signal == SIGKILL ? "SIGKILL" : "no signal",
             ::getsid(0) == ::getpid() ? "session leader" : "not a leader");
    seen.send(socket);
  });
  CHECK(report == "SIGKILL, session leader");
}

TEST_CASE("place_fds leaves only 0-3 and the control socket at its number") {
  const std::string report = in_child([](int socket) {
    int stdio[2], channel[2];
    if (::pipe(stdio) != 0 || ::pipe(channel) != 0) ::_exit(1);
    if (::dup(stdio[0]) < 0) ::_exit(1);  // an fd no step asked for
    const ino_t channel_inode = inode(channel[1]);
    const int control = place_fds({stdio[0], stdio[1], stdio[1], channel[1], socket, 64});
    Report seen;
    for (int fd = 0; fd < 128; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) seen.add("%d ", fd);
    }
    seen.add("control %d", control);
    if ((::fcntl(control, F_GETFD) & FD_CLOEXEC) != 0) seen.add(" cloexec");
    if (inode(3) == channel_inode) seen.add(" channel at 3");
    seen.send(control);
  });
  CHECK(report == "0 1 2 3 64 control 64 cloexec channel at 3");
}

// A busy service has hundreds of fds open: the control socket a child inherits may already sit
// at its number (dup3 refuses to copy an fd onto itself: CI once saw "dup3(control): EINVAL").
TEST_CASE("place_fds keeps a control socket that is already at its number") {
  const std::string report = in_child([](int socket) {
    int stdio[2];
    if (::pipe(stdio) != 0 || ::dup2(socket, 64) != 64) ::_exit(1);
    ::close(socket);
    const int control = place_fds({stdio[0], stdio[1], stdio[1], -1, 64, 64});
    Report seen;
    for (int fd = 0; fd < 128; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) seen.add("%d ", fd);
    }
    if ((::fcntl(control, F_GETFD) & FD_CLOEXEC) != 0) seen.add("cloexec");
    seen.send(control);
  });
  CHECK(report == "0 1 2 64 cloexec");
}

TEST_CASE("place_fds without a channel closes fd 3 too") {
  const std::string report = in_child([](int socket) {
    int stdio[2];
    if (::pipe(stdio) != 0) ::_exit(1);
    const int control = place_fds({stdio[0], stdio[1], stdio[1], -1, socket, 64});
    Report seen;
    for (int fd = 0; fd < 128; ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) seen.add("%d ", fd);
    }
    seen.send(control);
  });
  CHECK(report == "0 1 2 64 ");
}

TEST_CASE("reset_signals restores default handlers and an empty mask") {
  auto reset = [](SignalReset which) {
    return in_child([which](int socket) {
      ::signal(SIGUSR1, SIG_IGN);
      ::signal(SIGCHLD, SIG_IGN);
      sigset_t blocked;
      sigemptyset(&blocked);
      sigaddset(&blocked, SIGUSR2);
      ::sigprocmask(SIG_BLOCK, &blocked, nullptr);
      reset_signals(which);
      Report seen;
      struct sigaction action {};
      ::sigaction(SIGUSR1, nullptr, &action);
      seen.add("SIGUSR1 %s", action.sa_handler == SIG_DFL ? "default" : "ignored");
      ::sigaction(SIGCHLD, nullptr, &action);
      seen.add(", SIGCHLD %s", action.sa_handler == SIG_DFL ? "default" : "ignored");
      sigset_t mask;
      ::sigprocmask(SIG_SETMASK, nullptr, &mask);
      seen.add(", SIGUSR2 %s", sigismember(&mask, SIGUSR2) ? "blocked" : "unblocked");
      seen.send(socket);
    });
  };
  CHECK(reset(SignalReset::all) == "SIGUSR1 default, SIGCHLD default, SIGUSR2 unblocked");
  // A forked child's interpreter keeps its own handlers.
  CHECK(reset(SignalReset::sigchld_only) == "SIGUSR1 ignored, SIGCHLD default, SIGUSR2 unblocked");
}

TEST_CASE("close_all_but keeps exactly the listed fds") {
  const std::string report = in_child([](int socket) {
    int first[2], second[2];
    if (::pipe(first) != 0 || ::pipe(second) != 0) ::_exit(1);
    const int keep[] = {second[1], -1, socket};
    close_all_but(keep, 3);
    Report seen;
    seen.add("%s %s %s %s", ::fcntl(first[0], F_GETFD) < 0 ? "closed" : "open",
             ::fcntl(first[1], F_GETFD) < 0 ? "closed" : "open",
             ::fcntl(second[0], F_GETFD) < 0 ? "closed" : "open",
             ::fcntl(second[1], F_GETFD) < 0 ? "closed" : "open");
    seen.send(socket);
  });
  CHECK(report == "closed closed closed open");
}

TEST_CASE("a failed rlimit step reports its resource to the supervisor") {
  const std::string report = in_child([](int socket) {
    const RlimitSetting above_hard[] = {{RLIMIT_FSIZE, 2, 1}};
    set_rlimits(socket, above_hard, 1);
  });
  CHECK(report == "failed: setrlimit(\"RLIMIT_FSIZE\")");
}

}  // namespace airlock::sandbox
