// The canonical text of an effective policy and its hash. Two policies with the same meaning have
// the same text (key order, comments, layering and group spelling do not matter), so the hash
// reported with a run names exactly the rules that applied. Names, descriptions, rule origins,
// justifications and egress reasons are not part of the meaning; egress destinations, ports,
// injected headers' names and secret names, and the caps are.
#pragma once

#include <string>
#include <string_view>

#include "policies/policy.h"

namespace airlock::policies {

// One setting per line, in a fixed order, strings quoted and escaped. Starts with a version line
// so that a future format change never collides with an old hash.
std::string canonical_text(const Policy& policy);

// Hex sha256 of the canonical text.
std::string policy_digest(std::string_view canonical);

// "socket arg0 != 1" style text of a rule's syscall and conditions (shared with reports).
std::string rule_match_text(const sandbox::SyscallRule& rule);

// JSON-style quoting: "a\"b\n". Control bytes are escaped; other bytes pass through.
std::string quote_string(std::string_view text);

}  // namespace airlock::policies
