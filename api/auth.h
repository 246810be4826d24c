// Bearer API keys: a request's key is hashed and compared with the digests from the config; each
// key may use a set of policies. With no keys configured every request is allowed.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/config.h"

namespace airlock::api {

// Who made a request, once authenticated.
struct Identity {
  std::string key_name;  // "anonymous" when the service has no keys
  std::vector<std::string> policies;
  bool all_policies = false;
  std::string client;  // "address:port" of the connection, for the audit log
  // The key's egress destinations (ApiKey::egress): its runs reach only these of their policy's.
  std::optional<std::vector<std::string>> egress;

  bool may_use(const std::string& policy) const;
};

enum class AuthFailure { missing, invalid };

class Authenticator {
 public:
  explicit Authenticator(std::vector<ApiKey> keys)
      : keys_(std::make_shared<const std::vector<ApiKey>>(std::move(keys))) {}

  // True when no keys are configured and everyone is let in.
  bool open() const { return keys()->empty(); }

  // authorization: the Authorization header's value, if the request had one.
  // Fills identity on success; otherwise says why not.
  std::optional<AuthFailure> authenticate(std::optional<std::string_view> authorization,
                                          Identity& identity) const;

  // Puts a new set of keys in force (a SIGHUP reload); requests being checked finish with the
  // set they started with. Refused, returning why, when it would leave a service that had keys
  // with none: that would let every client in, and must take a deliberate restart.
  std::optional<std::string> replace(std::vector<ApiKey> keys);

  // The names of the keys in force.
  std::vector<std::string> names() const;

 private:
  std::shared_ptr<const std::vector<ApiKey>> keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
  }

  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<ApiKey>> keys_;
};

}  // namespace airlock::api
