#include "policies/policy.h"

#include <algorithm>

namespace airlock::policies {

bool Policy::allows_runtime(const std::string& runtime) const {
  return std::find(runtimes.begin(), runtimes.end(), runtime) != runtimes.end();
}

}  // namespace airlock::policies
