#include "sandbox/fd_passing.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::sandbox {

ssize_t send_with_fds(int socket, const iovec* parts, int part_count, const int* fds, int fd_count,
                      int flags) {
  if (fd_count > kMaxPassedFds) {
    errno = EINVAL;
    return -1;
  }
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  struct msghdr header {};
  header.msg_iov = const_cast<iovec*>(parts);
  header.msg_iovlen = static_cast<size_t>(part_count);
  if (fd_count > 0) {
    header.msg_control = control;
    header.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&header);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
  }
  ssize_t sent;
  do {
    sent = ::sendmsg(socket, &header, flags);
  } while (sent < 0 && errno == EINTR);
  return sent;
}

Received receive_with_fds(int socket, iovec* parts, int part_count, int* fds, int max_fds,
                          int flags) {
  // Room for more than the caller takes: a sender's extra fds then arrive, and are closed below,
  // instead of counting only as a cut message.
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  struct msghdr header {};
  header.msg_iov = parts;
  header.msg_iovlen = static_cast<size_t>(part_count);
  Received received;
  do {
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    received.bytes = ::recvmsg(socket, &header, flags | MSG_CMSG_CLOEXEC);
  } while (received.bytes < 0 && errno == EINTR);
  if (received.bytes < 0) return received;
  received.truncated = (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (received.fd_count < max_fds) {
        fds[received.fd_count++] = fd;
      } else {
        ::close(fd);
        ++received.fds_closed;
      }
    }
  }
  return received;
}

}  // namespace airlock::sandbox
