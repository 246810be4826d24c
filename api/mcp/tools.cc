#include "api/mcp/tools.h"

#include <algorithm>

#include "api/job_builder.h"
#include "api/mcp/endpoint.h"
#include "api/rest/sessions.h"
#include "api/wire/text.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"
#include "policies/units.h"
#include "runner/output_buffer.h"

namespace airlock::api {
namespace {

using json::Value;

Value text_block(std::string text) {
  return json::object({{"type", json::string("text")}, {"text", json::string(std::move(text))}});
}

Value tool_result(std::vector<Value> content, bool is_error) {
  return json::object(
      {{"content", json::array(std::move(content))}, {"isError", json::boolean(is_error)}});
}

// A string argument: absent is nullopt; present but not a string is an error.
std::optional<std::string> string_arg(const Value& args, const char* name, std::string& problem) {
  const Value* value = json::field(args, name);
  if (value == nullptr || value->kind_case() == Value::kNullValue) return std::nullopt;
  if (value->kind_case() != Value::kStringValue) {
    problem = std::string(name) + " must be a string";
    return std::nullopt;
  }
  return value->string_value();
}

// A protocol error naming the first argument the tool does not take, or nullopt. Models misspell
// arguments; a silently ignored "timout" would run with the default limit.
std::optional<ToolProtocolError> unknown_argument(const Value& args,
                                                  std::initializer_list<const char*> known) {
  if (!args.has_struct_value()) return std::nullopt;
  for (const auto& field : args.struct_value().fields()) {
    // Not a structured binding: clang 14 (Debian 12's, which the fuzz build uses) cannot
    // capture one in a lambda.
    const std::string& name = field.first;
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return name == k; }) !=
        known.end()) {
      continue;
    }
    std::string valid;
    for (const char* k : known) valid += (valid.empty() ? "" : ", ") + std::string(k);
    return ToolProtocolError{kInvalidParams, "unknown argument \"" + to_valid_utf8(name) +
                                                 "\"; this tool takes: " +
                                                 (valid.empty() ? "no arguments" : valid)};
  }
  return std::nullopt;
}

// A refusal as the model should read it: the request field it names becomes the tool argument
// the model wrote ("timeout", not "limits.wall_time").
std::string as_tool_message(const v1::Error& error) {
  static const std::pair<std::string_view, std::string_view> kArguments[] = {
      {"limits.wall_time", "timeout"}, {"output.files", "output_files"}};
  std::string message = error.message();
  for (const auto& [field, argument] : kArguments) {
    if (error.field().starts_with(field) && message.starts_with(field)) {
      message = std::string(argument) + message.substr(field.size());
    }
  }
  return message;
}

bool is_image(const std::string& media_type) {
  return media_type == "image/png" || media_type == "image/jpeg" || media_type == "image/gif" ||
         media_type == "image/webp";
}

// A file as a content block: an image as an image; text or other bytes as text when they fit the
// budget; else one line saying what the file is and how to get at it, since a model can do
// nothing with a cut-off base64 text.
Value file_block(const v1::OutputFile& file, uint64_t budget) {
  if (is_image(file.media_type()) && file.encoding() == "base64" && !file.truncated()) {
    return json::object({{"type", json::string("image")},
                         {"data", json::string(file.content())},
                         {"mimeType", json::string(file.media_type())}});
  }
  std::string header = "file " + file.path() + " (" + sandbox::format_bytes(file.size_bytes()) +
                       ", " + file.media_type();
  if (file.truncated() || file.content().size() > budget) {
    return text_block(header + ") is too large to return here; read the part you need with "
                               "code (e.g. its first lines, or a summary of it)");
  }
  if (file.encoding() == "base64") return text_block(header + "), base64:\n" + file.content());
  return text_block(header + "):\n" + file.content());
}

// max_output: a size with a unit ("64 KiB") or a number of bytes; the default when absent.
std::variant<uint64_t, ToolProtocolError> output_budget(const Value& args) {
  const Value* value = json::field(args, "max_output");
  if (value == nullptr || value->kind_case() == Value::kNullValue) return kDefaultToolOutputBudget;
  uint64_t bytes = 0;
  if (value->kind_case() == Value::kNumberValue && value->number_value() >= 1 &&
      value->number_value() <= 1e12) {
    bytes = static_cast<uint64_t>(value->number_value());
  } else if (value->kind_case() == Value::kStringValue) {
    auto parsed = policies::parse_bytes(value->string_value());
    if (auto* problem = std::get_if<std::string>(&parsed)) {
      return ToolProtocolError{kInvalidParams, "max_output: " + *problem};
    }
    bytes = std::get<uint64_t>(parsed);
  } else {
    return ToolProtocolError{kInvalidParams,
                             "max_output: expected a size such as \"64 KiB\" or a number of bytes"};
  }
  return std::max(bytes, kMinToolOutputBudget);
}

ToolCall run_code(const ApiContext& context, const Identity& identity, const Value& args) {
  if (auto unknown = unknown_argument(args, {"runtime", "language", "code", "session_id", "stdin",
                                             "policy", "timeout", "output_files", "max_output"})) {
    return *unknown;
  }
  std::string problem;
  auto runtime = string_arg(args, "runtime", problem);
  if (!runtime) runtime = string_arg(args, "language", problem);  // the old name, still taken
  auto code = string_arg(args, "code", problem);
  auto session = string_arg(args, "session_id", problem);
  auto stdin_text = string_arg(args, "stdin", problem);
  auto policy = string_arg(args, "policy", problem);
  auto wall_time = string_arg(args, "timeout", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  auto budget = output_budget(args);
  if (auto* error = std::get_if<ToolProtocolError>(&budget)) return *error;
  if (!code) return ToolProtocolError{kInvalidParams, "code: required"};
  if (!runtime && !session) {
    return ToolProtocolError{kInvalidParams, "runtime: required unless session_id is given"};
  }
  v1::ExecutionRequest message;
  message.set_runtime(runtime.value_or(""));
  message.set_code(*code);
  message.set_stdin(stdin_text.value_or(""));
  message.set_policy(policy.value_or(""));
  if (wall_time) message.mutable_limits()->set_wall_time(*wall_time);
  const Value* globs = json::field(args, "output_files");
  if (globs == nullptr) {
    message.mutable_output()->add_files("*.png");  // plots come back as images by default
  } else if (!globs->has_list_value()) {
    return ToolProtocolError{kInvalidParams, "output_files must be an array of globs"};
  } else {
    for (const Value& glob : globs->list_value().values()) {
      if (glob.kind_case() != Value::kStringValue) {
        return ToolProtocolError{kInvalidParams, "output_files must hold strings"};
      }
      message.mutable_output()->add_files(glob.string_value());
    }
  }
  PendingExecution pending;
  pending.tool_output_budget = std::get<uint64_t>(budget);
  if (session) {
    if (context.sessions == nullptr) return tool_error_result("this service offers no sessions");
    auto built = build_session_job(context, identity, *session, message);
    if (auto* refusal = std::get_if<JobRefusal>(&built)) {
      if (refusal->status == 403) report_forbidden(context, identity, refusal->error.code(), "/mcp");
      return tool_error_result(as_tool_message(refusal->error));
    }
    pending.job = std::move(std::get<Job>(built));
  } else {
    auto built = build_job(context, identity, message);
    if (auto* refusal = std::get_if<JobRefusal>(&built)) {
      if (refusal->status == 403) report_forbidden(context, identity, refusal->error.code(), "/mcp");
      return tool_error_result(as_tool_message(refusal->error));
    }
    pending.job = std::move(std::get<Job>(built));
  }
  return pending;
}

ToolCall create_session(const ApiContext& context, const Identity& identity, const Value& args) {
  if (auto unknown = unknown_argument(args, {"runtime", "policy", "idle_timeout", "max_lifetime"})) {
    return *unknown;
  }
  std::string problem;
  auto runtime = string_arg(args, "runtime", problem);
  auto policy = string_arg(args, "policy", problem);
  auto idle = string_arg(args, "idle_timeout", problem);
  auto lifetime = string_arg(args, "max_lifetime", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!runtime) return ToolProtocolError{kInvalidParams, "runtime: required"};
  if (context.sessions == nullptr) return tool_error_result("this service offers no sessions");
  v1::SessionRequest message;
  message.set_runtime(*runtime);
  message.set_policy(policy.value_or(""));
  message.set_idle_timeout(idle.value_or(""));
  message.set_max_lifetime(lifetime.value_or(""));
  HttpRequest request{"POST",
                      "/v1/sessions",
                      {{"Content-Type", "application/json"}},
                      encode(message, WireFormat::json),
                      ""};
  Dispatch answer = handle_sessions(context, request, identity, WireFormat::json);
  const HttpResponse& response = std::get<HttpResponse>(answer);
  v1::SessionInfo created;
  if (response.status != 201 || decode(response.body, WireFormat::json, created)) {
    v1::ErrorResponse error;
    std::string why =
        decode(response.body, WireFormat::json, error) ? response.body : error.error().message();
    if (response.status == 403) report_forbidden(context, identity, error.error().code(), "/mcp");
    return tool_error_result("could not create a session: " + why);
  }
  return tool_result(
      {text_block("created session " + created.id() + " (" + created.runtime() + ", policy " +
                  created.policy().name() + "). Pass session_id \"" + created.id() +
                  "\" to run_code. It ends after " + created.idle_timeout() +
                  " without use, and at " + created.lifetime_ends_at() + " at the latest.\n" +
                  encode(created, WireFormat::json))},
      false);
}

// The session_id argument, or the call's answer when it is missing or sessions are off.
std::variant<std::string, ToolCall> session_arg(const ApiContext& context, const Value& args,
                                                std::initializer_list<const char*> known) {
  if (auto unknown = unknown_argument(args, known)) return *unknown;
  std::string problem;
  auto session = string_arg(args, "session_id", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!session) return ToolProtocolError{kInvalidParams, "session_id: required"};
  if (context.sessions == nullptr) return tool_error_result("this service offers no sessions");
  return *session;
}

ToolCall close_session(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args, {"session_id"});
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  const std::string& session = std::get<std::string>(id);
  if (!context.sessions->close(session, identity.key_name)) {
    return tool_error_result(context.sessions->missing(session).message);
  }
  return tool_result(
      {text_block("closed session " + session + "; its interpreter and files are gone")}, false);
}

ToolCall list_runtimes(const ApiContext& context, const Identity& identity, const Value& args) {
  if (auto unknown = unknown_argument(args, {})) return *unknown;
  std::vector<std::string> session_runtimes;
  if (context.sessions) session_runtimes = context.sessions->runtimes();
  std::string text = "runtimes (values of run_code's runtime):\n";
  for (const auto& [name, runtime] : context.executor.runtimes()) {
    bool sessions =
        std::find(session_runtimes.begin(), session_runtimes.end(), name) != session_runtimes.end();
    text += "- " + name + ": " + runtime.description + (sessions ? " (sessions: yes)" : "") + "\n";
  }
  text += "policies this key may use: " + joined(usable_policies(context, identity)) +
          " (default: " + context.config.default_policy + ")";
  return tool_result({text_block(text)}, false);
}

ToolCall list_files(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args, {"session_id"});
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  auto listed = context.sessions->list_files(std::get<std::string>(id), identity.key_name);
  if (auto* refusal = std::get_if<runner::SessionError>(&listed))
    return tool_error_result(refusal->message);
  std::string text;
  const auto& files = std::get<runner::SessionFileList>(listed);
  for (const auto& file : files.files) {
    text += to_valid_utf8(file.path) + " (" + std::to_string(file.size_bytes) + " bytes)\n";
  }
  if (files.truncated) text += "(not every file is listed: the working directory holds too many)\n";
  return tool_result({text_block(text.empty() ? "the working directory has no files" : text)},
                     false);
}

ToolCall read_file(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args, {"session_id", "path"});
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  std::string problem;
  auto path = string_arg(args, "path", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!path) return ToolProtocolError{kInvalidParams, "path: required"};
  auto read = context.sessions->read_file(std::get<std::string>(id), identity.key_name, *path,
                                          context.config.max_file_bytes);
  if (auto* refusal = std::get_if<runner::SessionError>(&read)) return tool_error_result(refusal->message);
  return tool_result(
      {file_block(to_output_file(std::get<runner::OutputFile>(read)), kDefaultToolOutputBudget)},
      false);
}

ToolCall write_file(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args, {"session_id", "path", "content", "encoding"});
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  std::string problem;
  auto path = string_arg(args, "path", problem);
  auto content = string_arg(args, "content", problem);
  auto encoding = string_arg(args, "encoding", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!path || !content) return ToolProtocolError{kInvalidParams, "path and content: required"};
  std::string bytes = *content;
  if (encoding && *encoding == "base64") {
    auto decoded = base64_decode(*content);
    if (!decoded) return tool_error_result("content is not valid base64");
    bytes = std::move(*decoded);
  } else if (encoding && *encoding != "utf-8") {
    return ToolProtocolError{kInvalidParams, "encoding must be \"utf-8\" or \"base64\""};
  }
  if (bytes.size() > context.config.max_body_bytes) return tool_error_result("content is too large");
  if (auto refusal = context.sessions->write_file(std::get<std::string>(id), identity.key_name,
                                                  *path, bytes)) {
    return tool_error_result(refusal->message);
  }
  return tool_result({text_block("wrote " + std::to_string(bytes.size()) + " bytes to " + *path)},
                     false);
}

}  // namespace

ToolCall call_mcp_tool(const ApiContext& context, const Identity& identity, const std::string& name,
                       const json::Value& arguments) {
  if (name == "run_code") return run_code(context, identity, arguments);
  if (name == "create_session") return create_session(context, identity, arguments);
  if (name == "close_session") return close_session(context, identity, arguments);
  if (name == "list_runtimes") return list_runtimes(context, identity, arguments);
  if (name == "list_session_files") return list_files(context, identity, arguments);
  if (name == "read_session_file") return read_file(context, identity, arguments);
  if (name == "write_session_file") return write_file(context, identity, arguments);
  return ToolProtocolError{kInvalidParams, "unknown tool \"" + name + "\""};
}

json::Value tool_error_result(std::string message) {
  return tool_result({text_block(std::move(message))}, true);
}

json::Value run_tool_result(const v1::Event& final_event, uint64_t output_budget) {
  if (!final_event.has_exit()) {
    return tool_error_result("airlock could not run the code: " + final_event.error().message());
  }
  const v1::ExecutionResult& result = final_event.exit().result();
  const std::string& out = result.stdout();
  const std::string& err = result.stderr();
  // Each stream gets what the other leaves, at least half the budget when both are long.
  const uint64_t out_share =
      std::min<uint64_t>(out.size(), std::max(output_budget / 2, output_budget - std::min<uint64_t>(
                                                                                  err.size(), output_budget)));
  const uint64_t err_share = output_budget - out_share;
  const std::string why = "this result holds " + sandbox::format_bytes(output_budget) +
                          " of output (run_code's max_output); the first and last parts are kept";
  std::vector<Value> content;
  content.push_back(text_block(result.summary()));
  if (!out.empty()) {
    content.push_back(text_block("stdout:\n" + runner::keep_head_and_tail(out, out_share, why)));
  }
  if (!err.empty()) {
    content.push_back(text_block("stderr:\n" + runner::keep_head_and_tail(err, err_share, why)));
  }
  for (const v1::OutputFile& file : result.files()) {
    content.push_back(file_block(file, output_budget));
  }
  return tool_result(std::move(content), result.status() != "ok");
}

}  // namespace airlock::api
