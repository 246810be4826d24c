#include "policies/egress.h"

#include <arpa/inet.h>

#include <cstring>

namespace airlock::policies {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string address(text.substr(0, slash));
  Cidr cidr;
  cidr.v6 = address.find(':') != std::string::npos;
  if (::inet_pton(cidr.v6 ? AF_INET6 : AF_INET, address.c_str(), cidr.address.data()) != 1) {
    return std::nullopt;
  }
  const int bits = cidr.v6 ? 128 : 32;
  cidr.prefix_length = static_cast<uint8_t>(bits);
  if (slash != std::string_view::npos) {
    const std::string_view length = text.substr(slash + 1);
    if (length.empty() || length.size() > 3) return std::nullopt;
    int value = 0;
    for (char c : length) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    if (value > bits) return std::nullopt;
    cidr.prefix_length = static_cast<uint8_t>(value);
  }
  // Host bits must be zero: "10.0.0.1/8" is more likely a mistake than a network.
  for (int bit = cidr.prefix_length; bit < bits; ++bit) {
    if (cidr.address[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  }
  return cidr;
}

bool Cidr::contains(const Cidr& host) const {
  if (host.v6 != v6) return false;
  for (int bit = 0; bit < prefix_length; ++bit) {
    const uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((address[bit / 8] & mask) != (host.address[bit / 8] & mask)) return false;
  }
  return true;
}

std::string Cidr::text() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, address.data(), buffer, sizeof buffer);
  const int bits = v6 ? 128 : 32;
  std::string result = buffer;
  if (prefix_length != bits) result += "/" + std::to_string(prefix_length);
  return result;
}

bool domain_matches(const std::string& pattern, std::string_view name) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  }
  return name == pattern;
}

}  // namespace airlock::policies
