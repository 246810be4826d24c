// Steps shared by a cold sandbox's child (process.cc) and a forked one (fork_child.cc): only
// syscalls and stack memory, since both run where allocation is not safe.
#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "sandbox/fd_passing.h"
#include "sandbox/process.h"
#include "sandbox/seccomp.h"

namespace airlock::sandbox {
namespace {

void append(char* buffer, size_t size, const char* text) {
  size_t used = std::strlen(buffer);
  while (*text != '\0' && used + 1 < size) buffer[used++] = *text++;
  buffer[used] = '\0';
}

}  // namespace

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
  int sorted[16];
  if (count > 16) count = 16;
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

}  // namespace airlock::sandbox
