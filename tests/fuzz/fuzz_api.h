// What the API harnesses share: the pure Api as the service builds it (the shipped policies and
// runtimes, real request validation), with an executor that never runs anything. A harness hands
// the Api one request and drops any execution it asks to start, so fuzzing needs no sandbox.
#pragma once

#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/config.h"
#include "api/execution_service.h"
#include "api/executor.h"
#include "api/handler.h"
#include "api/log.h"
#include "api/metrics.h"
#include "api/policy_source.h"
#include "api/wire/json.h"
#include "api/wire/wire.h"
#include "policies/loader.h"
#include "runner/runner.h"
#include "runner/runtimes.h"
#include "tests/api/fakes.h"

namespace airlock::fuzz {

// What airlock ships, read from the source tree (the harnesses are not installed).
inline const std::string kPolicyDir = AIRLOCK_SOURCE_DIR "/policies";
inline const std::string kRuntimesFile = AIRLOCK_SOURCE_DIR "/runner/runtimes.yaml";

// The runtimes file shipped with airlock, and Runner::validate's checks; run() is never reached
// because the harnesses do not start executions.
class ValidatingExecutor final : public api::Executor {
 public:
  ValidatingExecutor() {
    auto table = runner::load_runtimes(kRuntimesFile);
    if (!table) {
      std::cerr << "fuzz: cannot load runtimes: " << table.error().message() << "\n";
      std::abort();
    }
    runtimes_ = std::move(table.value());
  }
  const runner::RuntimeTable& runtimes() const override { return runtimes_; }
  std::optional<runner::RequestError> validate(const runner::RunRequest& request,
                                               const policies::Policy& policy) const override {
    return runner::validate_request(request, policy, runtimes_);
  }
  runner::RunResult run(const runner::RunRequest&, const policies::Policy&,
                        const runner::EventSink&, int) override {
    std::abort();  // a harness started an execution: a bug in the harness
  }

 private:
  runner::RuntimeTable runtimes_;
};

// The shipped policies, as the service loads them.
inline void add_shipped_policies(api::testing::StaticPolicySource& source) {
  for (const char* name : {"default", "minimal", "python", "node", "bash", "compile"}) {
    auto loaded = policies::load_policy(name, {kPolicyDir});
    if (!loaded.ok()) {
      std::cerr << "fuzz: cannot load the shipped policy " << name << "\n";
      std::abort();
    }
    source.add(loaded.policy);
  }
}

// sha256("fuzz-key"): requests that send `Authorization: Bearer fuzz-key` may use "default" and
// "python"; with no keys (open) everyone may use everything.
inline constexpr const char* kFuzzKeyDigest =
    "231e9b2f757db8d48ecd0711b60135e1cc57a3a807be9dc12638856f17a7872c";

struct FuzzApi {
  explicit FuzzApi(bool with_key)
      : auth(with_key ? std::vector<api::ApiKey>{{"fuzz", kFuzzKeyDigest, {"default", "python"}}}
                      : std::vector<api::ApiKey>{}),
        service(executor, {1, 0, 16}, metrics, log),
        api({config, executor, policies, service, auth, metrics, nullptr}) {
    add_shipped_policies(policies);
  }

  api::ServeConfig config;  // the service's defaults: body limit, timeouts
  ValidatingExecutor executor;
  api::testing::StaticPolicySource policies;
  api::Metrics metrics;
  std::ostringstream log_text;
  api::Logger log{log_text};
  api::Authenticator auth;
  api::ExecutionService service;
  api::Api api;
};

// What every answer of the API must be: JSON that parses (an error as an ErrorResponse, whose
// code says "internal" only for a 500; /mcp answers errors in JSON-RPC's shape instead, and
// /e2b/ may answer in E2B's: a message, and a code that is the status or, from envd, Connect's
// name), or binary protobuf that parses. Aborts otherwise.
inline void check_answer(const api::HttpResponse& response, std::string_view path) {
  if (response.status < 100 || response.status > 599) std::abort();
  const bool json = response.content_type == api::kJsonType;
  if (!json && response.content_type != api::kProtobufType) return;
  if (response.status < 400 || path == "/mcp") {
    std::string problem;
    if (json && !response.body.empty() && !api::json::parse(response.body, problem)) {
      std::cerr << "a JSON answer is not JSON (" << problem << "):\n" << response.body << "\n";
      std::abort();
    }
    return;
  }
  // Under /e2b/, refusals and E2B's routes answer in E2B's shape; an unknown path there in ours.
  if (path.starts_with("/e2b/") && json) {
    std::string problem;
    auto parsed = api::json::parse(response.body, problem);
    const api::json::Value* code = parsed ? api::json::field(*parsed, "code") : nullptr;
    const bool is_status =
        code && code->has_number_value() && code->number_value() == response.status;
    const bool is_connect_code = code && code->has_string_value() && !code->string_value().empty();
    if (parsed && api::json::string_field(*parsed, "message") && (is_status || is_connect_code)) {
      return;
    }
  }
  api::v1::ErrorResponse error;
  if (auto problem = api::decode(response.body,
                                 json ? api::WireFormat::json : api::WireFormat::protobuf, error)) {
    std::cerr << "an error answer does not decode (" << problem->message() << "):\n"
              << response.body << "\n";
    std::abort();
  }
  if (error.error().code() == "internal" && response.status != 500) {
    std::cerr << "a " << response.status << " answer says internal: " << response.body << "\n";
    std::abort();
  }
}

}  // namespace airlock::fuzz
