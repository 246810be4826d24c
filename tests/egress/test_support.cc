#include "tests/egress/test_support.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <future>

#include "sandbox/gateway_sockets.h"

namespace airlock::egress::testing {

namespace {

void set_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_in ipv4(const std::string& address, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &sin.sin_addr);
  return sin;
}

// lo up, then addresses on aliases whose prefixes together cover every IPv4 address: an address
// on a loopback device makes its whole prefix local.
std::string wire_loopback() {
  sandbox::UniqueFd fd = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return std::string("socket: ") + std::strerror(errno);
  ifreq request{};
  std::strcpy(request.ifr_name, "lo");
  if (::ioctl(fd.get(), SIOCGIFFLAGS, &request) != 0) return "SIOCGIFFLAGS lo";
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(fd.get(), SIOCSIFFLAGS, &request) != 0) return "SIOCSIFFLAGS lo";
  struct Prefix {
    const char* address;
    const char* mask;
  };
  static constexpr Prefix kPrefixes[] = {
      {"198.18.0.1", "255.254.0.0"}, {"1.0.0.1", "255.0.0.0"},  {"2.0.0.1", "254.0.0.0"},
      {"4.0.0.1", "252.0.0.0"},      {"8.0.0.1", "248.0.0.0"},  {"16.0.0.1", "240.0.0.0"},
      {"32.0.0.1", "224.0.0.0"},     {"64.0.0.1", "192.0.0.0"}, {"128.0.0.1", "128.0.0.0"},
  };
  int alias = 1;
  for (const Prefix& prefix : kPrefixes) {
    ifreq address{};
    std::snprintf(address.ifr_name, IFNAMSIZ, "lo:%d", alias++);
    sockaddr_in sin = ipv4(prefix.address, 0);
    std::memcpy(&address.ifr_addr, &sin, sizeof sin);
    if (::ioctl(fd.get(), SIOCSIFADDR, &address) != 0) {
      return std::string("SIOCSIFADDR ") + prefix.address + ": " + std::strerror(errno);
    }
    sin = ipv4(prefix.mask, 0);
    std::memcpy(&address.ifr_netmask, &sin, sizeof sin);
    if (::ioctl(fd.get(), SIOCSIFNETMASK, &address) != 0) {
      return std::string("SIOCSIFNETMASK ") + prefix.address + ": " + std::strerror(errno);
    }
  }
  return {};
}

}  // namespace

bool can_make_namespaces() {
  if (::geteuid() == 0) return true;
  WARN("skipped: the egress gateway tests make network namespaces, which needs root");
  return false;
}

SandboxNet::SandboxNet() {
  std::promise<std::string> ready;
  auto ready_future = ready.get_future();
  thread_ = std::thread([this, &ready] {
    // unshare(CLONE_NEWNET) moves only this thread: the test's other threads stay on the host.
    if (::unshare(CLONE_NEWNET) != 0) {
      ready.set_value(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
    } else {
      ready.set_value(wire_loopback());
    }
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  });
  error_ = ready_future.get();
}

SandboxNet::~SandboxNet() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void SandboxNet::run(const std::function<void()>& task) {
  std::promise<void> done;
  auto finished = done.get_future();
  {
    std::lock_guard lock(mutex_);
    tasks_.emplace_back([&] {
      task();
      done.set_value();
    });
  }
  wake_.notify_all();
  finished.wait();
}

SandboxSockets SandboxNet::make_sockets(const std::vector<uint16_t>& ports) {
  SandboxSockets sockets;
  run([&] {
    for (uint16_t port : ports) {
      auto fd = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      const int one = 1;
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in sin = ipv4("0.0.0.0", port);
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
          ::listen(fd.get(), 512) != 0) {
        continue;  // the test sees the missing listener as refused connections
      }
      sockets.tcp.emplace_back(port, std::move(fd));
    }
    sockets.dns = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin = ipv4("0.0.0.0", 53);
    ::bind(sockets.dns.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    const char* step = nullptr;  // the watch the sandbox layer makes (gateway_sockets.h)
    sockets.refusals = sandbox::UniqueFd::adopt(sandbox::open_refusal_watch(&step));
  });
  return sockets;
}

Client::Client(const std::string& address, uint16_t port)
    : fd_(sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))) {
  set_timeouts(fd_.get(), 5s);
  sockaddr_in sin = ipv4(address, port);
  connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
  if (!connected_) connect_errno_ = errno;
}

size_t Client::send(const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd_.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  return sent;
}

void Client::shut_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

bool Client::read_until(const std::string& text) {
  char buffer[4096];
  while (received.find(text) == std::string::npos) {
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    received.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

std::string Client::read_all() {
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  return received;
}

std::string exchange(const std::string& address, uint16_t port, const std::string& data) {
  Client client(address, port);
  if (!client.connected())
    return "(connect failed: " + std::string(std::strerror(client.connect_errno())) + ")";
  client.send(data);
  client.shut_write();
  return client.read_all();
}

std::vector<uint8_t> ask_dns(const std::vector<uint8_t>& query, const std::string& server) {
  auto fd = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  set_timeouts(fd.get(), 2s);
  sockaddr_in resolver = ipv4(server, 53);
  ::sendto(fd.get(), query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&resolver),
           sizeof resolver);
  std::vector<uint8_t> answer(4096);
  sockaddr_in from{};
  socklen_t from_size = sizeof from;
  const ssize_t n = ::recvfrom(fd.get(), answer.data(), answer.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_size);
  // Like libc, take only an answer from the address asked.
  const bool from_server =
      from.sin_addr.s_addr == resolver.sin_addr.s_addr && from.sin_port == resolver.sin_port;
  answer.resize(n > 0 && from_server ? static_cast<size_t>(n) : 0);
  return answer;
}

namespace {

void respond_ok(int fd, std::string& received) {
  char buffer[4096];
  while (received.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
}

}  // namespace

Upstream::Upstream(const std::string& address, Respond respond)
    : address_(address), respond_(respond ? std::move(respond) : Respond(respond_ok)) {
  listener_ = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin = ipv4(address, 0);
  socklen_t size = sizeof sin;
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      ::listen(listener_.get(), 128) != 0 ||
      ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sin), &size) != 0) {
    FAIL("upstream on " << address << ": " << std::strerror(errno));
  }
  port_ = ntohs(sin.sin_port);
  acceptor_ = std::thread([this] {
    while (true) {
      pollfd waiting{listener_.get(), POLLIN, 0};
      ::poll(&waiting, 1, 50);
      {
        std::lock_guard lock(mutex_);
        if (stop_) return;
      }
      if (!(waiting.revents & POLLIN)) continue;
      const int accepted = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted < 0) continue;
      std::lock_guard lock(mutex_);
      ++connections_;
      workers_.emplace_back([this, fd = sandbox::UniqueFd::adopt(accepted)] {
        set_timeouts(fd.get(), 5s);
        std::string received;
        respond_(fd.get(), received);
        std::lock_guard done(mutex_);
        requests_.push_back(received);
      });
    }
  });
}

Upstream::~Upstream() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  acceptor_.join();
  for (auto& worker : workers_) worker.join();
}

std::string Upstream::address_and_port() const {
  return address_ + ":" + std::to_string(port_);
}

std::vector<std::string> Upstream::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

size_t Upstream::connections() {
  std::lock_guard lock(mutex_);
  return connections_;
}

}  // namespace airlock::egress::testing
