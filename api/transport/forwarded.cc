#include "api/transport/forwarded.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "api/transport/http_types.h"
#include "runner/egress/rules.h"

namespace airlock::api {
namespace {

// More hops than any real chain; a longer header is not walked further.
constexpr size_t kMaxHops = 32;

// An address alone (no port, no prefix), with an IPv4-mapped IPv6 one as IPv4.
std::optional<policies::Cidr> address_of(std::string_view text) {
  if (text.empty() || text.find('/') != std::string_view::npos) return std::nullopt;
  auto address = policies::Cidr::parse(text);
  if (!address) return std::nullopt;
  return egress::unmapped(*address);
}

bool trusted(const policies::Cidr& address, const std::vector<policies::Cidr>& proxies) {
  return std::any_of(proxies.begin(), proxies.end(),
                     [&](const policies::Cidr& proxy) { return proxy.contains(address); });
}

}  // namespace

std::string forwarded_client(const std::string& peer,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::vector<policies::Cidr>& trusted_proxies) {
  if (trusted_proxies.empty()) return peer;
  // "address:port"; an IPv6 address keeps its colons, the port follows the last one.
  const size_t colon = peer.rfind(':');
  const auto peer_address = address_of(colon == std::string::npos ? peer : peer.substr(0, colon));
  if (!peer_address || !trusted(*peer_address, trusted_proxies)) return peer;

  std::vector<std::string_view> hops;  // left to right, as the proxies appended them
  for (const auto& [name, value] : headers) {
    if (!equals_ignoring_case(name, "X-Forwarded-For")) continue;
    std::string_view rest = value;
    while (hops.size() <= kMaxHops) {
      const size_t comma = rest.find(',');
      hops.push_back(trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (hops.empty() || hops.size() > kMaxHops) return peer;
  // From the nearest hop back: the first one no trusted proxy holds is the client; every hop
  // trusted means the chain began at a trusted proxy, which is then the client.
  std::optional<std::string_view> client;
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    const auto address = address_of(*hop);
    if (!address) break;
    client = *hop;
    if (!trusted(*address, trusted_proxies)) break;
  }
  if (!client) return peer;
  return std::string(*client) + " (via " + peer + ")";
}

}  // namespace airlock::api
