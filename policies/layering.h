// Merges a chain of layers (root ancestor first) into one effective Policy: each field comes from
// the nearest layer that sets it, lists of mounts and variables merge by path and name, and the
// compiled sandbox defaults fill the rest.
#pragma once

#include <memory>
#include <vector>

#include "policies/errors.h"
#include "policies/layer.h"
#include "policies/policy.h"

namespace airlock::policies {

// The effective policy, with canonical text and hash; nullptr when any error was found (the
// errors are appended to `errors`). `chain` must not be empty.
std::shared_ptr<const Policy> merge_layers(const std::vector<PolicyLayer>& chain,
                                           std::vector<PolicyError>& errors);

}  // namespace airlock::policies
