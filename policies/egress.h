// A policy's `egress` section as plain data: the destinations a run may reach through airlock's
// egress gateway, each with the reason a reviewer reads, and the run's connection and byte caps.
// The gateway (runner/egress/) enforces it outside the sandbox; the sandbox only wires the
// network namespace to the gateway. No section: no network beyond loopback (the default).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/spec.h"

namespace airlock::policies {

// An IPv4 or IPv6 network: the address's bytes (the first 4 for IPv4) and its prefix length.
// Host bits beyond the prefix are zero (the parser refuses "10.0.0.1/8").
struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> address{};
  uint8_t prefix_length = 0;

  // "10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 (/128). Nothing on a malformed one.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const Cidr& host) const;  // host: a single address (/32 or /128)
  std::string text() const;               // as parse reads it
  bool operator==(const Cidr&) const = default;
};

// A header the gateway adds to plain-HTTP requests for a rule's host. The value lives in the
// service (its config's egress secrets, by name), never in the policy and never in the sandbox.
struct InjectedHeader {
  std::string name;    // e.g. "Authorization"
  std::string secret;  // the secret's name in the service's config
  bool operator==(const InjectedHeader&) const = default;
};

// One allowed destination. Exactly one of domain and cidr is set.
struct EgressRule {
  // Lower-case, without a trailing dot. "*.example.com" matches every name below example.com
  // at any depth, not example.com itself.
  std::string domain;
  std::optional<Cidr> cidr;
  std::vector<uint16_t> ports;  // at least one, ascending, no duplicates
  std::string reason;           // required, non-empty
  std::vector<InjectedHeader> headers;
  std::string origin;  // for reports: `policy "pypi" (egress.allow[2])`
  bool operator==(const EgressRule& other) const {
    return domain == other.domain && cidr == other.cidr && ports == other.ports &&
           reason == other.reason && headers == other.headers;
  }
};

struct Egress {
  std::vector<EgressRule> allow;             // empty: no network beyond loopback
  uint32_t max_connections = 64;             // per run, allowed ones
  uint64_t max_bytes = 256 * sandbox::kMiB;  // per run, both directions together

  bool enabled() const { return !allow.empty(); }
  bool operator==(const Egress&) const = default;
};

// True when name (lower-case, no trailing dot) matches rule's domain.
bool domain_matches(const std::string& pattern, std::string_view name);

// A domain as rules store it: lower case, one trailing dot removed ("PyPI.org." -> "pypi.org").
std::string normalize_domain(std::string_view domain);

// Why a normalised domain or "*." pattern cannot be a rule's domain, as the end of a sentence
// ("has an empty label"); empty when it can. A name has at least two labels of 1-63 characters
// from [a-z0-9-], none starting or ending with '-', at most 253 characters in all, and a last
// label that is not all digits (an address belongs in `cidr`). "*." may only lead, and what
// follows it must itself be such a name.
std::string domain_problem(std::string_view domain);

// What a rule names: its domain, or its network's text ("10.1.2.0/24").
std::string destination_text(const EgressRule& rule);

// Narrows `egress` for one request or API key. `destinations` nullopt: no narrowing, `egress`
// stays as it is. Otherwise only the rules whose destination_text is named in it are kept
// (domains compared after normalize_domain, networks by value); an empty list turns egress off.
// Naming a destination the policy does not allow is an error: the sentence is returned and
// `egress` is left unchanged, since a request may narrow a policy but never widen it.
std::optional<std::string> narrow_egress(
    Egress& egress, const std::optional<std::vector<std::string>>& destinations,
    const std::string& policy_name);

}  // namespace airlock::policies
