// E2B's control plane under /e2b/api (E2B_API_URL=http://HOST:PORT/e2b/api): create, list, get,
// kill, time out and connect to sandboxes, which are airlock workspaces (runner/workspaces.h).
// Authenticated by the X-API-KEY header as an airlock API key, whose name owns the workspaces
// and whose policies apply. What airlock does not offer (custom templates, pause, snapshots)
// answers in E2B's error format, naming what is supported. Pure request handling, with the
// Sandbox objects it answers exposed for tests; reading requests is control_plane_requests.h.
#pragma once

#include <string>
#include <string_view>

#include "api/auth.h"
#include "api/handler.h"
#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// The envd version reported for every sandbox: the JS SDK then sends no Basic auth, allows
// closeStdin, always uploads multipart, and itself refuses the features airlock lacks.
inline constexpr std::string_view kEnvdVersion = "0.5.4";

// The Sandbox object create and connect answer (with the access tokens).
json::Value sandbox_json(const runner::WorkspaceInfo& info);
// The ListedSandbox (list) or SandboxDetail (get, with the access token when `detail`).
json::Value listed_json(const runner::WorkspaceInfo& info, bool detail);

// Handles any path under /e2b/api/ for an authenticated identity.
HttpResponse handle_control_plane(const ApiContext& context, const HttpRequest& request,
                                  const Identity& identity);

}  // namespace airlock::api::e2b
