// The code interpreter's API (port 49999): POST /execute runs code in a context and streams E2B's
// NDJSON lines (stdout, stderr, result, error, number_of_executions, end_of_execution) as the
// agent's code.run events arrive; /contexts creates, lists, removes and restarts contexts.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "api/e2b/envd.h"
#include "api/handler.h"
#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// Code one /execute may carry.
inline constexpr size_t kMaxCodeBytes = 1024 * 1024;
// Written on a quiet /execute stream so proxies keep it open; E2B's SDKs ignore unknown types.
inline constexpr std::string_view kExecuteKeepalive = "{\"type\":\"keepalive\"}\n";
inline constexpr std::chrono::seconds kExecuteKeepaliveInterval{15};

// The agent's code.run request for an /execute body, or the 400 that refuses the body.
std::variant<json::Value, HttpResponse> code_run_request(std::string_view body,
                                                         const std::string& run_id);

// Handles a request to port 49999 (`path` below /e2b/sandbox) for an admitted workspace.
// `audit` is told of each run.
Dispatch handle_interpreter(const HttpRequest& request, const std::string& path,
                            std::shared_ptr<runner::Workspace> workspace, AuditWorkspace audit = {});

}  // namespace airlock::api::e2b
