#include "api/e2b/router.h"

#include "api/e2b/envd.h"
#include "api/e2b/errors.h"
#include "api/e2b/files.h"
#include "api/e2b/interpreter.h"
#include "api/transport/admission.h"
#include "api/wire/json.h"

namespace airlock::api::e2b {

std::variant<SandboxTarget, HttpResponse> sandbox_target(const HttpRequest& request) {
  SandboxTarget target;
  target.path = std::string(request.path().substr(kE2bSandboxPrefix.size() - 1));
  auto id = request.header("E2b-Sandbox-Id");
  if (!id || id->empty()) {
    return error(400, "the E2b-Sandbox-Id header is required (set E2B_SANDBOX_URL)");
  }
  target.id = std::string(*id);
  auto port = request.header("E2b-Sandbox-Port");
  if (port && *port == "49983") {
    target.port = kEnvdPort;
  } else if (port && *port == "49999") {
    target.port = kInterpreterPort;
  } else {
    return error(400, "E2b-Sandbox-Port must be 49983 (envd) or 49999 (the code interpreter)");
  }
  // The interpreter's /contexts calls carry only the traffic token; envd calls the access token.
  // Both are the workspace's one access token.
  auto token = request.header("X-Access-Token");
  if (!token || token->empty()) token = request.header("E2B-Traffic-Access-Token");
  if (!token || token->empty()) {
    return error(401,
                 "an access token is required (X-Access-Token, the envdAccessToken that "
                 "creating the sandbox returned)");
  }
  target.token = std::string(*token);
  return target;
}

HttpResponse sandbox_not_found(const std::string& id) {
  return HttpResponse{
      502,
      "application/json",
      {},
      json::print(json::object({{"sandboxId", json::string(id)},
                                {"message", json::string("The sandbox was not found")},
                                {"code", json::number(502)}}))};
}

HttpResponse sandboxes_off() {
  return error(501, "E2B sandboxes are turned off in this airlock (config: e2b.enabled)");
}

Dispatch handle_sandbox_traffic(const ApiContext& context, const HttpRequest& request) {
  if (!context.workspaces) return sandboxes_off();
  auto routed = sandbox_target(request);
  if (auto* refusal = std::get_if<HttpResponse>(&routed)) return std::move(*refusal);
  const SandboxTarget& target = std::get<SandboxTarget>(routed);
  auto found = context.workspaces->find_by_token(target.id, target.token);
  if (std::holds_alternative<runner::SessionError>(found)) return sandbox_not_found(target.id);
  std::shared_ptr<runner::Workspace> workspace =
      std::get<std::shared_ptr<runner::Workspace>>(std::move(found));
  AuditWorkspace audit;
  if (context.on_workspace) {
    audit = [&context, id = target.id, client = request.peer](const std::string& event,
                                                              const std::string& detail) {
      policies::WorkspaceRecord record;
      record.event = event;
      record.workspace_id = id;
      record.client = client;
      record.detail = detail;
      context.on_workspace(record);
    };
  }

  const std::string& path = target.path;
  if (target.port == kEnvdPort) {
    if (path == "/health") {
      if (request.method != "GET") return error(405, "use GET on /health");
      return HttpResponse{204, "application/json", {}, ""};
    }
    if (path == "/files") return handle_files(context, request, std::move(workspace));
    if (path.starts_with("/process.Process/") || path.starts_with("/filesystem.Filesystem/")) {
      return handle_envd(request, std::move(workspace), std::move(audit));
    }
    return error(404, "envd has no path " + path);
  }
  if (path == "/health") return HttpResponse{200, "application/json", {}, "{}"};
  return handle_interpreter(request, target.path, std::move(workspace), std::move(audit));
}

}  // namespace airlock::api::e2b
