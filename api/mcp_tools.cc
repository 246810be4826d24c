#include "api/mcp_tools.h"

#include "api/job_builder.h"
#include "api/mcp.h"
#include "api/sessions_api.h"
#include "api/text.h"
#include "api/translate.h"
#include "api/wire.h"

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


Value property(std::string type, std::string description) {
  return json::object({{"type", json::string(std::move(type))},
                       {"description", json::string(std::move(description))}});
}

Value schema(std::initializer_list<std::pair<std::string, Value>> properties,
             std::vector<std::string> required) {
  std::vector<Value> names;
  for (auto& name : required) names.push_back(json::string(name));
  return json::object({{"type", json::string("object")},
                       {"properties", json::object(properties)},
                       {"required", json::array(std::move(names))},
                       {"additionalProperties", json::boolean(false)}});
}

Value tool(std::string name, std::string title, std::string description, Value input_schema) {
  return json::object({{"name", json::string(std::move(name))},
                       {"title", json::string(std::move(title))},
                       {"description", json::string(std::move(description))},
                       {"inputSchema", std::move(input_schema)}});
}

std::string names_of(const std::vector<std::string>& names) {
  return joined(names);
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

bool is_image(const std::string& media_type) {
  return media_type == "image/png" || media_type == "image/jpeg" || media_type == "image/gif" ||
         media_type == "image/webp";
}

Value file_block(const v1::OutputFile& file) {
  if (is_image(file.media_type()) && file.encoding() == "base64" && !file.truncated()) {
    return json::object({{"type", json::string("image")},
                         {"data", json::string(file.content())},
                         {"mimeType", json::string(file.media_type())}});
  }
  std::string header = "file " + file.path() + " (" + std::to_string(file.size_bytes()) +
                       " bytes, " + file.media_type() + (file.truncated() ? ", truncated" : "") +
                       ")";
  if (file.encoding() == "base64") return text_block(header + ", base64:\n" + file.content());
  return text_block(header + ":\n" + file.content());
}

ToolCall run_code(const ApiContext& context, const Identity& identity, const Value& args) {
  std::string problem;
  auto language = string_arg(args, "language", problem);
  auto code = string_arg(args, "code", problem);
  auto session = string_arg(args, "session_id", problem);
  auto stdin_text = string_arg(args, "stdin", problem);
  auto policy = string_arg(args, "policy", problem);
  auto wall_time = string_arg(args, "timeout", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!code) return ToolProtocolError{kInvalidParams, "code: required"};
  if (!language && !session) {
    return ToolProtocolError{kInvalidParams, "language: required unless session_id is given"};
  }
  v1::ExecutionRequest message;
  message.set_language(language.value_or(""));
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
  if (session) {
    if (context.sessions == nullptr) return tool_error_result("this service offers no sessions");
    auto built = build_session_job(context, identity, *session, message);
    if (auto* refusal = std::get_if<SessionJobRefusal>(&built))
      return tool_error_result(refusal->error.message());
    pending.job = std::move(std::get<Job>(built));
  } else {
    auto built = build_job(context, identity, message);
    if (auto* refusal = std::get_if<JobRefusal>(&built))
      return tool_error_result(refusal->error.message());
    pending.job = std::move(std::get<Job>(built));
  }
  return pending;
}

ToolCall create_session(const ApiContext& context, const Identity& identity, const Value& args) {
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
std::variant<std::string, ToolCall> session_arg(const ApiContext& context, const Value& args) {
  std::string problem;
  auto session = string_arg(args, "session_id", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!session) return ToolProtocolError{kInvalidParams, "session_id: required"};
  if (context.sessions == nullptr) return tool_error_result("this service offers no sessions");
  return *session;
}

ToolCall close_session(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args);
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  const std::string& session = std::get<std::string>(id);
  if (!context.sessions->close(session, identity.key_name)) {
    return tool_error_result("no session \"" + session + "\" (it may have been closed or have expired)");
  }
  return tool_result(
      {text_block("closed session " + session + "; its interpreter and files are gone")}, false);
}

ToolCall list_runtimes(const ApiContext& context, const Identity& identity) {
  std::vector<std::string> session_runtimes;
  if (context.sessions) session_runtimes = context.sessions->runtimes();
  std::string text = "runtimes (language values for run_code):\n";
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
  auto id = session_arg(context, args);
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  auto listed = context.sessions->list_files(std::get<std::string>(id), identity.key_name);
  if (auto* refusal = std::get_if<runner::SessionError>(&listed))
    return tool_error_result(refusal->message);
  std::string text;
  for (const auto& file : std::get<std::vector<runner::SessionFile>>(listed)) {
    text += to_valid_utf8(file.path) + " (" + std::to_string(file.size_bytes) + " bytes)\n";
  }
  return tool_result({text_block(text.empty() ? "the working directory has no files" : text)},
                     false);
}

ToolCall read_file(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args);
  if (auto* answer = std::get_if<ToolCall>(&id)) return std::move(*answer);
  std::string problem;
  auto path = string_arg(args, "path", problem);
  if (!problem.empty()) return ToolProtocolError{kInvalidParams, problem};
  if (!path) return ToolProtocolError{kInvalidParams, "path: required"};
  auto read = context.sessions->read_file(std::get<std::string>(id), identity.key_name, *path,
                                          context.config.max_file_bytes);
  if (auto* refusal = std::get_if<runner::SessionError>(&read)) return tool_error_result(refusal->message);
  return tool_result({file_block(to_output_file(std::get<runner::OutputFile>(read)))}, false);
}

ToolCall write_file(const ApiContext& context, const Identity& identity, const Value& args) {
  auto id = session_arg(context, args);
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

json::Value mcp_tool_list(const ApiContext& context) {
  std::vector<std::string> runtimes;
  for (const auto& [name, runtime] : context.executor.runtimes()) runtimes.push_back(name);
  std::vector<std::string> session_runtimes;
  if (context.sessions) session_runtimes = context.sessions->runtimes();
  const Value session_id = property("string", "The id create_session returned (\"se_...\").");
  std::vector<Value> tools;
  tools.push_back(tool(
      "run_code", "Run code in a sandbox",
      "Runs code in an isolated sandbox (no network, limited time and memory) and returns a "
      "summary, stdout and stderr; PNG files the code writes come back as images. Without "
      "session_id every call starts from nothing; with one, variables, imports and files persist "
      "between calls.",
      schema({{"language", property("string", "The language: one of " + names_of(runtimes) +
                                                  ". Optional with session_id (the session's "
                                                  "language is used).")},
              {"code", property("string",
                                "The source code to run. In a python session the value "
                                "of a final expression is printed, as in a notebook.")},
              {"session_id", property("string",
                                      "Optional: run inside this session (from "
                                      "create_session) so state persists.")},
              {"stdin", property("string", "Optional text the program reads on standard input.")},
              {"timeout", property("string",
                                   "Optional wall-time limit with a unit, e.g. \"30s\"; "
                                   "at most the policy's.")},
              {"policy", property("string",
                                  "Optional security policy name; the default policy "
                                  "when left out. list_runtimes shows the allowed ones.")},
              {"output_files",
               json::object({{"type", json::string("array")},
                             {"items", json::object({{"type", json::string("string")}})},
                             {"description",
                              json::string("Globs of files in the working directory to return, "
                                           "e.g. [\"*.csv\"]. Default [\"*.png\"].")}})}},
             {"code"})));
  tools.push_back(tool(
      "create_session", "Start a stateful session",
      "Starts an interpreter whose variables, imports, definitions and working-directory files "
      "persist across run_code calls that pass its session_id. Close it when done; it also "
      "ends after its idle timeout or maximum lifetime.",
      schema({{"runtime",
               property("string", "The language: one of " + names_of(session_runtimes) + ".")},
              {"policy", property("string", "Optional security policy name.")},
              {"idle_timeout", property("string",
                                        "Optional, with a unit (\"10m\"): the session "
                                        "ends after this long without use.")},
              {"max_lifetime", property("string",
                                        "Optional, with a unit (\"1h\"): the session "
                                        "ends after this long whatever happens.")}},
             {"runtime"})));
  tools.push_back(tool("close_session", "Close a session",
                       "Ends a session and removes its interpreter and files.",
                       schema({{"session_id", session_id}}, {"session_id"})));
  tools.push_back(tool("list_runtimes", "List languages and policies",
                       "Lists the languages run_code accepts, which of them support sessions, "
                       "and the policies this key may use.",
                       schema({}, {})));
  tools.push_back(tool("list_session_files", "List a session's files",
                       "Lists the files in a session's working directory with their sizes.",
                       schema({{"session_id", session_id}}, {"session_id"})));
  tools.push_back(
      tool("read_session_file", "Read a file of a session",
           "Returns one file of a session's working directory: text as text, images as images, "
           "other binary files as base64.",
           schema({{"session_id", session_id},
                   {"path", property("string",
                                     "Path relative to the working directory, e.g. "
                                     "\"out/result.csv\".")}},
                  {"session_id", "path"})));
  tools.push_back(
      tool("write_session_file", "Write a file into a session",
           "Creates or replaces a file in a session's working directory, where the session's code "
           "can open it by its relative path.",
           schema({{"session_id", session_id},
                   {"path", property("string",
                                     "Path relative to the working directory; parent "
                                     "directories are created.")},
                   {"content", property("string", "The file's content.")},
                   {"encoding", property("string",
                                         "\"utf-8\" (default) or \"base64\" for binary "
                                         "content.")}},
                  {"session_id", "path", "content"})));
  return json::array(std::move(tools));
}

ToolCall call_mcp_tool(const ApiContext& context, const Identity& identity, const std::string& name,
                       const json::Value& arguments) {
  if (name == "run_code") return run_code(context, identity, arguments);
  if (name == "create_session") return create_session(context, identity, arguments);
  if (name == "close_session") return close_session(context, identity, arguments);
  if (name == "list_runtimes") return list_runtimes(context, identity);
  if (name == "list_session_files") return list_files(context, identity, arguments);
  if (name == "read_session_file") return read_file(context, identity, arguments);
  if (name == "write_session_file") return write_file(context, identity, arguments);
  return ToolProtocolError{kInvalidParams, "unknown tool \"" + name + "\""};
}

json::Value tool_error_result(std::string message) {
  return tool_result({text_block(std::move(message))}, true);
}

json::Value run_tool_result(const v1::Event& final_event) {
  if (!final_event.has_exit()) {
    return tool_error_result("airlock could not run the code: " + final_event.error().message());
  }
  const v1::ExecutionResult& result = final_event.exit().result();
  std::vector<Value> content;
  content.push_back(text_block(result.summary()));
  if (!result.stdout().empty()) content.push_back(text_block("stdout:\n" + result.stdout()));
  if (!result.stderr().empty()) content.push_back(text_block("stderr:\n" + result.stderr()));
  for (const v1::OutputFile& file : result.files()) content.push_back(file_block(file));
  return tool_result(std::move(content), result.status() != "ok");
}

}  // namespace airlock::api
