// Text for security reviewers: the effective policy as `airlock policy show --effective` prints
// it (groups expanded, the floor listed, every rule with its origin), and the list of unsafe
// entries that `policy check` flags.
#pragma once

#include <string>

#include "policies/policy.h"

namespace airlock::policies {

// YAML-like text, values spelled as in policy files, origins as comments; ends with the hash.
std::string render_effective(const Policy& policy);

// One line per unsafe entry: `UNSAFE policy "NAME": syscall ptrace — <justification>`; empty when
// there is none.
std::string render_unsafe(const Policy& policy);

}  // namespace airlock::policies
