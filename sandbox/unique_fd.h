// UniqueFd: the single owner of a file descriptor, made only by checked factories.
#pragma once

#include <string>
#include <utility>

#include "sandbox/error.h"

namespace airlock::sandbox {

class UniqueFd {
 public:
  UniqueFd() = default;
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // Takes ownership of an fd a syscall just returned (>= 0).
  static UniqueFd adopt(int fd) { return UniqueFd(fd); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset();

 private:
  explicit UniqueFd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

// open(2) with O_CLOEXEC added.
Expected<UniqueFd> open_fd(const std::string& path, int flags, int mode = 0);
// pipe2(2) with O_CLOEXEC plus `extra_flags` (e.g. O_NONBLOCK) on both ends.
Expected<Pipe> make_pipe(int extra_flags = 0);
// A pipe between the supervisor and a sandboxed program: the supervisor's end (the read end
// when read_end_nonblocking) non-blocking, the program's blocking, as it expects.
Expected<Pipe> make_pipe_nonblocking_end(bool read_end_nonblocking);
// A close-on-exec seqpacket socket pair, for passing fds and small messages.
Expected<std::pair<UniqueFd, UniqueFd>> make_socketpair();
Expected<UniqueFd> make_eventfd();
// A close-on-exec duplicate of fd, which the caller may then close.
Expected<UniqueFd> duplicate_fd(int fd);
Expected<UniqueFd> make_epoll();
// A monotonic timerfd, non-blocking.
Expected<UniqueFd> make_timerfd();

// Writes all of data, retrying on EINTR and short writes. Blocking fds only.
Status write_all(int fd, std::string_view data, const char* what);
// Reads a whole (small) file, e.g. a cgroup control file.
Expected<std::string> read_file(const std::string& path);
// Writes a whole (small) file with one write, e.g. a cgroup control file or uid_map.
Status write_file(const std::string& path, std::string_view data);

}  // namespace airlock::sandbox
