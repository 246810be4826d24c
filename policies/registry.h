// The service's set of named policies. Reloading never weakens what is in force: a policy whose
// new version is invalid keeps its old version, and runs hold the Policy they started with.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "policies/errors.h"
#include "policies/policy.h"

namespace airlock::policies {

class PolicyRegistry {
 public:
  explicit PolicyRegistry(std::vector<std::string> dirs);

  // Re-reads every *.yaml in the directories (the first directory holding a name wins, as in
  // load_policy). Valid policies replace their old versions; an invalid one keeps its old version
  // (or stays absent) and its errors are returned. A policy whose file is gone is removed.
  std::vector<PolicyError> reload();

  // The policy in force, or nullptr when there is none by that name.
  std::shared_ptr<const Policy> get(const std::string& name) const;

  // Names of the policies in force, sorted.
  std::vector<std::string> names() const;

  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  const std::vector<std::string> dirs_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Policy>> policies_;
  std::mutex reload_mutex_;  // one reload at a time; get() is never blocked by file reading
};

}  // namespace airlock::policies
