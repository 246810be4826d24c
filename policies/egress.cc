#include "policies/egress.h"

#include <arpa/inet.h>

#include <algorithm>
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

std::string normalize_domain(std::string_view domain) {
  std::string out(domain);
  if (!out.empty() && out.back() == '.') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

std::string domain_problem(std::string_view domain) {
  if (domain.starts_with("*.")) {
    if (domain.substr(2).find('*') != std::string_view::npos) {
      return "may hold '*' only once, as a leading '*.'";
    }
    const std::string below = domain_problem(domain.substr(2));
    return below.empty() ? "" : below + " after '*.'";
  }
  if (domain == "*") return "would reach every name; list the domains the program needs";
  if (domain.find('*') != std::string_view::npos) {
    return "may hold '*' only as a leading '*.' (\"*.example.com\")";
  }
  if (domain.empty()) return "is empty";
  if (domain.size() > 253) return "is longer than 253 characters";
  size_t labels = 0;
  size_t start = 0;
  std::string_view last;
  while (start <= domain.size()) {
    const size_t end = std::min(domain.find('.', start), domain.size());
    const std::string_view label = domain.substr(start, end - start);
    if (label.empty()) return "has an empty label";
    if (label.size() > 63) return "has a label longer than 63 characters";
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return "holds '" + std::string(1, c) + "'; a name has letters, digits, '-' and '.'";
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return "has a label that starts or ends with '-'";
    }
    ++labels;
    last = label;
    start = end + 1;
  }
  if (labels < 2) return "needs at least two labels (\"example.com\")";
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "is an address, not a name; write it as cidr";
  }
  return "";
}

std::string destination_text(const EgressRule& rule) {
  return rule.cidr ? rule.cidr->text() : rule.domain;
}

std::optional<std::string> narrow_egress(
    Egress& egress, const std::optional<std::vector<std::string>>& destinations,
    const std::string& policy_name) {
  if (!destinations) return std::nullopt;
  auto named = [](const EgressRule& rule, const std::string& entry) {
    if (rule.cidr) return Cidr::parse(entry) == rule.cidr;
    return normalize_domain(entry) == rule.domain;
  };
  std::vector<EgressRule> kept;
  for (const auto& entry : *destinations) {
    const auto it = std::find_if(egress.allow.begin(), egress.allow.end(),
                                 [&](const EgressRule& rule) { return named(rule, entry); });
    if (it == egress.allow.end()) {
      return "'" + entry + "' is not in policy \"" + policy_name +
             "\"'s egress list; a request may only narrow it";
    }
  }
  for (const auto& rule : egress.allow) {
    const bool wanted = std::any_of(destinations->begin(), destinations->end(),
                                    [&](const std::string& entry) { return named(rule, entry); });
    if (wanted) kept.push_back(rule);
  }
  egress.allow = std::move(kept);
  return std::nullopt;
}

}  // namespace airlock::policies
