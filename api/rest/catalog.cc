#include "api/rest/catalog.h"

#include "api/job_builder.h"
#include "api/mcp/endpoint.h"
#include "api/rest/responses.h"
#include "api/wire/json.h"
#include "api/wire/translate.h"

namespace airlock::api {
namespace {

constexpr std::string_view kPolicies = "/v1/policies";

HttpResponse list_runtimes(const ApiContext& context, WireFormat format) {
  v1::RuntimeList list;
  for (const auto& [name, runtime] : context.executor.runtimes()) {
    *list.add_runtimes() = to_runtime_info(runtime);
  }
  return message_response(200, list, format);
}

HttpResponse list_policies(const ApiContext& context, const Identity& identity,
                           WireFormat format) {
  v1::PolicyList list;
  for (const auto& name : usable_policies(context, identity)) {
    if (auto policy = context.policies.get(name)) {
      *list.add_policies() = to_policy_info(*policy, false);
    }
  }
  return message_response(200, list, format);
}

HttpResponse get_policy(const ApiContext& context, const std::string& name,
                        const Identity& identity, WireFormat format) {
  std::vector<std::string> usable = usable_policies(context, identity);
  if (!is_path_name(name)) return error(404, "unknown_policy", "no such policy", format);
  if (!identity.may_use(name)) {
    return error(403, "policy_forbidden",
                 "this API key may not use that policy; it may use: " + joined(usable), format,
                 "policy", usable);
  }
  auto policy = context.policies.get(name);
  if (!policy) {
    return error(404, "unknown_policy",
                 "no policy named \"" + name + "\"; valid: " + joined(usable), format, "policy",
                 usable);
  }
  return message_response(200, to_policy_info(*policy, true), format);
}

}  // namespace

Dispatch handle_catalog(const ApiContext& context, const HttpRequest& request,
                        const Identity& identity, WireFormat format) {
  const std::string_view path = request.path();
  if (request.method != "GET") return method_not_allowed("GET", format);
  if (path == "/v1/runtimes") return list_runtimes(context, format);
  if (path == kPolicies) return list_policies(context, identity, format);
  return get_policy(context, std::string(path.substr(kPolicies.size() + 1)), identity, format);
}

bool service_ready(const ApiContext& context, std::vector<std::string>& problems) {
  if (!context.executions.accepting()) problems.push_back("the service is shutting down");
  if (context.policies.names().empty()) problems.push_back("no policies are loaded");
  if (!context.policies.get(context.config.default_policy)) {
    problems.push_back("the default policy \"" + context.config.default_policy +
                       "\" is not loaded");
  }
  if (context.executor.runtimes().empty()) problems.push_back("no runtimes are configured");
  return problems.empty();
}

HttpResponse health_response(const ApiContext& context, bool readiness) {
  v1::Health health;
  health.set_status("ok");
  int status = 200;
  if (readiness) {
    std::vector<std::string> problems;
    if (!service_ready(context, problems)) {
      health.set_status("not_ready");
      for (auto& problem : problems) health.add_problems(problem);
      status = 503;
    }
  }
  return message_response(status, health, WireFormat::json);
}

HttpResponse version_response(WireFormat format) {
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

}  // namespace airlock::api
