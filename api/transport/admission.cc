#include "api/transport/admission.h"

#include <algorithm>
#include <cctype>

namespace airlock::api {
namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool needs_key(std::string_view path) {
  return path == "/mcp" || path.starts_with("/v1/") || path.starts_with(kE2bApiPrefix);
}

std::optional<Refusal> check_host(const ServeConfig& config, const HttpRequest& head) {
  auto host_header = head.header("Host");
  // Browsers always send Host; a client without one is not a page being rebound.
  if (!host_header) return std::nullopt;
  const std::string host = host_of(*host_header);
  for (const std::string& allowed : config.effective_allowed_hosts()) {
    if (allowed == "*" || lowercase(allowed) == host) return std::nullopt;
  }
  return Refusal{421, "misdirected_request",
                 "this service does not answer to the host \"" + host +
                     "\"; list it in the config's allowed_hosts to allow it"};
}

std::optional<Refusal> check_origin(const ServeConfig& config, const HttpRequest& head) {
  auto origin = head.header("Origin");
  if (!origin) return std::nullopt;  // agents and curl send none
  std::string text = lowercase(*origin);
  while (text.ends_with("/")) text.pop_back();
  for (const std::string& allowed : config.allowed_origins) {
    std::string listed = lowercase(allowed);
    while (listed.ends_with("/")) listed.pop_back();
    if (listed == text) return std::nullopt;
  }
  const size_t scheme = text.find("://");
  if (scheme != std::string::npos && is_loopback_name(host_of(text.substr(scheme + 3)))) {
    return std::nullopt;
  }
  return Refusal{403, "origin_forbidden",
                 "requests from the browser origin \"" + std::string(*origin) +
                     "\" are not accepted; list it in the config's allowed_origins to allow it"};
}

// A page on another site can POST without a preflight only as a form or as text/plain; neither
// is a request body this API reads, so such a request never reaches a handler.
std::optional<Refusal> check_body_type(const HttpRequest& head) {
  if (head.method != "POST" || !has_body(head)) return std::nullopt;
  // Sandbox traffic carries multipart uploads and Connect envelopes, and is admitted only with
  // a workspace's access token in a header, which a page on another site cannot send unasked.
  if (head.path().starts_with(kE2bSandboxPrefix)) return std::nullopt;
  auto type = head.header("Content-Type");
  if (type && (lists_media_type(*type, kJsonType) ||
               (head.path() != "/mcp" && lists_media_type(*type, kProtobufType)))) {
    return std::nullopt;
  }
  return Refusal{415, "unsupported_media_type",
                 "Content-Type must be application/json" +
                     std::string(head.path() == "/mcp" ? "" : " or application/x-protobuf") +
                     " (with curl: -H 'Content-Type: application/json')"};
}

}  // namespace

bool has_body(const HttpRequest& head) {
  if (!head.body.empty() || head.header("Transfer-Encoding")) return true;
  auto length = head.header("Content-Length");
  return length && *length != "0";
}

std::string host_of(std::string_view authority) {
  std::string_view host = authority;
  if (host.starts_with("[")) {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? host : host.substr(0, close + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  host = host.substr(0, host.find('/'));
  return lowercase(host);
}

std::variant<Identity, Refusal> admit(const ServeConfig& config, const Authenticator& auth,
                                      const HttpRequest& head) {
  // An absolute URL as the target (http://host/path) is what a proxy is sent; its host would
  // stand beside the Host header that check_host reads, so it is not taken at all.
  if (!head.target.starts_with('/')) {
    return Refusal{400, "bad_request",
                   "the request target must be a path starting with \"/\"; this service is not a "
                   "proxy, send the URL's path alone"};
  }
  if (auto refusal = check_host(config, head)) return *refusal;
  if (auto refusal = check_origin(config, head)) return *refusal;
  Identity identity;
  if (needs_key(head.path())) {
    // E2B's SDKs send their key as X-API-KEY; it is an airlock key like any other.
    std::optional<std::string> e2b_key;
    if (head.path().starts_with(kE2bApiPrefix)) {
      if (auto key = head.header("X-API-KEY"); key && !key->empty()) {
        e2b_key = "Bearer " + std::string(*key);
      }
    }
    auto authorization = e2b_key ? std::optional<std::string_view>(*e2b_key)
                                 : head.header("Authorization");
    if (auto failure = auth.authenticate(authorization, identity)) {
      return Refusal{401,
                     "unauthorized",
                     *failure == AuthFailure::missing
                         ? head.path().starts_with(kE2bApiPrefix)
                               ? "an API key is required: send the header `X-API-KEY: <key>` "
                                 "(E2B_API_KEY)"
                               : "an API key is required: send the header `Authorization: "
                                 "Bearer <key>`"
                         : "the API key is not valid",
                     {{"WWW-Authenticate", "Bearer"}}};
    }
  }
  if (auto refusal = check_body_type(head)) return *refusal;
  identity.client = head.peer;
  return identity;
}

}  // namespace airlock::api
