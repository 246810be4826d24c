#include "api/mcp/endpoint.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "api/wire/json.h"
#include "api/mcp/tools.h"

namespace airlock::api {
namespace {

constexpr std::string_view kServerName = "airlock";
constexpr std::string_view kInstructions =
    "airlock runs code in an isolated sandbox with no network. Use run_code for one-off code; "
    "create_session first when later calls need the variables, imports or files of earlier "
    "ones, then pass its session_id to run_code. Results start with a summary line saying what "
    "happened and what to do about a failure.";

HttpResponse json_response(int status, const json::Value& body) {
  return HttpResponse{status, std::string(kJsonType), {}, json::print(body)};
}

json::Value rpc_error(const json::Value& id, int code, std::string message) {
  return json::object({{"jsonrpc", json::string("2.0")},
                       {"id", id},
                       {"error", json::object({{"code", json::number(code)},
                                               {"message", json::string(std::move(message))}})}});
}

json::Value rpc_result(const json::Value& id, json::Value result) {
  return json::object(
      {{"jsonrpc", json::string("2.0")}, {"id", id}, {"result", std::move(result)}});
}

bool supported_version(std::string_view version) {
  return std::find(kMcpProtocolVersions.begin(), kMcpProtocolVersions.end(), version) !=
         kMcpProtocolVersions.end();
}

json::Value initialize_result(const json::Value& params) {
  std::string asked = json::string_field(params, "protocolVersion").value_or("");
  std::string version = supported_version(asked) ? asked : std::string(kMcpProtocolVersions[0]);
  return json::object(
      {{"protocolVersion", json::string(version)},
       {"capabilities",
        json::object({{"tools", json::object({{"listChanged", json::boolean(false)}})}})},
       {"serverInfo", json::object({{"name", json::string(std::string(kServerName))},
                                    {"version", json::string(AIRLOCK_VERSION)}})},
       {"instructions", json::string(std::string(kInstructions))}});
}

// Behind a balancer (a replica name is set), an MCP client's session is pinned to one replica by
// the Mcp-Session-Id header the SDKs send back after initialize: its sessions (create_session)
// live there. The server keeps no MCP state; the id says which replica and which run of it made
// it. Returns the refusal for a header that does not belong here: always 404, the answer on
// which MCP clients initialize again (and land on a replica that takes them).
std::optional<HttpResponse> check_mcp_session(const ApiContext& context,
                                              const HttpRequest& request) {
  const runner::IdMaker& ids = context.executions.ids();
  auto header = request.header("Mcp-Session-Id");
  if (ids.replica().empty() || !header) return std::nullopt;
  std::string why;
  switch (ids.origin("mcp", *header)) {
    case runner::IdOrigin::this_run:
      if (context.executions.accepting()) return std::nullopt;
      why = "replica " + ids.replica() + " is shutting down and has closed its sessions";
      break;
    case runner::IdOrigin::earlier_run:
      why = "replica " + ids.replica() + " restarted since it began, and the sessions it made "
            "are gone";
      break;
    case runner::IdOrigin::other_replica:
      why = "it belongs to replica " +
            std::string(runner::IdMaker::replica_of("mcp", *header)) + ", not " +
            ids.replica() + " (a balancer routes by it)";
      break;
    case runner::IdOrigin::not_an_id:
      why = "it is not one this service issued";
      break;
  }
  return mcp_error_response(404, "this MCP session has ended: " + why + "; initialize again");
}

}  // namespace

HttpResponse mcp_error_response(int status, std::string message) {
  return json_response(status, rpc_error(json::null(), kInvalidRequest, std::move(message)));
}

Dispatch handle_mcp(const ApiContext& context, const HttpRequest& request,
                    const Identity& identity) {
  if (request.method != "POST") {
    // No server-initiated stream and no MCP session to delete: every answer comes with its POST.
    HttpResponse response = mcp_error_response(405, "/mcp takes POST with a JSON-RPC message");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  if (auto refused = check_mcp_session(context, request)) return *refused;
  if (auto version = request.header("MCP-Protocol-Version");
      version && !supported_version(*version)) {
    return json_response(
        400, rpc_error(json::null(), kInvalidRequest,
                       "unsupported MCP-Protocol-Version \"" + std::string(*version) +
                           "\"; this server speaks " + std::string(kMcpProtocolVersions[0]) + ", " +
                           std::string(kMcpProtocolVersions[1]) + " and " +
                           std::string(kMcpProtocolVersions[2])));
  }
  if (auto type = request.header("Content-Type"); !type || !lists_media_type(*type, kJsonType)) {
    return json_response(
        415, rpc_error(json::null(), kInvalidRequest, "Content-Type must be application/json"));
  }
  if (request.body.size() > context.config.max_body_bytes) {
    return json_response(413, rpc_error(json::null(), kInvalidRequest, "the body is too large"));
  }
  std::string problem;
  auto message = json::parse(request.body, problem);
  if (!message)
    return json_response(400, rpc_error(json::null(), kParseError, "invalid JSON: " + problem));
  if (message->has_list_value()) {
    return json_response(400, rpc_error(json::null(), kInvalidRequest,
                                        "JSON-RPC batches are not supported; send one message"));
  }
  if (!message->has_struct_value() || json::string_field(*message, "jsonrpc") != "2.0") {
    return json_response(400, rpc_error(json::null(), kInvalidRequest,
                                        "not a JSON-RPC 2.0 message (\"jsonrpc\": \"2.0\")"));
  }
  const json::Value* id = json::field(*message, "id");
  auto method = json::string_field(*message, "method");
  // Notifications and the client's answers need no reply.
  if (id == nullptr || !method) return HttpResponse{202, std::string(kJsonType), {}, ""};
  if (id->kind_case() != json::Value::kStringValue &&
      id->kind_case() != json::Value::kNumberValue) {
    return json_response(400,
                         rpc_error(json::null(), kInvalidRequest, "id must be a string or number"));
  }
  // Numbers are doubles here: from 2^53 on the id we would echo may not be the one the client sent
  // (2^53 + 1 reads as 2^53), and its answer would never be matched to its request.
  if (constexpr double kFirstInexact = 9007199254740992.0;
      id->kind_case() == json::Value::kNumberValue &&
      std::fabs(id->number_value()) >= kFirstInexact) {
    return json_response(400,
                         rpc_error(json::null(), kInvalidRequest,
                                   "a numeric id must lie strictly within +/-2^53 to come back "
                                   "unchanged; send a larger id as a string"));
  }
  const json::Value* params_field = json::field(*message, "params");
  json::Value params = params_field ? *params_field : json::object({});
  if (!params.has_struct_value()) {
    return json_response(200, rpc_error(*id, kInvalidParams, "params must be an object"));
  }

  if (*method == "initialize") {
    const runner::IdMaker& ids = context.executions.ids();
    if (!ids.replica().empty() && !context.executions.accepting()) {
      // A balancer sends it on to a replica that takes new clients.
      HttpResponse response =
          json_response(503, rpc_error(*id, kInvalidRequest,
                                       "replica " + ids.replica() + " is shutting down; retry"));
      response.headers.emplace_back("Retry-After",
                                    std::to_string(context.config.retry_after.count()));
      return response;
    }
    HttpResponse response = json_response(200, rpc_result(*id, initialize_result(params)));
    if (!ids.replica().empty()) {
      response.headers.emplace_back("Mcp-Session-Id", ids.make("mcp"));
    }
    return response;
  }
  if (*method == "ping") return json_response(200, rpc_result(*id, json::object({})));
  if (*method == "tools/list") {
    return json_response(200, rpc_result(*id, json::object({{"tools", mcp_tool_list(context)}})));
  }
  if (*method == "tools/call") {
    auto name = json::string_field(params, "name");
    if (!name) return json_response(200, rpc_error(*id, kInvalidParams, "params.name: required"));
    const json::Value* arguments = json::field(params, "arguments");
    json::Value args = arguments ? *arguments : json::object({});
    if (!args.has_struct_value()) {
      return json_response(200,
                           rpc_error(*id, kInvalidParams, "params.arguments must be an object"));
    }
    ToolCall call = call_mcp_tool(context, identity, *name, args);
    if (auto* error = std::get_if<ToolProtocolError>(&call)) {
      return json_response(200, rpc_error(*id, error->code, error->message));
    }
    if (auto* result = std::get_if<json::Value>(&call)) {
      return json_response(200, rpc_result(*id, std::move(*result)));
    }
    PendingExecution pending = std::move(std::get<PendingExecution>(call));
    pending.stream = false;
    pending.respond = [id = *id, budget = pending.tool_output_budget](const v1::Event& final_event) {
      return json_response(200, rpc_result(id, run_tool_result(final_event, budget)));
    };
    // A refused start (queue full, shutting down) is the tool's failure, said in words the model
    // can act on, not an HTTP error the client library would turn into an exception.
    pending.refused = [id = *id](const std::string& message) {
      return json_response(200, rpc_result(id, tool_error_result(message)));
    };
    return pending;
  }
  return json_response(200, rpc_error(*id, kMethodNotFound, "no method \"" + *method + "\""));
}

}  // namespace airlock::api
