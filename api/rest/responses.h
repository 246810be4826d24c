// The bytes the transport sends for results, errors and events: plain functions, so the framing of
// a response or an SSE stream is unit-tested without a socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/airlock.pb.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// A comment line: keeps proxies and clients from timing out while a program is quiet.
inline constexpr std::string_view kSseHeartbeat = ":\n\n";

HttpResponse message_response(int status, const google::protobuf::Message& message,
                              WireFormat format);

HttpResponse error_response(int status, const v1::Error& error, WireFormat format);

// An error response from its parts (make_error's).
HttpResponse error(int status, std::string code, std::string message, WireFormat format,
                   std::string field = {}, const std::vector<std::string>& valid = {});

// 405 with the Allow header naming the methods the path takes ("GET, DELETE").
HttpResponse method_not_allowed(std::string allow, WireFormat format);

// The message of a 413 body_too_large, wherever the limit is found out.
std::string body_too_large_message(uint64_t max_body_bytes);

// Ids and policy names in paths: short, and only characters that need no escaping.
bool is_path_name(std::string_view text);

// The answer to a non-streaming execution, from its final event: 200 with the result for `exit`
// (whatever the program did), and for `error` 400 when the request was at fault (code
// invalid_request), else 500.
HttpResponse final_event_response(const v1::Event& final_event, WireFormat format);

// "started", "stdout", "stderr", "file", "exit" or "error".
std::string_view event_name(const v1::Event& event);

// True for the last event of a stream (exit or error).
bool is_final(const v1::Event& event);

// One server-sent event: "event: NAME\nid: SEQUENCE\ndata: JSON\n\n".
std::string sse_frame(const v1::Event& event);

// The headers that open an event stream; the execution id lets a client cancel it by DELETE
// before the first event arrives (a queued execution).
std::vector<std::pair<std::string, std::string>> sse_headers(const std::string& execution_id);

}  // namespace airlock::api
