#include "api/handler.h"

#include <algorithm>

#include "api/job_builder.h"
#include "api/wire/json.h"
#include "api/mcp/endpoint.h"
#include "api/rest/responses.h"
#include "api/rest/sessions.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"

namespace airlock::api {
namespace {

// Ids and policy names in paths: short, and only characters that need no escaping.
constexpr size_t kMaxPathNameLength = 128;

bool is_path_name(std::string_view text) {
  return !text.empty() && text.size() <= kMaxPathNameLength &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
         });
}

HttpResponse method_not_allowed(std::string allow, WireFormat format) {
  HttpResponse response = error(405, "method_not_allowed", "this path takes " + allow, format);
  response.headers.emplace_back("Allow", std::move(allow));
  return response;
}

// The format of answers: binary protobuf only when the client says it takes it.
WireFormat answer_format(const HttpRequest& request) {
  auto accept = request.header("Accept");
  return accept && lists_media_type(*accept, kProtobufType) ? WireFormat::protobuf
                                                            : WireFormat::json;
}

HttpResponse refusal_response(const Refusal& refusal, const HttpRequest& request) {
  HttpResponse response = request.path() == "/mcp"
                              ? mcp_error_response(refusal.status, refusal.message)
                              : error(refusal.status, refusal.code, refusal.message,
                                      answer_format(request));
  for (const auto& header : refusal.headers) response.headers.push_back(header);
  return response;
}

}  // namespace

void Api::note_refusal(const HttpRequest& request, const HttpResponse& response,
                       const std::string& key) const {
  if (!context_.on_refused || (response.status != 401 && response.status != 403)) return;
  // The code is in the body the caller gets (an /mcp answer is JSON-RPC: none there).
  v1::ErrorResponse body;
  const WireFormat format =
      response.content_type == kProtobufType ? WireFormat::protobuf : WireFormat::json;
  std::string code = decode(response.body, format, body) ? "" : body.error().code();
  if (code.empty()) code = response.status == 401 ? "unauthorized" : "forbidden";
  context_.on_refused({response.status, std::move(code), key, request.peer, request.method,
                       std::string(request.path())});
}

std::optional<HttpResponse> Api::refuse_head(const HttpRequest& head) const {
  try {
    auto admitted = admit(context_.config, context_.auth, head);
    if (auto* refusal = std::get_if<Refusal>(&admitted)) {
      HttpResponse response = refusal_response(*refusal, head);
      note_refusal(head, response, "");
      return response;
    }
    return std::nullopt;
  } catch (const std::exception& exception) {
    return error(500, "internal", std::string("internal error: ") + exception.what(),
                 answer_format(head));
  }
}

Dispatch Api::handle(const HttpRequest& request) const {
  try {
    auto admitted = admit(context_.config, context_.auth, request);
    if (auto* refusal = std::get_if<Refusal>(&admitted)) {
      HttpResponse response = refusal_response(*refusal, request);
      note_refusal(request, response, "");
      return response;
    }
    const Identity& identity = std::get<Identity>(admitted);
    Dispatch dispatch = route(request, identity);
    if (auto* response = std::get_if<HttpResponse>(&dispatch)) {
      note_refusal(request, *response, identity.key_name);
    }
    return dispatch;
  } catch (const std::exception& exception) {
    return error(500, "internal", std::string("internal error: ") + exception.what(),
                 answer_format(request));
  }
}

Dispatch Api::route(const HttpRequest& request, const Identity& identity) const {
  const WireFormat format = answer_format(request);
  const std::string_view path = request.path();
  const std::string& method = request.method;

  if (path == "/healthz" || path == "/readyz") {
    if (method != "GET") return method_not_allowed("GET", format);
    return health(path == "/readyz");
  }
  if (path == "/metrics") {
    if (method != "GET") return method_not_allowed("GET", format);
    return HttpResponse{200, "text/plain; version=0.0.4", {}, context_.metrics.render()};
  }
  if (path == "/version") {
    if (method != "GET") return method_not_allowed("GET", format);
    return version(format);
  }
  if (path == "/mcp") return handle_mcp(context_, request, identity);
  if (!path.starts_with("/v1/")) {
    return error(404, "not_found", "no such path: " + std::string(path), format);
  }

  if (path == "/v1/sessions" || path.starts_with("/v1/sessions/")) {
    return handle_sessions(context_, request, identity, format);
  }
  constexpr std::string_view kExecutions = "/v1/executions";
  constexpr std::string_view kPolicies = "/v1/policies";
  if (path == kExecutions) {
    if (method != "POST") return method_not_allowed("POST", format);
    return post_execution(request, identity);
  }
  if (path.starts_with(std::string(kExecutions) + "/")) {
    std::string id(path.substr(kExecutions.size() + 1));
    if (!is_path_name(id)) return error(404, "not_found", "no such execution", format);
    if (method == "GET") return get_execution(id, identity, format);
    if (method == "DELETE") return delete_execution(id, identity, format);
    return method_not_allowed("GET, DELETE", format);
  }
  if (path == "/v1/runtimes") {
    if (method != "GET") return method_not_allowed("GET", format);
    return list_runtimes(format);
  }
  if (path == kPolicies) {
    if (method != "GET") return method_not_allowed("GET", format);
    return list_policies(identity, format);
  }
  if (path.starts_with(std::string(kPolicies) + "/")) {
    if (method != "GET") return method_not_allowed("GET", format);
    return get_policy(std::string(path.substr(kPolicies.size() + 1)), identity, format);
  }
  return error(404, "not_found", "no such path: " + std::string(path), format);
}

Dispatch Api::post_execution(const HttpRequest& request, const Identity& identity) const {
  const WireFormat format = answer_format(request);
  v1::ExecutionRequest message;
  int status = 400;
  if (auto problem = decode_request_body(request, context_.config.max_body_bytes, message, status,
                                         EmptyBody::invalid)) {
    return error_response(status, *problem, format);
  }

  PendingExecution pending;
  pending.format = format;
  auto accept = request.header("Accept");
  pending.stream = accept && prefers_event_stream(*accept);
  auto built = build_job(context_, identity, message);
  if (auto* refusal = std::get_if<JobRefusal>(&built)) {
    return error_response(refusal->status, refusal->error, format);
  }
  pending.job = std::move(std::get<Job>(built));
  return pending;
}

std::variant<std::string, HttpResponse> Api::start(
    PendingExecution pending, std::shared_ptr<ExecutionObserver> observer) const {
  const WireFormat format = pending.format;
  auto refused = std::move(pending.refused);
  auto submitted = context_.executions.submit(std::move(pending.job), std::move(observer));
  if (!submitted.rejection) return submitted.id;
  const std::string retry_after = std::to_string(context_.config.retry_after.count());
  int status = 503;
  std::string code, message;
  bool retry = true;
  switch (*submitted.rejection) {
    case ExecutionService::Rejection::queue_full:
      status = 429;
      code = "queue_full";
      message = "all execution slots and the queue are full; retry after " + retry_after + " s";
      break;
    case ExecutionService::Rejection::shutting_down:
      code = "shutting_down";
      message = "the service is shutting down";
      retry = false;
      break;
    case ExecutionService::Rejection::no_resources:
      code = "no_resources";
      message = "the service is out of file descriptors";
      break;
  }
  if (refused) return refused(message);
  HttpResponse response = error(status, std::move(code), std::move(message), format);
  if (retry) response.headers.emplace_back("Retry-After", retry_after);
  return response;
}

HttpResponse Api::get_execution(const std::string& id, const Identity& identity,
                                WireFormat format) const {
  auto result = context_.executions.find(id, identity.key_name);
  if (!result) {
    std::string why = "results are kept for the last " +
                      std::to_string(context_.config.recent_results) + " executions";
    switch (context_.executions.id_origin(id)) {
      case runner::IdOrigin::earlier_run:
        why = "the service restarted since it ran, and results are kept in memory only";
        break;
      case runner::IdOrigin::other_replica:
        why = "it ran on another replica; look it up through the balancer, which routes by the id";
        break;
      case runner::IdOrigin::this_run:
      case runner::IdOrigin::not_an_id:
        break;
    }
    return error(404, "not_found", "no execution \"" + id + "\" (" + why + ")", format);
  }
  return message_response(200, *result, format);
}

HttpResponse Api::delete_execution(const std::string& id, const Identity& identity,
                                   WireFormat format) const {
  switch (context_.executions.cancel(id, identity.key_name)) {
    case ExecutionService::CancelOutcome::cancelled: {
      v1::ExecutionResult state;
      if (auto found = context_.executions.find(id, identity.key_name)) state = *found;
      state.set_id(id);
      return message_response(202, state, format);
    }
    case ExecutionService::CancelOutcome::already_finished:
      return error(409, "already_finished",
                   "execution \"" + id + "\" has already finished; GET it for its result", format);
    case ExecutionService::CancelOutcome::not_found:
      break;
  }
  return error(404, "not_found", "no running execution \"" + id + "\"", format);
}

HttpResponse Api::list_runtimes(WireFormat format) const {
  v1::RuntimeList list;
  for (const auto& [name, runtime] : context_.executor.runtimes()) {
    *list.add_runtimes() = to_runtime_info(runtime);
  }
  return message_response(200, list, format);
}

std::vector<std::string> Api::usable_policies(const Identity& identity) const {
  return api::usable_policies(context_, identity);
}

HttpResponse Api::list_policies(const Identity& identity, WireFormat format) const {
  v1::PolicyList list;
  for (const auto& name : usable_policies(identity)) {
    if (auto policy = context_.policies.get(name)) {
      *list.add_policies() = to_policy_info(*policy, false);
    }
  }
  return message_response(200, list, format);
}

HttpResponse Api::get_policy(const std::string& name, const Identity& identity,
                             WireFormat format) const {
  std::vector<std::string> usable = usable_policies(identity);
  if (!is_path_name(name)) return error(404, "unknown_policy", "no such policy", format);
  if (!identity.may_use(name)) {
    return error(403, "policy_forbidden",
                 "this API key may not use that policy; it may use: " + joined(usable), format,
                 "policy", usable);
  }
  auto policy = context_.policies.get(name);
  if (!policy) {
    return error(404, "unknown_policy",
                 "no policy named \"" + name + "\"; valid: " + joined(usable), format, "policy",
                 usable);
  }
  return message_response(200, to_policy_info(*policy, true), format);
}

bool Api::ready(std::vector<std::string>& problems) const {
  if (!context_.executions.accepting()) problems.push_back("the service is shutting down");
  if (context_.policies.names().empty()) problems.push_back("no policies are loaded");
  if (!context_.policies.get(context_.config.default_policy)) {
    problems.push_back("the default policy \"" + context_.config.default_policy +
                       "\" is not loaded");
  }
  if (context_.executor.runtimes().empty()) problems.push_back("no runtimes are configured");
  return problems.empty();
}

HttpResponse Api::version(WireFormat format) const {
  // No schema of its own: a google.protobuf.Struct, so it needs no change to the API's messages.
  std::vector<json::Value> mcp_versions;
  for (std::string_view version : kMcpProtocolVersions) {
    mcp_versions.push_back(json::string(std::string(version)));
  }
  json::Value info = json::object({{"version", json::string(AIRLOCK_VERSION)},
                                   {"api", json::string("v1")},
                                   {"mcp_protocol_versions", json::array(mcp_versions)}});
  if (format == WireFormat::protobuf) return message_response(200, info.struct_value(), format);
  // The API's own printer writes a Struct as a message ({"fields": ...}); this is plain JSON.
  return HttpResponse{200, std::string(kJsonType), {}, json::print(info)};
}

HttpResponse Api::health(bool readiness) const {
  v1::Health health;
  health.set_status("ok");
  int status = 200;
  if (readiness) {
    std::vector<std::string> problems;
    if (!ready(problems)) {
      health.set_status("not_ready");
      for (auto& problem : problems) health.add_problems(problem);
      status = 503;
    }
  }
  return message_response(status, health, WireFormat::json);
}

}  // namespace airlock::api
