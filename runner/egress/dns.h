// The gateway's DNS answers, as a pure function of a query packet: allowed names get a synthetic
// address from 198.18.0.0/15 that the gateway later maps back to the name; every other name is
// NXDOMAIN. Parsed by hand and defensively: the packets come from the sandbox.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policies/egress.h"

namespace airlock::egress {

using Ipv4 = std::array<uint8_t, 4>;

// 198.18.0.1: the sandbox's resolver and explicit proxy, i.e. the gateway itself.
inline constexpr Ipv4 kGatewayAddress{198, 18, 0, 1};
// The first synthetic address handed out; 198.18.0.0/15 holds them all.
inline constexpr Ipv4 kFirstSyntheticAddress{198, 18, 1, 1};
// Distinct names one attachment may resolve; more are answered SERVFAIL and reported. Bounds
// the memory a sandbox can make the gateway spend on its names.
inline constexpr size_t kMaxSyntheticNames = 4096;
inline constexpr uint32_t kSyntheticTtlSeconds = 60;

bool in_synthetic_range(const Ipv4& address);

// The names one attachment resolved and their synthetic addresses: stable for its life.
class SyntheticNames {
 public:
  // The name's address, assigning the next free one; nothing when kMaxSyntheticNames is reached.
  std::optional<Ipv4> assign(const std::string& name);
  // The name an address was given to, if any.
  std::optional<std::string> name_of(const Ipv4& address) const;
  size_t size() const { return by_name_.size(); }

 private:
  std::map<std::string, Ipv4> by_name_;
  std::map<Ipv4, std::string> by_address_;
};

// A parsed DNS query with exactly one question.
struct DnsQuestion {
  uint16_t id = 0;
  uint16_t flags = 0;               // the query's, to echo RD and the opcode
  std::vector<std::string> labels;  // as sent (case kept, for clients that check it)
  std::string name;                 // lower-case, dot-joined, no trailing dot
  uint16_t type = 0;
  uint16_t klass = 0;
};

enum class DnsRcode : uint8_t {
  no_error = 0,
  format_error = 1,
  server_failure = 2,
  name_error = 3,
  not_implemented = 4,
  refused = 5,
};

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kClassIn = 1;

// What the gateway does with a DNS query.
struct DnsAnswer {
  std::vector<uint8_t> packet;                 // empty: drop it, answer nothing
  std::optional<std::string> refused_name;     // a name the policy does not allow (to report)
  std::optional<std::string> over_limit_name;  // kMaxSyntheticNames reached on this name
  bool counted = false;                        // a well-formed query (counts in Usage::dns_queries)
};

// Answers one query packet: A for an allowed name, NOERROR without answers for its other types,
// NXDOMAIN for names the policy does not allow, FORMERR for a malformed query whose header can be
// read, and nothing for packets too short to answer or that are responses.
DnsAnswer answer_dns_query(std::span<const uint8_t> packet, const policies::Egress& egress,
                           SyntheticNames& names);

// A query for name and type, as a stub resolver sends it (for tests and tools).
std::vector<uint8_t> make_dns_query(uint16_t id, const std::string& name, uint16_t type);

}  // namespace airlock::egress
