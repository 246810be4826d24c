// Turns the syscall sections of a chain of layers into the effective SeccompPolicy: groups
// expanded, the nearest layer deciding each syscall, `network` made into a socket rule, the floor
// kept unless a justified `unsafe` entry lifts it, and every rule's origin named.
#pragma once

#include <string>
#include <vector>

#include "policies/errors.h"
#include "policies/layer.h"
#include "sandbox/spec.h"

namespace airlock::policies {

struct EffectiveNetwork {
  std::string mode = "none";  // "none", "loopback", or "egress" (the layer's egress section)
  std::string set_by;         // the layer that chose it; empty when it is the built-in default
  std::string set_in_file;    // that layer's path
  YAML::Mark mark;
};

// `chain` runs from the root ancestor to the policy itself. Errors are reported against the file
// of the layer that caused them. `policy_name` names built-in defaults in origins.
sandbox::SeccompPolicy build_syscall_rules(const std::vector<const PolicyLayer*>& chain,
                                           const EffectiveNetwork& network,
                                           const std::string& policy_name,
                                           std::vector<UnsafeEntry>& unsafe_out,
                                           std::vector<PolicyError>& errors);

// `policy "NAME" (what)`: how every origin reads.
std::string origin_text(const std::string& policy, const std::string& what);

}  // namespace airlock::policies
