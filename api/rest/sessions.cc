#include "api/rest/sessions.h"

#include <ctime>

#include "api/job_builder.h"
#include "api/rest/responses.h"
#include "api/wire/text.h"
#include "api/wire/wire.h"
#include "policies/units.h"
#include "runner/workdir.h"

namespace airlock::api {
namespace {

constexpr std::string_view kSessions = "/v1/sessions";

HttpResponse refused(const ApiContext& context, const runner::SessionError& refusal,
                     WireFormat format) {
  HttpResponse response = error(status_for(refusal.refusal), code_for(refusal.refusal),
                                refusal.message, format, refusal.field);
  if (response.status == 429 || response.status == 503) {
    response.headers.emplace_back("Retry-After",
                                  std::to_string(context.config.retry_after.count()));
  }
  return response;
}

std::string rfc3339(std::chrono::system_clock::time_point time) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms % 1000));
  return text;
}

// Decodes %XX escapes of a path segment; nullopt for a malformed escape or a NUL.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int high = hex(text[i + 1]), low = hex(text[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0)) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

bool is_session_id(std::string_view text) {
  return runner::IdMaker::well_formed("se", text);
}

std::optional<v1::Error> decode_body(const HttpRequest& request, const ApiContext& context,
                                     google::protobuf::Message& message, int& status) {
  // Every field of a session request has a default: an empty body asks for all of them.
  return decode_request_body(request, context.config.max_body_bytes, message, status,
                             EmptyBody::all_defaults);
}

HttpResponse create_session(const ApiContext& context, const HttpRequest& request,
                            const Identity& identity, WireFormat format) {
  v1::SessionRequest message;
  int status = 400;
  if (auto problem = decode_body(request, context, message, status)) {
    return error_response(status, *problem, format);
  }
  runner::SessionRequest wanted;
  wanted.runtime = message.runtime();
  wanted.owner = identity.key_name;
  if (wanted.runtime.empty()) {
    return error(400, "invalid_request",
                 "runtime: required; sessions support: " + joined(context.sessions->runtimes()),
                 format, "runtime", context.sessions->runtimes());
  }
  for (auto [text, field, target] :
       {std::tuple{&message.idle_timeout(), "idle_timeout", &wanted.idle_timeout},
        std::tuple{&message.max_lifetime(), "max_lifetime", &wanted.max_lifetime}}) {
    if (text->empty()) continue;
    auto parsed = policies::parse_duration(*text);
    if (auto* problem = std::get_if<std::string>(&parsed)) {
      return error(400, "invalid_request", std::string(field) + ": " + *problem, format, field);
    }
    *target = std::get<std::chrono::milliseconds>(parsed);
  }
  const std::string policy_name =
      message.policy().empty() ? context.config.default_policy : message.policy();
  std::vector<std::string> usable = usable_policies(context, identity);
  if (!identity.may_use(policy_name)) {
    return error(
        403, "policy_forbidden",
        "this API key may not use policy \"" + policy_name + "\"; it may use: " + joined(usable),
        format, "policy", usable);
  }
  wanted.policy = context.policies.get(policy_name);
  if (!wanted.policy) {
    return error(400, "unknown_policy",
                 "no policy named \"" + policy_name + "\"; valid: " + joined(usable), format,
                 "policy", usable);
  }
  // The key's egress list narrows the session's policy as it does a one-shot run's.
  wanted.policy = std::get<std::shared_ptr<const policies::Policy>>(
      narrowed_policy(wanted.policy, identity, std::nullopt));
  auto created = context.sessions->create(wanted);
  if (auto* refusal = std::get_if<runner::SessionError>(&created)) {
    return refused(context, *refusal, format);
  }
  HttpResponse response =
      message_response(201, to_session_info(std::get<runner::SessionInfo>(created)), format);
  response.headers.emplace_back(
      "Location", std::string(kSessions) + "/" + std::get<runner::SessionInfo>(created).id);
  return response;
}

Dispatch session_files(const ApiContext& context, const HttpRequest& request,
                       const Identity& identity, const std::string& id, std::string_view rest,
                       WireFormat format) {
  runner::SessionManager& sessions = *context.sessions;
  if (rest.empty()) {
    if (request.method != "GET") return method_not_allowed("GET", format);
    auto listed = sessions.list_files(id, identity.key_name);
    if (auto* refusal = std::get_if<runner::SessionError>(&listed))
      return refused(context, *refusal, format);
    v1::SessionFileList list;
    const auto& files = std::get<runner::SessionFileList>(listed);
    for (const auto& file : files.files) {
      auto* entry = list.add_files();
      entry->set_path(to_valid_utf8(file.path));
      entry->set_size_bytes(file.size_bytes);
    }
    list.set_truncated(files.truncated);
    return message_response(200, list, format);
  }
  auto path = percent_decode(rest);
  if (!path)
    return error(400, "invalid_request", "the file path has a malformed %-escape", format, "path");
  if (request.method == "GET") {
    auto read = sessions.read_file(id, identity.key_name, *path, context.config.max_file_bytes);
    if (auto* refusal = std::get_if<runner::SessionError>(&read)) {
      return refused(context, *refusal, format);
    }
    const runner::OutputFile& file = std::get<runner::OutputFile>(read);
    if (file.truncated) {
      return error(413, "file_too_large",
                   "'" + *path + "' is " + std::to_string(file.size_bytes) +
                       " bytes, more than the " + std::to_string(context.config.max_file_bytes) +
                       " bytes a download may have",
                   format);
    }
    return HttpResponse{200, file.media_type, {}, file.content};
  }
  if (request.method == "PUT") {
    if (request.body.size() > context.config.max_body_bytes) {
      return error(
          413, "body_too_large", body_too_large_message(context.config.max_body_bytes), format);
    }
    if (auto refusal = sessions.write_file(id, identity.key_name, *path, request.body)) {
      return refused(context, *refusal, format);
    }
    v1::SessionFile written;
    written.set_path(*path);
    written.set_size_bytes(request.body.size());
    return message_response(201, written, format);
  }
  return method_not_allowed("GET, PUT", format);
}

}  // namespace

int status_for(runner::SessionRefusal refusal) {
  switch (refusal) {
    case runner::SessionRefusal::too_many_sessions:
    case runner::SessionRefusal::too_many_for_owner:
      return 429;
    case runner::SessionRefusal::invalid:
      return 400;
    case runner::SessionRefusal::setup_failed:
      return 500;
    case runner::SessionRefusal::not_found:
      return 404;
    case runner::SessionRefusal::lost:
      return 410;
    case runner::SessionRefusal::elsewhere:
      return 421;
    case runner::SessionRefusal::shutting_down:
      return 503;
    case runner::SessionRefusal::busy:
      return 409;
  }
  return 500;
}

std::string code_for(runner::SessionRefusal refusal) {
  switch (refusal) {
    case runner::SessionRefusal::too_many_sessions:
      return "too_many_sessions";
    case runner::SessionRefusal::too_many_for_owner:
      return "too_many_sessions_for_key";
    case runner::SessionRefusal::invalid:
      return "invalid_request";
    case runner::SessionRefusal::setup_failed:
      return "setup_failed";
    case runner::SessionRefusal::not_found:
      return "not_found";
    case runner::SessionRefusal::lost:
      return "session_lost";
    case runner::SessionRefusal::elsewhere:
      return "wrong_replica";
    case runner::SessionRefusal::shutting_down:
      return "shutting_down";
    case runner::SessionRefusal::busy:
      return "session_busy";
  }
  return "internal";
}

v1::SessionInfo to_session_info(const runner::SessionInfo& info) {
  v1::SessionInfo out;
  out.set_id(info.id);
  out.set_runtime(info.runtime);
  out.mutable_policy()->set_name(info.policy_name);
  out.mutable_policy()->set_hash(info.policy_hash);
  out.set_idle_timeout(policies::format_duration(info.idle_timeout));
  out.set_max_lifetime(policies::format_duration(info.max_lifetime));
  out.set_created_at(rfc3339(info.created_at));
  out.set_last_used_at(rfc3339(info.last_used_at));
  out.set_idle_expires_at(rfc3339(info.idle_expires_at));
  out.set_lifetime_ends_at(rfc3339(info.lifetime_ends_at));
  out.set_expires_at(rfc3339(info.busy ? info.lifetime_ends_at
                                       : std::min(info.idle_expires_at, info.lifetime_ends_at)));
  out.set_busy(info.busy);
  out.set_executions(info.executions);
  out.set_interpreter_restarts(info.interpreter_restarts);
  return out;
}

std::variant<Job, JobRefusal> build_session_job(const ApiContext& context,
                                                       const Identity& identity,
                                                       const std::string& session_id,
                                                       v1::ExecutionRequest message) {
  runner::SessionManager& sessions = *context.sessions;
  auto info = sessions.info(session_id, identity.key_name);
  if (!info) {
    const runner::SessionError why = sessions.missing(session_id);
    return JobRefusal{status_for(why.refusal), make_error(code_for(why.refusal), why.message)};
  }
  if (!message.runtime().empty() && message.runtime() != info->runtime) {
    return JobRefusal{
        400, make_error("invalid_request",
                        "runtime: this session runs " + info->runtime + ", not " +
                            message.runtime() + "; leave runtime out or create another session",
                        "runtime")};
  }
  if (!message.policy().empty() && message.policy() != info->policy_name) {
    return JobRefusal{
        400, make_error("invalid_request",
                        "policy: this session runs under policy \"" + info->policy_name +
                            "\"; leave policy out or create another session",
                        "policy")};
  }
  if (!message.args().empty()) {
    return JobRefusal{
        400, make_error("invalid_request",
                        "args: a session's interpreter is already running, so it takes no "
                        "arguments; put values in the code",
                        "args")};
  }
  // The session's sandbox was made with its policy's egress, memory and process limits; an
  // execution cannot narrow them, and must not seem to.
  if (message.has_egress()) {
    return JobRefusal{
        400, make_error("invalid_request",
                        "egress: a session's sandbox keeps the egress of its policy \"" +
                            info->policy_name +
                            "\"; leave egress out, or run this code as a one-shot execution",
                        "egress")};
  }
  if (!message.limits().memory().empty() || message.limits().processes() != 0) {
    const char* field = message.limits().memory().empty() ? "limits.processes" : "limits.memory";
    return JobRefusal{
        400, make_error("invalid_request",
                        std::string(field) +
                            ": a session's sandbox keeps the memory and process limits of its "
                            "policy; an execution may set only wall_time and cpu_time",
                        field)};
  }
  message.set_runtime(info->runtime);
  message.set_policy(info->policy_name);
  auto built = build_job(context, identity, message);
  if (auto* refusal = std::get_if<JobRefusal>(&built)) return std::move(*refusal);
  Job job = std::move(std::get<Job>(built));
  auto acquired = sessions.acquire(session_id, identity.key_name);
  if (auto* refusal = std::get_if<runner::SessionError>(&acquired)) {
    return JobRefusal{status_for(refusal->refusal),
                      make_error(code_for(refusal->refusal), refusal->message)};
  }
  auto lease = std::get<std::shared_ptr<runner::SessionLease>>(acquired);
  // What runs is the session's policy as it was made, whatever the file says now: the audit
  // record and the started event name that one.
  job.policy = sessions.policy_of(*lease);
  // The lease lives in job.hold, which is let go just before the final event goes out, so that
  // a client that reads it may use the session at once. A copy held by `run` would keep the
  // session busy until the job itself is gone, after the client could have sent its next request.
  // The request comes from the job when it runs: only then does it carry the execution id the
  // client sees, which a state-lost note names.
  job.run = [&sessions, held = lease.get()](const runner::RunRequest& request,
                                            const runner::EventSink& sink, int cancel_fd) {
    return sessions.execute(*held, request, sink, cancel_fd);
  };
  job.hold = lease;
  job.session_id = session_id;
  return job;
}

Dispatch handle_sessions(const ApiContext& context, const HttpRequest& request,
                         const Identity& identity, WireFormat format) {
  if (context.sessions == nullptr) {
    return error(404, "not_found", "this service offers no sessions", format);
  }
  const std::string_view path = request.path();
  const std::string& method = request.method;
  if (path == kSessions) {
    if (method == "POST") return create_session(context, request, identity, format);
    if (method == "GET") {
      v1::SessionList list;
      for (const auto& info : context.sessions->list(identity.key_name)) {
        *list.add_sessions() = to_session_info(info);
      }
      return message_response(200, list, format);
    }
    return method_not_allowed("GET, POST", format);
  }
  std::string_view rest = path.substr(kSessions.size() + 1);
  const size_t slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  if (!is_session_id(id)) return error(404, "not_found", "no such session", format);
  const auto missing = [&] { return refused(context, context.sessions->missing(id), format); };
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  if (rest.empty() && slash == std::string_view::npos) {
    if (method == "GET") {
      auto info = context.sessions->info(id, identity.key_name);
      if (!info) return missing();
      return message_response(200, to_session_info(*info), format);
    }
    if (method == "DELETE") {
      auto info = context.sessions->info(id, identity.key_name);
      if (!info || !context.sessions->close(id, identity.key_name)) return missing();
      return message_response(200, to_session_info(*info), format);
    }
    return method_not_allowed("GET, DELETE", format);
  }
  if (rest == "executions") {
    if (method != "POST") return method_not_allowed("POST", format);
    v1::ExecutionRequest message;
    int status = 400;
    if (auto problem = decode_body(request, context, message, status)) {
      return error_response(status, *problem, format);
    }
    PendingExecution pending;
    pending.format = format;
    auto accept = request.header("Accept");
    pending.stream = accept && prefers_event_stream(*accept);
    auto built = build_session_job(context, identity, id, std::move(message));
    if (auto* refusal = std::get_if<JobRefusal>(&built)) {
      return error_response(refusal->status, refusal->error, format);
    }
    pending.job = std::move(std::get<Job>(built));
    return pending;
  }
  if (rest == "files") return session_files(context, request, identity, id, {}, format);
  if (rest.starts_with("files/")) {
    return session_files(context, request, identity, id, rest.substr(6), format);
  }
  return error(404, "not_found", "no such path: " + std::string(path), format);
}

}  // namespace airlock::api
