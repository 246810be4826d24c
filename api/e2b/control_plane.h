// E2B's control plane under /e2b/api (E2B_API_URL=http://HOST:PORT/e2b/api): create, list, get,
// kill, time out and connect to sandboxes, which are airlock workspaces (runner/workspaces.h).
// Authenticated by the X-API-KEY header as an airlock API key, whose name owns the workspaces
// and whose policies apply. What airlock does not offer (custom templates, pause, snapshots)
// answers in E2B's error format, naming what is supported. Pure request handling, with the
// translations between E2B's JSON and the runner's values exposed for tests.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/auth.h"
#include "api/handler.h"
#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// The envd version reported for every sandbox: the JS SDK then sends no Basic auth, allows
// closeStdin, always uploads multipart, and itself refuses the features airlock lacks.
inline constexpr std::string_view kEnvdVersion = "0.5.4";
// A metadata key that picks the airlock policy of a new sandbox (default: default_policy).
inline constexpr std::string_view kPolicyMetadataKey = "airlock.policy";

// What a create (POST /v2/sandboxes or /sandboxes) asks for.
struct CreateRequest {
  std::string template_id;
  std::optional<std::chrono::milliseconds> timeout;
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> env;
  std::string policy;  // from metadata[kPolicyMetadataKey]; empty: the default policy
  bool wants_internet = false;  // allow_internet_access: true, asked for explicitly
};

// True for the templates airlock serves: "base", "code-interpreter-v1" and empty.
bool is_served_template(std::string_view template_id);

// Reads a create body; the answer that refuses it (400, E2B's format) when it is not valid or
// asks for what airlock does not offer.
std::variant<CreateRequest, HttpResponse> parse_create(std::string_view body);

// A timeout body ({"timeout": seconds} or, for /refreshes, {"duration": seconds}); `field` names
// the field. nullopt with an empty problem: absent.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view body,
                                                       const std::string& field,
                                                       std::string& problem);

// The Sandbox object create and connect answer (with the access tokens).
json::Value sandbox_json(const runner::WorkspaceInfo& info);
// The ListedSandbox (list) or SandboxDetail (get, with the access token when `detail`).
json::Value listed_json(const runner::WorkspaceInfo& info, bool detail);

// The metadata filter of a list (?metadata=k%3Dv%26k2%3Dv2, each key and value encoded twice by
// the SDK); false when it cannot be decoded.
bool metadata_filter(std::string_view target, std::map<std::string, std::string>& filter);

// Handles any path under /e2b/api/ for an authenticated identity.
HttpResponse handle_control_plane(const ApiContext& context, const HttpRequest& request,
                                  const Identity& identity);

}  // namespace airlock::api::e2b
