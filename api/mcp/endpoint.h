// The Model Context Protocol endpoint at /mcp, over MCP's Streamable HTTP transport: each POST
// carries one JSON-RPC 2.0 message and is answered with one JSON body (the server opens no
// streams of its own, so GET is 405). Same API keys and policies as the HTTP API; the tools are
// in mcp_tools.h.
#pragma once

#include <array>
#include <string_view>

#include "api/handler.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// Protocol revisions this endpoint speaks, newest first; initialize picks the client's if listed.
inline constexpr std::array<std::string_view, 3> kMcpProtocolVersions = {"2025-06-18", "2025-03-26",
                                                                         "2024-11-05"};

// JSON-RPC error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;

// Handles a request to /mcp from a caller already admitted (api/transport/admission.h: Host, Origin, API
// key): the JSON-RPC framing. A tools/call that runs code comes back as a PendingExecution whose
// `respond` turns the run's final event into the JSON-RPC answer.
Dispatch handle_mcp(const ApiContext& context, const HttpRequest& request,
                    const Identity& identity);

// An HTTP error in JSON-RPC's shape (no id): what /mcp answers to a request it refuses.
HttpResponse mcp_error_response(int status, std::string message);

}  // namespace airlock::api
