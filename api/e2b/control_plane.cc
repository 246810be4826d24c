#include "api/e2b/control_plane.h"

#include <cmath>
#include <ctime>

#include "api/e2b/control_plane_requests.h"
#include "api/e2b/errors.h"
#include "api/e2b/query.h"
#include "api/job_builder.h"
#include "api/transport/admission.h"

namespace airlock::api::e2b {
namespace {

using std::chrono::milliseconds;

std::string iso8601(std::chrono::system_clock::time_point time) {
  const auto ms =
      std::chrono::duration_cast<milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms % 1000));
  return text;
}

// The sandbox id in a path segment, when it is one airlock could have made.
bool plausible_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

HttpResponse json_response(int status, const json::Value& value) {
  return HttpResponse{status, "application/json", {}, json::print(value)};
}

HttpResponse no_content() { return HttpResponse{204, "application/json", {}, ""}; }

HttpResponse not_found(const std::string& id) { return error(404, "sandbox " + id + " not found"); }

HttpResponse unsupported(const std::string& what) {
  return error(501, what + " is not supported by airlock");
}

const runner::WorkspaceManager& manager(const ApiContext& context) { return *context.workspaces; }

HttpResponse create(const ApiContext& context, const HttpRequest& request,
                    const Identity& identity) {
  auto parsed = parse_create(request.body);
  if (auto* refusal = std::get_if<HttpResponse>(&parsed)) return std::move(*refusal);
  CreateRequest& wanted = std::get<CreateRequest>(parsed);
  const std::string policy_name =
      wanted.policy.empty() ? context.config.default_policy : wanted.policy;
  if (!identity.may_use(policy_name)) {
    return error(403, "this API key may not use policy \"" + policy_name + "\"");
  }
  runner::WorkspaceRequest workspace;
  workspace.policy = context.policies.get(policy_name);
  if (!workspace.policy) {
    return error(400, "no policy named \"" + policy_name + "\" (metadata " +
                          std::string(kPolicyMetadataKey) + ")");
  }
  // The key's egress list narrows the sandbox's policy as it does a run's.
  workspace.policy = std::get<std::shared_ptr<const policies::Policy>>(
      narrowed_policy(workspace.policy, identity, std::nullopt));
  if (wanted.wants_internet && workspace.policy->network == "none") {
    return error(400, "allowInternetAccess: policy \"" + policy_name +
                          "\" gives its sandboxes no network; name a policy that does (metadata " +
                          std::string(kPolicyMetadataKey) + ")");
  }
  workspace.owner = identity.key_name;
  workspace.timeout = wanted.timeout;
  workspace.template_id = wanted.template_id.empty() ? "base" : wanted.template_id;
  workspace.metadata = std::move(wanted.metadata);
  workspace.env = std::move(wanted.env);
  auto created = context.workspaces->create(workspace);
  if (auto* refusal = std::get_if<runner::SessionError>(&created)) {
    if (status_for(refusal->refusal) == 429) context.metrics.rejected("workspace_cap");
    return refused(*refusal);
  }
  const runner::WorkspaceInfo& info = std::get<runner::WorkspaceInfo>(created);
  context.metrics.workspace_event("created");
  if (context.on_workspace) {
    context.on_workspace({"workspace_created", info.id, identity.key_name, info.policy_name,
                          info.policy_hash, info.template_id, identity.client});
  }
  return json_response(201, sandbox_json(info));
}

HttpResponse list(const ApiContext& context, const HttpRequest& request,
                  const Identity& identity) {
  std::map<std::string, std::string> filter;
  if (!metadata_filter(request.target, filter)) {
    return error(400, "metadata: the filter cannot be decoded");
  }
  bool malformed = false;
  if (auto state = query_param(request.target, "state", malformed);
      state && state->find("running") == std::string::npos) {
    return json_response(200, json::array({}));  // airlock's sandboxes are all running
  }
  std::vector<json::Value> items;
  for (const runner::WorkspaceInfo& info : manager(context).list(identity.key_name)) {
    bool matches = true;
    for (const auto& [key, value] : filter) {
      auto found = info.metadata.find(key);
      matches = matches && found != info.metadata.end() && found->second == value;
    }
    if (matches) items.push_back(listed_json(info, false));
  }
  return json_response(200, json::array(std::move(items)));
}

HttpResponse kill(const ApiContext& context, const Identity& identity, const std::string& id) {
  // What it ran under, for the audit record; read before it is gone.
  const std::optional<runner::WorkspaceInfo> info = context.workspaces->info(id, identity.key_name);
  if (!context.workspaces->kill(id, identity.key_name)) return not_found(id);
  context.metrics.workspace_event("killed");
  if (context.on_workspace) {
    context.on_workspace({"workspace_killed", id, identity.key_name,
                          info ? info->policy_name : "", info ? info->policy_hash : "",
                          info ? info->template_id : "", identity.client});
  }
  return no_content();
}

HttpResponse set_timeout(const ApiContext& context, const HttpRequest& request,
                         const Identity& identity, const std::string& id,
                         const std::string& field) {
  std::string problem;
  auto timeout = parse_seconds(request.body, field, problem);
  if (!problem.empty()) return error(400, problem);
  if (!timeout) {
    if (field == "timeout") return error(400, "timeout: required (seconds)");
    timeout = context.config.e2b.default_timeout;  // a refresh without duration
  }
  if (auto refusal = context.workspaces->set_timeout(id, identity.key_name, *timeout)) {
    return refusal->refusal == runner::SessionRefusal::not_found ? not_found(id)
                                                                 : refused(*refusal);
  }
  return no_content();
}

HttpResponse connect(const ApiContext& context, const HttpRequest& request,
                     const Identity& identity, const std::string& id) {
  std::string problem;
  auto timeout = parse_seconds(request.body, "timeout", problem);
  if (!problem.empty()) return error(400, problem);
  auto info = manager(context).info(id, identity.key_name);
  if (!info) return not_found(id);
  // E2B extends a connected sandbox's timeout to at least the one asked for, never shortens it.
  if (timeout && info->ends_at < std::chrono::system_clock::now() + *timeout) {
    if (auto refusal = context.workspaces->set_timeout(id, identity.key_name, *timeout)) {
      return refused(*refusal);
    }
    info = manager(context).info(id, identity.key_name);
    if (!info) return not_found(id);
  }
  return json_response(200, sandbox_json(*info));
}

HttpResponse metrics(const ApiContext& context, const Identity& identity, const std::string& id) {
  auto info = manager(context).info(id, identity.key_name);
  auto found = manager(context).find(id, identity.key_name);
  if (!info || !std::holds_alternative<std::shared_ptr<runner::Workspace>>(found)) {
    return not_found(id);
  }
  auto& workspace = *std::get<std::shared_ptr<runner::Workspace>>(found);
  const auto now = std::chrono::system_clock::now();
  const double seconds =
      std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() / 1000.0;
  return json_response(
      200, json::array({json::object({
               {"timestamp", json::string(iso8601(now))},
               {"timestampUnix", json::number(std::floor(seconds))},
               {"cpuCount", json::number(info->cpu_count)},
               {"cpuUsedPct", json::number(0)},
               {"memUsed", json::number(static_cast<double>(workspace.memory_usage_bytes()))},
               {"memTotal", json::number(static_cast<double>(info->memory_bytes))},
               {"memCache", json::number(0)},
               {"diskUsed", json::number(0)},
               {"diskTotal", json::number(static_cast<double>(info->disk_bytes))},
           })}));
}

// Everything under /sandboxes/{id}: `rest` is what follows the id ("" or "/timeout", ...).
HttpResponse one_sandbox(const ApiContext& context, const HttpRequest& request,
                         const Identity& identity, const std::string& id, std::string_view rest) {
  const std::string& method = request.method;
  if (!plausible_id(id)) return not_found(id.substr(0, 128));
  if (rest.empty()) {
    if (method == "GET") {
      auto info = manager(context).info(id, identity.key_name);
      return info ? json_response(200, listed_json(*info, true)) : not_found(id);
    }
    if (method == "DELETE") return kill(context, identity, id);
    return error(405, "use GET or DELETE on a sandbox");
  }
  if (rest == "/timeout" && method == "POST") {
    return set_timeout(context, request, identity, id, "timeout");
  }
  if (rest == "/refreshes" && method == "POST") {
    return set_timeout(context, request, identity, id, "duration");
  }
  if (rest == "/metrics" && method == "GET") return metrics(context, identity, id);
  if (rest == "/pause") {
    return error(501, "pause is not supported by airlock: a sandbox runs until it is killed or "
                      "its timeout ends");
  }
  if (rest == "/resume") return unsupported("resume");
  if (rest == "/snapshots") return unsupported("snapshots");
  if (rest == "/fork") return unsupported("fork");
  if (rest == "/network") return unsupported("changing a sandbox's network (its policy decides)");
  return error(404, "no such path: " + std::string(request.path()));
}

}  // namespace

json::Value sandbox_json(const runner::WorkspaceInfo& info) {
  return json::object({{"sandboxID", json::string(info.id)},
                       {"templateID", json::string(info.template_id)},
                       {"clientID", json::string("airlock")},
                       {"alias", json::string(info.template_id)},
                       {"envdVersion", json::string(std::string(kEnvdVersion))},
                       {"envdAccessToken", json::string(info.access_token)},
                       {"trafficAccessToken", json::string(info.access_token)},
                       {"domain", json::null()}});
}

json::Value listed_json(const runner::WorkspaceInfo& info, bool detail) {
  json::Value metadata = json::object({});
  for (const auto& [key, value] : info.metadata) json::set(metadata, key, json::string(value));
  json::Value out = json::object({
      {"sandboxID", json::string(info.id)},
      {"templateID", json::string(info.template_id)},
      {"alias", json::string(info.template_id)},
      {"clientID", json::string("airlock")},
      {"startedAt", json::string(iso8601(info.started_at))},
      {"endAt", json::string(iso8601(info.ends_at))},
      {"state", json::string("running")},
      {"cpuCount", json::number(info.cpu_count)},
      {"memoryMB", json::number(static_cast<double>(info.memory_bytes / (1024 * 1024)))},
      {"diskSizeMB", json::number(static_cast<double>(info.disk_bytes / (1024 * 1024)))},
      {"envdVersion", json::string(std::string(kEnvdVersion))},
      {"metadata", metadata},
  });
  if (detail) {
    json::set(out, "envdAccessToken", json::string(info.access_token));
    json::set(out, "domain", json::null());
    json::set(out, "lifecycle", json::object({{"onTimeout", json::string("kill")},
                                              {"autoResume", json::boolean(false)}}));
  }
  return out;
}

HttpResponse handle_control_plane(const ApiContext& context, const HttpRequest& request,
                                  const Identity& identity) {
  if (!context.workspaces) {
    return error(501, "E2B sandboxes are turned off in this airlock (config: e2b.enabled)");
  }
  std::string_view path = request.path();
  path.remove_prefix(kE2bApiPrefix.size() - 1);  // keeps the leading "/"
  const std::string& method = request.method;
  if (path == "/v2/sandboxes" || path == "/sandboxes") {
    if (method == "POST") return create(context, request, identity);
    if (method == "GET") return list(context, request, identity);
    return error(405, "use GET or POST on " + std::string(path));
  }
  if (path.starts_with("/v2/sandboxes/")) {
    std::string_view rest = path.substr(std::string_view("/v2/sandboxes/").size());
    const std::string id(rest.substr(0, rest.find('/')));
    if (rest.substr(id.size()) == "/connect" && method == "POST" && plausible_id(id)) {
      return connect(context, request, identity, id);
    }
    return one_sandbox(context, request, identity, id, rest.substr(id.size()));
  }
  if (path.starts_with("/sandboxes/")) {
    std::string_view rest = path.substr(std::string_view("/sandboxes/").size());
    const std::string id(rest.substr(0, rest.find('/')));
    return one_sandbox(context, request, identity, id, rest.substr(id.size()));
  }
  if (path == "/snapshots" || path.starts_with("/templates")) return unsupported("templates");
  return error(404, "no such path: " + std::string(request.path()));
}

}  // namespace airlock::api::e2b
