#include "runner/egress/host_addresses.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstring>

#include "runner/egress/rules.h"

namespace airlock::egress {

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

HostAddresses::HostAddresses(Reader read, std::chrono::milliseconds refresh_after)
    : read_(std::move(read)), refresh_after_(refresh_after) {
  refreshed(read_());
}

bool HostAddresses::contains(const policies::Cidr& address) {
  std::shared_ptr<const std::vector<policies::Cidr>> known;
  {
    std::lock_guard lock(mutex_);
    known = known_;
    if (!refreshing_ && std::chrono::steady_clock::now() - read_at_ >= refresh_after_) {
      refreshing_ = true;
      boost::asio::post(refresher_, [this] { refreshed(read_()); });
    }
  }
  if (!known) return true;
  const policies::Cidr judged = unmapped(address);
  return std::any_of(known->begin(), known->end(),
                     [&](const policies::Cidr& own) { return own.contains(judged); });
}

void HostAddresses::refreshed(std::optional<std::vector<policies::Cidr>> read) {
  std::lock_guard lock(mutex_);
  // A failed read keeps the last good list, and is tried again after refresh_after.
  if (read) known_ = std::make_shared<const std::vector<policies::Cidr>>(std::move(*read));
  read_at_ = std::chrono::steady_clock::now();
  refreshing_ = false;
}

}  // namespace airlock::egress
