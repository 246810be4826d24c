// Messages with fds (fd_passing.h) over a socketpair, as the supervisor, children and zygote use
// them: what arrives, what is closed, and how truncation and the peer's close are told.
#include "sandbox/fd_passing.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

struct Sockets {
  UniqueFd sender, receiver;
};

Sockets seqpacket_pair() {
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) == 0);
  return {UniqueFd::adopt(ends[0]), UniqueFd::adopt(ends[1])};
}

// Non-blocking, so that a read with a write end still open somewhere says EAGAIN, not waits.
Pipe nonblocking_pipe() {
  auto pipe = make_pipe(O_NONBLOCK);
  REQUIRE(pipe.ok());
  return std::move(pipe.value());
}

ssize_t send_text(int socket, const char* text, const int* fds, int fd_count) {
  struct iovec io {const_cast<char*>(text), std::strlen(text)};
  return send_with_fds(socket, &io, 1, fds, fd_count, MSG_NOSIGNAL);
}

template <size_t N>
Received receive_text(int socket, char (&text)[N], int* fds, int max_fds) {
  struct iovec io {text, N};
  return receive_with_fds(socket, &io, 1, fds, max_fds, 0);
}

}  // namespace

TEST_CASE("fds and bytes arrive together") {
  Sockets sockets = seqpacket_pair();
  Pipe pipe = nonblocking_pipe();
  const int sent[] = {pipe.write_end.get()};
  REQUIRE(send_text(sockets.sender.get(), "hello", sent, 1) == 5);

  char text[16] = {};
  int fds[2] = {-1, -1};
  const Received received = receive_text(sockets.receiver.get(), text, fds, 2);
  CHECK(received.bytes == 5);
  CHECK(std::string(text) == "hello");
  REQUIRE(received.fd_count == 1);
  CHECK(received.fds_closed == 0);
  CHECK_FALSE(received.truncated);
  UniqueFd writer = UniqueFd::adopt(fds[0]);
  CHECK((::fcntl(writer.get(), F_GETFD) & FD_CLOEXEC) != 0);
  REQUIRE(::write(writer.get(), "x", 1) == 1);  // the same pipe, through the passed fd
  char byte = 0;
  CHECK(::read(pipe.read_end.get(), &byte, 1) == 1);
  CHECK(byte == 'x');
}

TEST_CASE("fds beyond what the receiver takes are closed, not leaked") {
  Sockets sockets = seqpacket_pair();
  Pipe pipe = nonblocking_pipe();
  const int sent[] = {pipe.write_end.get(), pipe.write_end.get(), pipe.write_end.get()};
  REQUIRE(send_text(sockets.sender.get(), "three", sent, 3) == 5);
  pipe.write_end.reset();

  char text[16] = {};
  int fds[1] = {-1};
  const Received received = receive_text(sockets.receiver.get(), text, fds, 1);
  CHECK(received.fd_count == 1);
  CHECK(received.fds_closed == 2);
  ::close(fds[0]);
  // Every write end is closed now, or the read would say EAGAIN rather than EOF.
  char byte = 0;
  CHECK(::read(pipe.read_end.get(), &byte, 1) == 0);
}

TEST_CASE("a truncated message is reported") {
  Sockets sockets = seqpacket_pair();
  REQUIRE(send_text(sockets.sender.get(), "longer than four", nullptr, 0) == 16);
  char text[4] = {};
  const Received received = receive_text(sockets.receiver.get(), text, nullptr, 0);
  CHECK(received.bytes == 4);
  CHECK(received.truncated);
}

TEST_CASE("the peer's close is 0") {
  Sockets sockets = seqpacket_pair();
  sockets.sender.reset();
  char text[4] = {};
  int fds[1] = {-1};
  const Received received = receive_text(sockets.receiver.get(), text, fds, 1);
  CHECK(received.bytes == 0);
  CHECK(received.fd_count == 0);
}

TEST_CASE("more fds than one message carries are refused") {
  Sockets sockets = seqpacket_pair();
  int fds[kMaxPassedFds + 1];
  for (int& fd : fds) fd = sockets.sender.get();
  errno = 0;
  CHECK(send_text(sockets.sender.get(), "many", fds, kMaxPassedFds + 1) == -1);
  CHECK(errno == EINVAL);
}

}  // namespace airlock::sandbox
