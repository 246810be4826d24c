#include "api/e2b/envd.h"

#include <algorithm>
#include <exception>
#include <string>

#include "api/e2b/envd_internal.h"
#include "api/e2b/sandbox_slots.h"
#include "api/wire/text.h"

namespace airlock::api::e2b {
namespace envd {
namespace {

// The server streams; every other method is unary (StreamInput, a client stream, is refused).
bool is_stream(std::string_view service, std::string_view method) {
  return (service == "process.Process" && (method == "Start" || method == "Connect")) ||
         (service == "filesystem.Filesystem" && method == "WatchDir");
}

// Keepalive-Ping-Interval (seconds, as the SDK sends it), at least 1 s and at most envd's 50 s.
std::chrono::milliseconds keepalive_interval(const HttpRequest& request) {
  auto value = request.header("Keepalive-Ping-Interval");
  if (!value || value->empty() || value->size() > 6) return kMaxKeepaliveInterval;
  int seconds = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return kMaxKeepaliveInterval;
    seconds = seconds * 10 + (c - '0');
  }
  return std::clamp(std::chrono::milliseconds(std::chrono::seconds(seconds)),
                    std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(kMaxKeepaliveInterval));
}

connect::Error internal(std::string message) {
  return {"internal", std::move(message)};
}

}  // namespace

bool is_server_stream(std::string_view service, std::string_view method) {
  return is_stream(service, method);
}

AgentResult read_reply(const runner::AgentReply& reply) {
  if (reply.busy) return connect::Error{"resource_exhausted", reply.error};
  if (!reply.delivered) {
    return connect::Error{"unavailable", "the sandbox did not answer: " + reply.error};
  }
  std::string error;
  auto value = json::parse(reply.json, error);
  if (!value || !value->has_struct_value()) {
    return internal("the sandbox's agent sent a reply that is not a JSON object");
  }
  const json::Value* ok = json::field(*value, "ok");
  if (ok && ok->has_bool_value() && ok->bool_value()) return std::move(*value);
  const json::Value* details = json::field(*value, "error");
  std::string code = details ? text_field(*details, "code") : "";
  std::string message = details ? text_field(*details, "message") : "";
  // The agent is untrusted: a code that is not Connect's (or "ok") would confuse clients.
  if (!connect::is_code(code)) code = "internal";
  if (message.empty()) message = "the sandbox's agent refused the request";
  return connect::Error{code, message};
}

AgentResult call_agent(const Rpc& rpc, const json::Value& request) {
  auto wait = begin_agent_wait(*rpc.workspace);
  if (auto* refused = std::get_if<std::string>(&wait)) {
    return connect::Error{"resource_exhausted", std::move(*refused)};
  }
  runner::AgentReply reply = rpc.workspace->call_and_wait(json::print(request), rpc.wait);
  // Undelivered from a workspace that lives on: the wait ran out, not the workspace.
  if (!reply.delivered && !reply.busy && rpc.workspace->alive()) {
    return connect::Error{"deadline_exceeded", "the sandbox did not answer in time"};
  }
  return read_reply(reply);
}

std::optional<connect::Error> parse_request(const Rpc& rpc, google::protobuf::Message& message) {
  return rpc.streaming ? connect::parse_streaming_request(rpc.request.body, rpc.encoding, message)
                       : connect::parse_unary_request(rpc.request.body, rpc.encoding, message);
}

Dispatch answer(const Rpc& rpc, const google::protobuf::Message& message) {
  return connect::unary_response(message, rpc.encoding);
}

std::optional<std::string> basic_auth_user(const HttpRequest& request) {
  const std::string_view value = request.header("Authorization").value_or("");
  constexpr std::string_view kBasic = "Basic ";
  if (!value.starts_with(kBasic)) return std::nullopt;
  auto decoded = base64_decode(value.substr(kBasic.size()));
  if (!decoded) return std::string("(unreadable)");
  return decoded->substr(0, decoded->find(':'));
}

Dispatch fail(const Rpc& rpc, const connect::Error& error) {
  if (rpc.streaming) return connect::streaming_error(error, rpc.encoding);
  return connect::unary_error(error);
}

double number_field(const json::Value& value, std::string_view name, double fallback) {
  const json::Value* field = json::field(value, name);
  return field && field->has_number_value() ? field->number_value() : fallback;
}

std::string text_field(const json::Value& value, std::string_view name) {
  auto text = json::string_field(value, name);
  return text ? *text : std::string();
}

bool bool_field(const json::Value& value, std::string_view name) {
  const json::Value* field = json::field(value, name);
  return field && field->has_bool_value() && field->bool_value();
}

}  // namespace envd

Dispatch handle_envd(const HttpRequest& request, std::shared_ptr<runner::Workspace> workspace,
                     AuditWorkspace audit) {
  // The last two segments name the method (any prefix, such as /e2b/sandbox, is the router's).
  const std::string_view path = request.path();
  const size_t slash = path.rfind('/');
  const size_t before = slash == std::string_view::npos || slash == 0 ? std::string_view::npos
                                                                      : path.rfind('/', slash - 1);
  if (before == std::string_view::npos) {
    HttpResponse response = connect::unary_error({"unimplemented", "no such envd method"});
    response.status = 404;
    return response;
  }
  const std::string_view service = path.substr(before + 1, slash - before - 1);
  const std::string_view method = path.substr(slash + 1);
  if (service != "process.Process" && service != "filesystem.Filesystem") {
    // Connect answers a route it does not serve with 404, which clients read as unimplemented.
    HttpResponse response =
        connect::unary_error({"unimplemented", "no such service: " + std::string(service)});
    response.status = 404;
    return response;
  }
  if (request.method != "POST") {
    HttpResponse response = connect::unary_error(
        {"unimplemented", "Connect calls are POST requests, not " + request.method});
    response.status = 405;
    response.headers.emplace_back("Allow", "POST");
    return response;
  }

  envd::Rpc rpc{request, std::move(workspace)};
  rpc.audit = std::move(audit);
  rpc.streaming = envd::is_server_stream(service, method);
  const std::string_view content_type = request.header("Content-Type").value_or("");
  auto encoding = rpc.streaming ? connect::streaming_encoding(content_type)
                                : connect::unary_encoding(content_type);
  // StreamInput (a client stream) arrives enveloped: answer it in its own framing.
  if (!encoding && !rpc.streaming) {
    if (auto streaming = connect::streaming_encoding(content_type)) {
      rpc.streaming = true;
      encoding = streaming;
    }
  }
  if (!encoding) {
    HttpResponse response = connect::unary_error(
        {"invalid_argument", "unsupported Content-Type \"" + std::string(content_type) + "\""});
    response.status = 415;
    response.headers.emplace_back("Accept-Post", rpc.streaming
                                                     ? "application/connect+json, "
                                                       "application/connect+proto"
                                                     : "application/json, application/proto");
    return response;
  }
  rpc.encoding = *encoding;
  if (auto timeout = connect::requested_timeout(request)) {
    rpc.deadline = std::chrono::steady_clock::now() + *timeout;
    rpc.wait = std::min(rpc.wait, *timeout);
  }
  rpc.keepalive_interval = envd::keepalive_interval(request);
  // The SDKs name the user to act as in HTTP Basic auth ("root:" for user: 'root'); everything in
  // a sandbox runs as "user", so another name is refused rather than silently ignored.
  if (auto user = envd::basic_auth_user(request); user && *user != "user") {
    return envd::fail(rpc,
                      {"invalid_argument",
                       "user \"" + *user + "\": airlock runs everything in a sandbox as \"user\""});
  }

  try {
    std::optional<Dispatch> dispatch;
    if (service == "process.Process") dispatch = envd::handle_process(method, rpc);
    if (service == "filesystem.Filesystem") dispatch = envd::handle_filesystem(method, rpc);
    if (dispatch) return std::move(*dispatch);
  } catch (const std::exception& e) {
    return envd::fail(rpc, envd::internal(std::string("envd call failed: ") + e.what()));
  }
  HttpResponse response = connect::unary_error(
      {"unimplemented", "no such method: " + std::string(service) + "/" + std::string(method)});
  response.status = 404;
  return response;
}

}  // namespace airlock::api::e2b
