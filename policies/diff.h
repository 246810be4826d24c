// What a change from policy A to policy B does, in plain words a reviewer can approve or reject:
// "memory limit raised from 256 MiB to 1 GiB (loosens)".
#pragma once

#include <string>
#include <vector>

#include "policies/policy.h"

namespace airlock::policies {

enum class Effect { loosens, tightens, changes };

struct Change {
  std::string what;  // "memory limit raised from 256 MiB to 1 GiB"
  Effect effect = Effect::changes;

  // `what` followed by "(loosens)", "(tightens)" or "(changes)".
  std::string text() const;
};

// Every difference in effect between the effective policies `before` and `after`, in a fixed
// order: limits, output, runtimes, filesystem, network and egress, environment, syscalls, floor.
// Empty when the two have the same meaning (then their hashes are equal too).
std::vector<Change> diff_policies(const Policy& before, const Policy& after);

}  // namespace airlock::policies
