// Asking a workspace's agent for something, as api/e2b/'s plain HTTP endpoints do: a request
// object in, its reply parsed (runner/drivers/envd_agent.py answers {"ok":true,...} or
// {"ok":false,"error":{"code":C,"message":M}}).
#pragma once

#include <chrono>
#include <string>

#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// How long a plain request waits for the agent before answering 502.
inline constexpr std::chrono::seconds kAgentReplyTimeout{60};

struct AgentResult {
  bool ok = false;
  json::Value body;      // the reply object (when ok)
  std::string code;      // the agent's error code, or "unavailable" when there was no reply
  std::string message;
};

// Reads a reply; an undelivered, unparsable or malformed one is an "unavailable" failure.
AgentResult parse_reply(const runner::AgentReply& reply);

// Sends `request` and waits for the reply (worker threads only). Refused at once, with code
// "too_many_waits", when too many requests already wait on this sandbox or its key's
// (api/e2b/sandbox_slots.h).
AgentResult ask(runner::Workspace& workspace, const json::Value& request,
                std::chrono::milliseconds timeout = kAgentReplyTimeout);

// A fresh id for a code run, unique in the process ("run-<counter>-<random>").
std::string new_run_id();

}  // namespace airlock::api::e2b
