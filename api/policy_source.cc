#include "api/policy_source.h"

#include "policies/registry.h"

namespace airlock::api {

std::shared_ptr<const policies::Policy> RegistryPolicySource::get(const std::string& name) const {
  return registry_.get(name);
}

std::vector<std::string> RegistryPolicySource::names() const {
  return registry_.names();
}

std::vector<std::string> RegistryPolicySource::reload() {
  std::vector<std::string> lines;
  for (const auto& error : registry_.reload()) lines.push_back(error.format());
  return lines;
}

}  // namespace airlock::api
