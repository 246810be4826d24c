#include "api/auth.h"

#include <algorithm>

#include "policies/sha256.h"

namespace airlock::api {
namespace {

// Compares in time that depends only on the lengths, so a digest comparison does not tell an
// attacker how many leading characters matched.
bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool Identity::may_use(const std::string& policy) const {
  return all_policies || std::find(policies.begin(), policies.end(), policy) != policies.end();
}

std::optional<AuthFailure> Authenticator::authenticate(
    std::optional<std::string_view> authorization, Identity& identity) const {
  const auto keys = this->keys();
  if (keys->empty()) {
    identity = Identity{"anonymous", {}, true};
    return std::nullopt;
  }
  constexpr std::string_view kScheme = "Bearer ";
  if (!authorization || authorization->size() <= kScheme.size()) return AuthFailure::missing;
  // The scheme is case-insensitive (RFC 7235); the key is taken as written.
  std::string scheme(authorization->substr(0, kScheme.size()));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  if (scheme != "bearer ") return AuthFailure::missing;
  std::string digest = policies::sha256_hex(authorization->substr(kScheme.size()));
  // Every key is compared, so the time taken does not say which key came close.
  const ApiKey* match = nullptr;
  for (const ApiKey& key : *keys) {
    if (constant_time_equals(digest, key.sha256)) match = &key;
  }
  if (!match) return AuthFailure::invalid;
  identity.key_name = match->name;
  identity.policies = match->policies;
  identity.egress = match->egress;
  identity.all_policies =
      std::find(match->policies.begin(), match->policies.end(), "*") != match->policies.end();
  return std::nullopt;
}

std::optional<std::string> Authenticator::replace(std::vector<ApiKey> keys) {
  std::lock_guard lock(mutex_);
  if (keys.empty() && !keys_->empty()) {
    return "the new config has no api_keys, which would let every client in; the keys in force "
           "stay (restart the service to run without keys)";
  }
  keys_ = std::make_shared<const std::vector<ApiKey>>(std::move(keys));
  return std::nullopt;
}

std::vector<std::string> Authenticator::names() const {
  std::vector<std::string> out;
  for (const ApiKey& key : *keys()) out.push_back(key.name);
  return out;
}

}  // namespace airlock::api
