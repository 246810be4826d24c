// What the policy's egress rules say about one destination, as plain functions: a name on a port,
// a raw address on a port, and which upstream addresses the gateway must not connect to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policies/egress.h"

namespace airlock::egress {

// The rule that allows a destination, or why none does (then rule is null).
struct Verdict {
  const policies::EgressRule* rule = nullptr;
  std::string reason;
  bool allowed() const { return rule != nullptr; }
};

// Lower-case, without a trailing dot: the form domain rules are written in.
std::string normalize_name(std::string_view name);

// True when some domain rule matches name (on any port): what DNS answers for.
bool name_allowed(const policies::Egress& egress, std::string_view name);

// The first domain rule that matches name and lists port; else "not in the policy's egress list"
// or "port P is not allowed for NAME".
Verdict check_name(const policies::Egress& egress, std::string_view name, uint16_t port);

// The first CIDR rule that contains address and lists port; else "a raw address no rule allows".
Verdict check_address(const policies::Egress& egress, const policies::Cidr& address, uint16_t port);

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries; any other as is.
policies::Cidr unmapped(const policies::Cidr& address);

// What kind of special-purpose address this is ("loopback", "private", "link-local", ...), or
// nothing for an ordinary public address. An upstream name resolving to one is refused unless the
// operator pinned it (GatewayConfig::hosts) or a CIDR rule within its range names it
// (special_address_allowed): DNS rebinding and SSRF into
// the host's own networks.
std::optional<std::string> special_address_kind(const policies::Cidr& address);

// False for a special address (special_address_kind) unless a cidr rule contains it, lists port
// and lies within its special range: 10.1.2.0/24 on 5432 lets 10.1.2.3:5432 through (whatever
// name resolved to it), not 10.1.2.3:80; 0.0.0.0/0 does not let 127.0.0.1 or 169.254.169.254
// through. True for an ordinary address.
bool special_address_allowed(const policies::Egress& egress, const policies::Cidr& address,
                             uint16_t port);

// Why the gateway must not connect to address:port for a sandbox under egress, as the address's
// kind ("loopback", kHostLocal, ...), or nothing when it may: a special address no rule within
// its range names, or one of this host's own (host_local) that no rule names exactly with port.
inline constexpr const char* kHostLocal = "host-local";
std::optional<std::string> upstream_refusal(const policies::Egress& egress,
                                            const policies::Cidr& address, uint16_t port,
                                            bool host_local);

// "a loopback address", "an IPv4-compatible address": a kind from upstream_refusal in a sentence.
std::string address_of_kind(const std::string& kind);

// True for a host name made of letters, digits, '-' and '_' between dots (no empty label).
bool is_hostname(std::string_view name);

// A sandbox-supplied text made safe for reports and responses: bytes other than printable ASCII
// become '?', and it is cut at 256 characters.
std::string printable(std::string_view text);

// "1.2.3.4:80", "[2001:db8::1]:443", "name:443" for reports.
std::string destination_text(std::string_view host, uint16_t port);

}  // namespace airlock::egress
