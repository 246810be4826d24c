// The tools airlock offers over MCP: run_code, create_session, close_session, list_runtimes, and
// reading, writing and listing files of a session. Input schemas tell a model what each argument
// means; a run that fails, or a call the service refuses, is a tool result with isError set (the
// model can read and act on it), never a protocol error.
#pragma once

#include <string>
#include <variant>

#include "api/auth.h"
#include "api/handler.h"
#include "api/wire/json.h"

namespace airlock::api {

// The `tools` array of a tools/list result.
json::Value mcp_tool_list(const ApiContext& context);

// An argument problem the caller must fix before a tool can even run (JSON-RPC invalid params).
struct ToolProtocolError {
  int code = 0;
  std::string message;
};

// A finished call (a CallToolResult), a run the transport must start, or a protocol error.
using ToolCall = std::variant<json::Value, PendingExecution, ToolProtocolError>;

ToolCall call_mcp_tool(const ApiContext& context, const Identity& identity, const std::string& name,
                       const json::Value& arguments);

// What a run_code result holds of stdout and stderr together unless the call's max_output says
// otherwise: enough for a model to read, little enough to fit its context many times over.
inline constexpr uint64_t kDefaultToolOutputBudget = 16 * 1024;
inline constexpr uint64_t kMinToolOutputBudget = 256;

// The CallToolResult for a run's final event: summary, stdout and stderr as text (head and tail
// within output_budget bytes), images for the image files it returned, a one-line note for a file
// too large to return; isError unless the program ended with status ok.
json::Value run_tool_result(const v1::Event& final_event,
                            uint64_t output_budget = kDefaultToolOutputBudget);

// A CallToolResult with isError and one text block.
json::Value tool_error_result(std::string message);

}  // namespace airlock::api
