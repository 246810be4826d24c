// What a request's head must show before its body is read or any work is done for it: a Host the
// service answers to (DNS rebinding), an Origin it trusts (cross-site pages), a body it parses
// (no form posts a browser sends without asking), and an API key. Pure and cheap: the transport
// runs it as soon as a header is in, so a stranger's body is never read into memory.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "api/auth.h"
#include "api/config.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// E2B's two URLs on airlock's listener (docs/e2b.md): E2B_API_URL is http://HOST:PORT/e2b/api
// (authenticated by X-API-KEY), E2B_SANDBOX_URL is http://HOST:PORT/e2b/sandbox (no API key:
// api/e2b/router.cc checks the workspace's access token itself).
inline constexpr std::string_view kE2bApiPrefix = "/e2b/api/";
inline constexpr std::string_view kE2bSandboxPrefix = "/e2b/sandbox/";

// Why a request is turned away at its head.
struct Refusal {
  int status = 400;
  std::string code;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. WWW-Authenticate
};

// Checks a request's method, target and headers (its body is not looked at). On success, who
// made it: "anonymous" with every policy when the service has no keys, and for the paths that
// need no key (/healthz, /readyz, /metrics).
std::variant<Identity, Refusal> admit(const ServeConfig& config, const Authenticator& auth,
                                      const HttpRequest& head);

// True when a body comes with the request: its header says so (or, once read, it is there).
bool has_body(const HttpRequest& head);

// The host part of a Host header or an origin's authority: "example.com" of "example.com:8080",
// "[::1]" of "[::1]:8080", lowercased.
std::string host_of(std::string_view authority);

}  // namespace airlock::api
