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
  std::string origin;           // for reports: `policy "pypi" (egress.allow[2])`
  bool operator==(const EgressRule& other) const {
    return domain == other.domain && cidr == other.cidr && ports == other.ports &&
           reason == other.reason && headers == other.headers;
  }
};

struct Egress {
  std::vector<EgressRule> allow;  // empty: no network beyond loopback
  uint32_t max_connections = 64;                   // per run, allowed ones
  uint64_t max_bytes = 256 * sandbox::kMiB;        // per run, both directions together

  bool enabled() const { return !allow.empty(); }
  bool operator==(const Egress&) const = default;
};

// True when name (lower-case, no trailing dot) matches rule's domain.
bool domain_matches(const std::string& pattern, std::string_view name);

}  // namespace airlock::policies
