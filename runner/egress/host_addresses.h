// This host's own addresses, which the gateway does not connect to for a sandbox unless a rule
// names the address exactly: they reach the host's own services (airlock's API among them), which
// a broad rule such as 0.0.0.0/0 or 2000::/3 was never meant to open.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "policies/egress.h"

namespace airlock::egress {

// The addresses on this host's interfaces (in the calling thread's network namespace), or
// nothing when getifaddrs fails (out of descriptors, say).
std::optional<std::vector<policies::Cidr>> read_host_addresses();

// That list, kept fresh off the gateway's I/O thread: getifaddrs is a netlink dump of every
// interface, which on a host with many (a Kubernetes node's veths) takes milliseconds, and the
// I/O thread carries every sandbox's traffic.
class HostAddresses {
 public:
  using Reader = std::function<std::optional<std::vector<policies::Cidr>>()>;
  // Reads once now, on the caller's thread; later reads run on a thread of this object's own.
  explicit HostAddresses(Reader read = read_host_addresses,
                         std::chrono::milliseconds refresh_after = std::chrono::seconds(2));

  // Whether address (an IPv4-mapped one as IPv4) is one of them. Never waits for the kernel: a
  // list older than refresh_after is read again in the background while this answers from the
  // last one. With no list ever read, every address might be the host's (true: fail closed).
  // Any thread.
  bool contains(const policies::Cidr& address);

 private:
  void refreshed(std::optional<std::vector<policies::Cidr>> read);

  const Reader read_;
  const std::chrono::milliseconds refresh_after_;
  std::mutex mutex_;
  std::shared_ptr<const std::vector<policies::Cidr>> known_;  // the last good list
  std::chrono::steady_clock::time_point read_at_;
  bool refreshing_ = false;
  boost::asio::thread_pool refresher_{1};  // last: joined before the rest goes
};

}  // namespace airlock::egress
