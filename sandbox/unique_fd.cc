#include "sandbox/unique_fd.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace airlock::sandbox {

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Expected<UniqueFd> open_fd(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno_error("open(\"" + path + "\")");
  return UniqueFd::adopt(fd);
}

Expected<Pipe> make_pipe(int extra_flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | extra_flags) != 0) return errno_error("pipe2");
  return Pipe{UniqueFd::adopt(fds[0]), UniqueFd::adopt(fds[1])};
}

Expected<Pipe> make_pipe_nonblocking_end(bool read_end_nonblocking) {
  auto pipe = make_pipe();
  if (!pipe) return pipe;
  int fd = read_end_nonblocking ? pipe->read_end.get() : pipe->write_end.get();
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return errno_error("fcntl");
  return pipe;
}

Expected<std::pair<UniqueFd, UniqueFd>> make_socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return errno_error("socketpair");
  }
  return std::pair{UniqueFd::adopt(fds[0]), UniqueFd::adopt(fds[1])};
}

Expected<UniqueFd> make_eventfd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return errno_error("eventfd");
  return UniqueFd::adopt(fd);
}

Expected<UniqueFd> duplicate_fd(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return errno_error("fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd::adopt(copy);
}

Expected<UniqueFd> make_epoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return errno_error("epoll_create1");
  return UniqueFd::adopt(fd);
}

Expected<UniqueFd> make_timerfd() {
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return errno_error("timerfd_create");
  return UniqueFd::adopt(fd);
}

Status write_all(int fd, std::string_view data, const char* what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(std::string("write(") + what + ")");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Expected<std::string> read_file(const std::string& path) {
  auto fd = open_fd(path, O_RDONLY);
  if (!fd) return fd.error();
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read(\"" + path + "\")");
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

Status write_file(const std::string& path, std::string_view data) {
  auto fd = open_fd(path, O_WRONLY);
  if (!fd) return fd.error();
  ssize_t n = ::write(fd->get(), data.data(), data.size());
  if (n < 0) return errno_error("write(\"" + path + "\", \"" + std::string(data.substr(0, 40)) + "\")");
  if (static_cast<size_t>(n) != data.size()) {
    return SetupError{"short write to \"" + path + "\"", 0};
  }
  return {};
}

}  // namespace airlock::sandbox
