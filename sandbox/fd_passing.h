// Messages that carry fds over a unix socket (SCM_RIGHTS): the one way the supervisor, a cold
// child and a fork server's zygote and children pass them. No allocation, so children may use it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

namespace airlock::sandbox {

// The most fds one message carries: a fork request's five, or a sandbox's gateway sockets (up to
// 16 IPv4 and 16 IPv6 listeners, the DNS socket and the refusal watch).
inline constexpr int kMaxPassedFds = 34;

// Sends parts with fd_count (at most kMaxPassedFds) fds attached; sendmsg's result, retried on
// EINTR. flags are sendmsg's (callers pass MSG_NOSIGNAL: a peer that is gone is an error, not a
// signal).
ssize_t send_with_fds(int socket, const iovec* parts, int part_count, const int* fds, int fd_count,
                      int flags);

struct Received {
  ssize_t bytes = 0;       // recvmsg's result: 0 when the peer has closed, -1 with errno set
  int fd_count = 0;        // fds stored for the caller, who owns them now
  int fds_closed = 0;      // fds beyond what the caller takes, closed here rather than leaked
  bool truncated = false;  // the kernel cut the bytes or the fds (MSG_TRUNC, MSG_CTRUNC)
};

// Receives one message into parts and up to max_fds of its fds into fds, always close-on-exec;
// retried on EINTR. flags are recvmsg's (e.g. MSG_DONTWAIT).
Received receive_with_fds(int socket, iovec* parts, int part_count, int* fds, int max_fds,
                          int flags);

}  // namespace airlock::sandbox
