// Shared pieces of the egress gateway tests: a "sandbox side" thread in a network namespace of its
// own, wired the way the sandbox layer wires one (only loopback, every IPv4 address local, the
// listeners and the DNS socket made inside it); blocking clients that run there; upstream servers
// on the host's 127.0.0.x.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runner/egress/gateway.h"
#include "sandbox/unique_fd.h"

namespace airlock::egress::testing {

using namespace std::chrono_literals;

// True when the tests may make network namespaces (root); else false after a WARN with the reason.
bool can_make_namespaces();

// A thread in a fresh network namespace: lo up, 198.18.0.1/15 and enough prefixes that every
// IPv4 address is local. run() executes a task there and waits for it.
class SandboxNet {
 public:
  SandboxNet();
  ~SandboxNet();
  SandboxNet(const SandboxNet&) = delete;
  SandboxNet& operator=(const SandboxNet&) = delete;

  const std::string& error() const { return error_; }  // empty when the namespace is ready
  void run(const std::function<void()>& task);
  // Listeners on 0.0.0.0:port for each port and a UDP socket on 0.0.0.0:53, made inside.
  SandboxSockets make_sockets(const std::vector<uint16_t>& ports);

 private:
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::string error_;
};

// A blocking TCP client with 5 s timeouts; make and use it on a SandboxNet's thread.
class Client {
 public:
  Client(const std::string& address, uint16_t port);
  bool connected() const { return connected_; }
  int connect_errno() const { return connect_errno_; }
  size_t send(const std::string& data);  // how much went before an error or the 5 s timeout
  void shut_write();
  // Reads until text has arrived (true) or the peer closes or 5 s pass (false).
  bool read_until(const std::string& text);
  std::string read_all();  // until the peer closes (or 5 s of silence)
  std::string received;    // everything read so far

 private:
  sandbox::UniqueFd fd_;
  bool connected_ = false;
  int connect_errno_ = 0;
};

// Connects, sends, half-closes and reads everything: one HTTP request or TLS hello's answer.
std::string exchange(const std::string& address, uint16_t port, const std::string& data);

// Sends a DNS query to server:53 and returns the answer: empty after 2 s of silence, or when it
// comes from another address (libc would drop it).
std::vector<uint8_t> ask_dns(const std::vector<uint8_t>& query,
                             const std::string& server = "198.18.0.1");

// A TCP server on 127.0.0.x (host namespace), a thread per connection. By default it reads until
// an HTTP head or EOF arrives, answers 200 "ok" and closes; respond can be replaced.
class Upstream {
 public:
  using Respond = std::function<void(int fd, std::string& received)>;
  explicit Upstream(const std::string& address, Respond respond = {});
  ~Upstream();
  uint16_t port() const { return port_; }
  std::string address_and_port() const;  // for GatewayConfig::hosts
  std::vector<std::string> requests();   // what each connection sent, in order of closing
  size_t connections();

 private:
  std::string address_;
  uint16_t port_ = 0;
  Respond respond_;
  sandbox::UniqueFd listener_;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::vector<std::string> requests_;
  size_t connections_ = 0;
  bool stop_ = false;
};

}  // namespace airlock::egress::testing
