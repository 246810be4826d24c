// What the envd service files (envd.cc, envd_process.cc, envd_filesystem.cc) share: one RPC's
// context, the agent round trip, and reading fields of the agent's JSON.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/e2b/connect.h"
#include "api/e2b/envd.h"
#include "api/handler.h"
#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b::envd {

// How long a unary call waits for the agent when the client set no shorter deadline.
inline constexpr std::chrono::milliseconds kAgentReplyWait{60000};
// How often an idle server stream carries a keepalive message, at most (envd's default, and
// what the SDK asks for in Keepalive-Ping-Interval).
inline constexpr std::chrono::seconds kMaxKeepaliveInterval{50};

// One RPC being answered.
struct Rpc {
  const HttpRequest& request;
  std::shared_ptr<runner::Workspace> workspace;
  connect::Encoding encoding = connect::Encoding::json;
  bool streaming = false;  // a server stream: errors are end-of-stream envelopes
  std::chrono::milliseconds wait = kAgentReplyWait;               // for unary agent calls
  std::optional<std::chrono::steady_clock::time_point> deadline;  // Connect-Timeout-Ms
  std::chrono::milliseconds keepalive_interval = kMaxKeepaliveInterval;
  AuditWorkspace audit;  // told what starts in the workspace
};

// The agent's reply object when it said ok, else the Connect error it (or its absence) means.
using AgentResult = std::variant<json::Value, connect::Error>;

// Reads an agent reply: its error codes are Connect's, passed on 1:1; anything the agent should
// not have said becomes internal, an undelivered reply unavailable.
AgentResult read_reply(const runner::AgentReply& reply);
// Sends a request and waits (at most rpc.wait) for its reply. Worker threads only. Refused at
// once (resource_exhausted) when too many requests already wait on the sandbox or its key's.
AgentResult call_agent(const Rpc& rpc, const json::Value& request);

// Parses the request message in the RPC's encoding (one envelope for a stream).
std::optional<connect::Error> parse_request(const Rpc& rpc, google::protobuf::Message& message);
// The answer of a unary call, or the error of any call (a stream's is its end envelope).
Dispatch answer(const Rpc& rpc, const google::protobuf::Message& message);
Dispatch fail(const Rpc& rpc, const connect::Error& error);
// The user an SDK asks to act as (HTTP Basic auth, "name:"), when it names one.
std::optional<std::string> basic_auth_user(const HttpRequest& request);

// Fields of the agent's JSON; the fallback when absent or of another type.
double number_field(const json::Value& value, std::string_view name, double fallback = 0);
std::string text_field(const json::Value& value, std::string_view name);
bool bool_field(const json::Value& value, std::string_view name);

// The service handlers; `method` is the path's last segment. nullopt: no such method.
std::optional<Dispatch> handle_process(std::string_view method, Rpc& rpc);
std::optional<Dispatch> handle_filesystem(std::string_view method, Rpc& rpc);
std::optional<Dispatch> handle_watch(std::string_view method, Rpc& rpc);  // of the filesystem
// True for the methods that are server streams (their requests are enveloped).
bool is_server_stream(std::string_view service, std::string_view method);

}  // namespace airlock::api::e2b::envd
