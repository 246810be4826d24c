// What an Api is built on in the API's tests: a config, the fake executor, a policy set, the
// execution service (one worker), API keys, metrics and a log. A fixture derives from ApiParts
// and builds its Api from context().
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/handler.h"
#include "api/metrics.h"
#include "fakes.h"

namespace airlock::api::testing {

// sha256("test-key"), the key the fixtures' requests send.
inline const std::string kTestKeyDigest =
    "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef";

struct ApiParts {
  // By default one key, "test", that may use the policy "default" only.
  explicit ApiParts(std::vector<ApiKey> keys = {{"test", kTestKeyDigest, {"default"}}},
                    size_t max_queued = 4)
      : auth(std::move(keys)), service(executor, {1, max_queued, 16}, metrics, log) {}

  ApiContext context() { return {config, executor, policies, service, auth, metrics}; }

  ServeConfig config;
  FakeExecutor executor;
  StaticPolicySource policies;
  Metrics metrics;
  std::ostringstream log_text;
  Logger log{log_text};
  Authenticator auth;
  ExecutionService service;
};

}  // namespace airlock::api::testing
