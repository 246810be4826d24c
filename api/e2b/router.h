// Sandbox traffic under /e2b/sandbox (E2B_SANDBOX_URL=http://HOST:PORT/e2b/sandbox): E2B's SDKs
// name the sandbox in E2b-Sandbox-Id and the port in E2b-Sandbox-Port (49983 envd, 49999 the
// code interpreter), and carry no API key: the workspace's access token, sent as X-Access-Token
// or E2B-Traffic-Access-Token, admits a request. An unknown sandbox or a wrong token answers 502,
// which every E2B client reads as "the sandbox is gone".
#pragma once

#include <string>
#include <variant>

#include "api/handler.h"

namespace airlock::api::e2b {

inline constexpr int kEnvdPort = 49983;
inline constexpr int kInterpreterPort = 49999;

// Where a request goes, read from its headers and path (no lookup yet).
struct SandboxTarget {
  std::string id;
  int port = 0;
  std::string token;
  std::string path;  // below /e2b/sandbox, starting with "/" ("/files", "/execute", ...)
};

// The target, or the answer refusing the request (400: no id or an unknown port; 401: no token).
std::variant<SandboxTarget, HttpResponse> sandbox_target(const HttpRequest& request);

// The 502 E2B's clients expect for a sandbox that does not exist (or not for this token).
HttpResponse sandbox_not_found(const std::string& id);

// The 501 for sandbox traffic when the service has no workspaces.
HttpResponse sandboxes_off();

// Handles any path under /e2b/sandbox/ (admitted by Host and Origin only).
Dispatch handle_sandbox_traffic(const ApiContext& context, const HttpRequest& request);

}  // namespace airlock::api::e2b
