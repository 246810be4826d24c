// Where the API looks policies up: an interface over the policy registry, so that handlers are
// tested with a fixed set and the service can swap the whole set on SIGHUP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "policies/policy.h"

namespace airlock::api {

class PolicySource {
 public:
  virtual ~PolicySource() = default;

  // The policy with this name, or nullptr. The value stays valid while held, across reloads.
  virtual std::shared_ptr<const policies::Policy> get(const std::string& name) const = 0;

  // All loaded policy names, sorted.
  virtual std::vector<std::string> names() const = 0;

  // Reads the policies again. On any error the previous set stays in force and the errors come
  // back, one readable line each ("file:line:column: message").
  virtual std::vector<std::string> reload() = 0;
};

}  // namespace airlock::api

namespace airlock::policies {
class PolicyRegistry;
}

namespace airlock::api {

// The production PolicySource: the policy registry reading YAML directories.
class RegistryPolicySource final : public PolicySource {
 public:
  explicit RegistryPolicySource(policies::PolicyRegistry& registry) : registry_(registry) {}

  std::shared_ptr<const policies::Policy> get(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::vector<std::string> reload() override;

 private:
  policies::PolicyRegistry& registry_;
};

}  // namespace airlock::api
