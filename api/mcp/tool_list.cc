// The `tools` array of MCP's tools/list: each tool's name, title, description and input schema,
// which is all a model knows of a tool before it calls it.
#include "api/mcp/tools.h"

#include "api/job_builder.h"

namespace airlock::api {
namespace {

using json::Value;

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
      schema({{"runtime", property("string", "The language to run: one of " + names_of(runtimes) +
                                                 ". Optional with session_id (the session's "
                                                 "runtime is used).")},
              {"code", property("string",
                                "The source code to run. In a python session the value "
                                "of a final expression is printed, as in a notebook.")},
              {"session_id", property("string",
                                      "Optional: run inside this session (from "
                                      "create_session) so state persists.")},
              {"stdin", property("string", "Optional text the program reads on standard input.")},
              {"timeout", property("string",
                                   "Optional wall-time limit with a unit, e.g. \"30 s\" "
                                   "or \"2 min\"; at most the policy's.")},
              {"max_output",
               json::object({{"type", json::array({json::string("string"), json::string("integer")})},
                             {"description",
                              json::string("Optional: how much of stdout and stderr together "
                                           "the result shows, e.g. \"64 KiB\" (default 16 KiB); "
                                           "the first and last parts are kept.")}})},
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
                       "Lists the runtimes (languages) run_code accepts, which of them support "
                       "sessions, "
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

}  // namespace airlock::api
