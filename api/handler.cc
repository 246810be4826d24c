#include "api/handler.h"

#include "api/e2b/control_plane.h"
#include "api/e2b/errors.h"
#include "api/e2b/router.h"
#include "api/mcp/endpoint.h"
#include "api/rest/catalog.h"
#include "api/rest/executions.h"
#include "api/rest/responses.h"
#include "api/rest/sessions.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"

namespace airlock::api {
namespace {

// The format of answers: binary protobuf only when the client says it takes it.
WireFormat answer_format(const HttpRequest& request) {
  auto accept = request.header("Accept");
  return accept && lists_media_type(*accept, kProtobufType) ? WireFormat::protobuf
                                                            : WireFormat::json;
}

HttpResponse refusal_response(const Refusal& refusal, const HttpRequest& request) {
  const std::string_view path = request.path();
  HttpResponse response =
      path == "/mcp" ? mcp_error_response(refusal.status, refusal.message)
      // E2B's SDKs read {"code": <status>, "message": ...}.
      : path.starts_with("/e2b/") ? e2b::error(refusal.status, refusal.message)
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

std::variant<Identity, HttpResponse> Api::admit_or_refuse(const HttpRequest& request) const {
  auto admitted = admit(context_.config, context_.auth, request);
  if (auto* refusal = std::get_if<Refusal>(&admitted)) {
    HttpResponse response = refusal_response(*refusal, request);
    note_refusal(request, response, "");
    return response;
  }
  return std::get<Identity>(std::move(admitted));
}

std::optional<HttpResponse> Api::refuse_head(const HttpRequest& head) const {
  try {
    auto admitted = admit_or_refuse(head);
    if (auto* refused = std::get_if<HttpResponse>(&admitted)) return std::move(*refused);
    auto refused = refuse_route(head);
    if (refused) note_refusal(head, *refused, "");
    return refused;
  } catch (const std::exception& exception) {
    return error(500, "internal", std::string("internal error: ") + exception.what(),
                 answer_format(head));
  }
}

std::optional<HttpResponse> Api::refuse_route(const HttpRequest& head) const {
  const WireFormat format = answer_format(head);
  const std::string_view path = head.path();
  if (path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/version") {
    if (head.method != "GET") return method_not_allowed("GET", format);
    if (has_body(head)) {
      return error(413, "body_too_large", "GET " + std::string(path) + " takes no request body",
                   format);
    }
    return std::nullopt;
  }
  if (path.starts_with(kE2bSandboxPrefix)) {
    // The sandbox's id, port and token must be named, and the token must be the sandbox's,
    // before its body is read: a client without it gets nothing read on its behalf.
    if (!context_.workspaces) return e2b::sandboxes_off();
    auto target = e2b::sandbox_target(head);
    if (auto* refused = std::get_if<HttpResponse>(&target)) return std::move(*refused);
    const auto& named = std::get<e2b::SandboxTarget>(target);
    if (!context_.workspaces->token_matches(named.id, named.token)) {
      return e2b::sandbox_not_found(named.id);
    }
    return std::nullopt;
  }
  if (path == "/mcp" || path.starts_with(kE2bApiPrefix) || path.starts_with("/v1/")) {
    return std::nullopt;
  }
  return error(404, "not_found", "no such path: " + std::string(path), format);
}

bool Api::waits_on_sandbox(const HttpRequest& head) const {
  return head.path().starts_with(kE2bSandboxPrefix);
}

Dispatch Api::handle(const HttpRequest& request) const {
  try {
    auto admitted = admit_or_refuse(request);
    if (auto* refused = std::get_if<HttpResponse>(&admitted)) return std::move(*refused);
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
    return health_response(context_, path == "/readyz");
  }
  if (path == "/metrics") {
    if (method != "GET") return method_not_allowed("GET", format);
    return HttpResponse{200, "text/plain; version=0.0.4", {}, context_.metrics.render()};
  }
  if (path == "/version") {
    if (method != "GET") return method_not_allowed("GET", format);
    return version_response(format);
  }
  if (path == "/mcp") return handle_mcp(context_, request, identity);
  if (path.starts_with(kE2bApiPrefix)) {
    return e2b::handle_control_plane(context_, request, identity);
  }
  // No API key here: the router admits a request by its workspace's access token.
  if (path.starts_with(kE2bSandboxPrefix)) return e2b::handle_sandbox_traffic(context_, request);
  if (!path.starts_with("/v1/")) {
    return error(404, "not_found", "no such path: " + std::string(path), format);
  }

  if (path == "/v1/sessions" || path.starts_with("/v1/sessions/")) {
    return handle_sessions(context_, request, identity, format);
  }
  if (path == "/v1/executions" || path.starts_with("/v1/executions/")) {
    return handle_executions(context_, request, identity, format);
  }
  if (path == "/v1/runtimes" || path == "/v1/policies" || path.starts_with("/v1/policies/")) {
    return handle_catalog(context_, request, identity, format);
  }
  return error(404, "not_found", "no such path: " + std::string(path), format);
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
    case ExecutionService::Rejection::key_share:
      status = 429;
      code = "key_share_full";
      message = "this API key already holds " +
                std::to_string(context_.executions.key_share_limit()) +
                " executions (running and queued), the most one key may; the other places are "
                "kept for other keys. Retry after " +
                retry_after + " s, or once one of yours has finished";
      break;
    case ExecutionService::Rejection::shutting_down:
      // Behind a balancer another replica takes it; a lone service is going away.
      code = "shutting_down";
      message = context_.executions.ids().replica().empty()
                    ? "the service is shutting down"
                    : "replica " + context_.executions.ids().replica() +
                          " is shutting down; retry (the balancer sends it to another replica)";
      retry = !context_.executions.ids().replica().empty();
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

bool Api::ready(std::vector<std::string>& problems) const {
  return service_ready(context_, problems);
}

}  // namespace airlock::api
