#include "runner/egress/rules.h"

#include <algorithm>

namespace airlock::egress {

namespace {

bool lists_port(const policies::EgressRule& rule, uint16_t port) {
  return std::find(rule.ports.begin(), rule.ports.end(), port) != rule.ports.end();
}

bool within(const policies::Cidr& address, const char* network) {
  return policies::Cidr::parse(network)->contains(address);
}

}  // namespace

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string result(name);
  for (char& c : result) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return result;
}

bool name_allowed(const policies::Egress& egress, std::string_view name) {
  const std::string normal = normalize_name(name);
  return std::any_of(egress.allow.begin(), egress.allow.end(), [&](const auto& rule) {
    return !rule.domain.empty() && policies::domain_matches(rule.domain, normal);
  });
}

Verdict check_name(const policies::Egress& egress, std::string_view name, uint16_t port) {
  const std::string normal = normalize_name(name);
  bool name_matched = false;
  // The most specific rule decides (an exact name, else the longest wildcard), whatever the
  // order: its headers, not a broader rule's, are the ones this name gets.
  const policies::EgressRule* best = nullptr;
  for (const auto& rule : egress.allow) {
    if (rule.domain.empty() || !policies::domain_matches(rule.domain, normal)) continue;
    name_matched = true;
    if (!lists_port(rule, port)) continue;
    const bool exact = rule.domain == normal;
    if (best == nullptr || exact || (best->domain != normal && rule.domain.size() > best->domain.size())) {
      best = &rule;
    }
  }
  if (best != nullptr) return {best, {}};
  if (!name_matched) return {nullptr, "not in the policy's egress list"};
  return {nullptr, "port " + std::to_string(port) + " is not allowed for " + normal};
}

Verdict check_address(const policies::Egress& egress, const policies::Cidr& address,
                      uint16_t port) {
  for (const auto& rule : egress.allow) {
    if (rule.cidr && rule.cidr->contains(address) && lists_port(rule, port)) return {&rule, {}};
  }
  return {nullptr, "a raw address no rule allows"};
}

namespace {

struct SpecialRange {
  const char* network;
  const char* kind;
};
constexpr SpecialRange kSpecialRanges[] = {
    {"0.0.0.0/8", "unspecified"},      {"127.0.0.0/8", "loopback"},
    {"10.0.0.0/8", "private"},         {"172.16.0.0/12", "private"},
    {"192.168.0.0/16", "private"},     {"100.64.0.0/10", "shared (CGNAT)"},
    {"169.254.0.0/16", "link-local"},  {"198.18.0.0/15", "benchmarking (the gateway's own)"},
    {"192.0.0.0/24", "IETF protocol"}, {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"},       {"::/128", "unspecified"},
    {"::1/128", "loopback"},           {"fc00::/7", "private"},
    {"fe80::/10", "link-local"},       {"ff00::/8", "multicast"},
    {"64:ff9b::/96", "NAT64"},         {"64:ff9b:1::/48", "NAT64 (local use)"},
    {"::/96", "IPv4-compatible"},      {"fec0::/10", "site-local"},
    // Tunnels whose addresses carry an IPv4 address (a private one, for all a rule knows).
    {"2002::/16", "6to4"},             {"2001::/32", "Teredo"},
};

const SpecialRange* special_range(const policies::Cidr& address) {
  for (const SpecialRange& range : kSpecialRanges) {
    if (within(address, range.network)) return &range;
  }
  return nullptr;
}

}  // namespace

policies::Cidr unmapped(const policies::Cidr& address) {
  if (!address.v6 || !within(address, "::ffff:0:0/96")) return address;
  policies::Cidr v4;
  std::copy(address.address.begin() + 12, address.address.end(), v4.address.begin());
  v4.prefix_length = 32;
  return v4;
}

bool special_address_allowed(const policies::Egress& egress, const policies::Cidr& address,
                             uint16_t port) {
  const policies::Cidr judged = unmapped(address);
  const SpecialRange* range = special_range(judged);
  if (range == nullptr) return true;
  const policies::Cidr network = *policies::Cidr::parse(range->network);
  // "0.0.0.0/0" means the internet, not the host's loopback: the rule must lie within the range.
  return std::any_of(egress.allow.begin(), egress.allow.end(), [&](const auto& rule) {
    return rule.cidr && rule.cidr->contains(judged) && lists_port(rule, port) &&
           rule.cidr->v6 == network.v6 && rule.cidr->prefix_length >= network.prefix_length &&
           network.contains(*rule.cidr);
  });
}

std::optional<std::string> special_address_kind(const policies::Cidr& address) {
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
  const SpecialRange* range = special_range(unmapped(address));
  if (range == nullptr) return std::nullopt;
  return range->kind;
}

std::optional<std::string> upstream_refusal(const policies::Egress& egress,
                                            const policies::Cidr& address, uint16_t port,
                                            bool host_local) {
  if (const auto kind = special_address_kind(address);
      kind && !special_address_allowed(egress, address, port)) {
    return kind;
  }
  if (!host_local) return std::nullopt;
  const uint8_t exact = address.v6 ? 128 : 32;
  const bool named = std::any_of(egress.allow.begin(), egress.allow.end(), [&](const auto& rule) {
    return rule.cidr && rule.cidr->prefix_length == exact && rule.cidr->contains(address) &&
           std::find(rule.ports.begin(), rule.ports.end(), port) != rule.ports.end();
  });
  if (named) return std::nullopt;
  return kHostLocal;
}

std::string address_of_kind(const std::string& kind) {
  const bool vowel = !kind.empty() && std::string_view("aeiouAEIOU").find(kind[0]) !=
                                          std::string_view::npos;
  return (vowel ? "an " : "a ") + kind + " address";
}

bool is_hostname(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

std::string printable(std::string_view text) {
  constexpr size_t kMaxSize = 256;
  std::string result;
  for (char c : text.substr(0, kMaxSize)) result += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kMaxSize) result += "...";
  return result;
}

std::string destination_text(std::string_view host, uint16_t port) {
  std::string text;
  if (host.find(':') != std::string_view::npos) {
    text = "[" + std::string(host) + "]";
  } else {
    text = host;
  }
  return text + ":" + std::to_string(port);
}

}  // namespace airlock::egress
