// Turns an execution request into a job the way every entry point must: the key may use the
// policy (checked before whether it exists, so keys cannot probe names), the runtime exists and
// the policy allows it, and the runner finds the request valid. Used by /v1/executions, sessions
// and MCP alike, so none of them can skip a check.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "api/airlock.pb.h"
#include "api/auth.h"
#include "api/execution_service.h"
#include "api/handler.h"

namespace airlock::api {

struct JobRefusal {
  int status = 400;  // 400 or 403; a session's job also 404 (no session), 409 or 429
  v1::Error error;
};

std::variant<Job, JobRefusal> build_job(const ApiContext& context, const Identity& identity,
                                        const v1::ExecutionRequest& message);

// The policy a run gets: policy, its egress narrowed to what the key allows (of the policy's destinations; what the key
// names beyond them does not count) and then to what the request asks (asked: each must be one
// of the policy's, or the sentence why not comes back). The narrowed policy is a copy with its
// own canonical text and hash; policy itself when nothing narrows it.
std::variant<std::shared_ptr<const policies::Policy>, std::string> narrowed_policy(
    std::shared_ptr<const policies::Policy> policy, const Identity& identity,
    const std::optional<std::vector<std::string>>& asked);

// The policies this key may use, of those loaded.
std::vector<std::string> usable_policies(const ApiContext& context, const Identity& identity);

// Tells context.on_refused of a 403 answered inside another protocol (an MCP tool result, sent
// with HTTP 200), so that the audit log sees it as it sees the API's own 403s.
void report_forbidden(const ApiContext& context, const Identity& identity, const std::string& code,
                      const std::string& path);

// "a, b, c", or "(none)".
std::string joined(const std::vector<std::string>& names);

}  // namespace airlock::api
