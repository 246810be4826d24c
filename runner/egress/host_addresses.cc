#include "runner/egress/host_addresses.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "runner/egress/rules.h"

namespace airlock::egress {

namespace {

constexpr std::chrono::seconds kRefreshAfter{2};

// Nothing when getifaddrs fails (out of descriptors, say).
std::optional<std::vector<policies::Cidr>> read_host_addresses() {
  std::vector<policies::Cidr> addresses;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    policies::Cidr address;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      std::memcpy(address.address.data(), &v4->sin_addr, 4);
      address.prefix_length = 32;
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      std::memcpy(address.address.data(), &v6->sin6_addr, 16);
      address.v6 = true;
      address.prefix_length = 128;
    } else {
      continue;
    }
    addresses.push_back(address);
  }
  ::freeifaddrs(list);
  return addresses;
}

}  // namespace

bool is_host_address(const policies::Cidr& address) {
  static std::mutex mutex;
  static std::optional<std::vector<policies::Cidr>> known;
  static std::chrono::steady_clock::time_point read_at;
  const policies::Cidr judged = unmapped(address);
  std::lock_guard lock(mutex);
  const auto now = std::chrono::steady_clock::now();
  if (!known || now - read_at >= kRefreshAfter) {
    if (auto read = read_host_addresses()) {
      known = std::move(read);
      read_at = now;
    }
  }
  // Never read: every address might be the host's own (fail closed); else the last good list.
  if (!known) return true;
  return std::any_of(known->begin(), known->end(),
                     [&](const policies::Cidr& own) { return own.contains(judged); });
}

}  // namespace airlock::egress
