// Loads a policy by name or path: reads the file and its `extends` ancestors, checks every field,
// and returns the immutable effective Policy, or every error found (never a partial policy).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "policies/errors.h"
#include "policies/policy.h"

namespace airlock::policies {

struct LoadResult {
  std::shared_ptr<const Policy> policy;  // null when anything is wrong
  std::vector<PolicyError> errors;       // every problem, in every file of the chain

  bool ok() const { return policy && errors.empty(); }
};

// `name_or_path` is a path when it contains '/' or ends in .yaml/.yml; else a policy name looked
// up as NAME.yaml in `search_dirs`, first match wins. Parents named by `extends` are looked up in
// the child's own directory first, then in `search_dirs`.
LoadResult load_policy(const std::string& name_or_path,
                       const std::vector<std::string>& search_dirs);

// The file that holds policy `name`: the first `dir/NAME.yaml` that exists; empty when none does.
std::string find_policy_file(const std::string& name, const std::vector<std::string>& dirs);

// The policy name a file defines: its file name without directory and .yaml/.yml.
std::string policy_name_of(const std::string& path);

}  // namespace airlock::policies
