// Plain HTTP request and response values, free of any transport library, so the request handling
// that maps one to the other can be a pure, unit-tested function.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/executions/ex_1?x=1"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string peer;  // "address:port" of the client, for logs

  // The first header with this name, compared case-insensitively.
  std::optional<std::string_view> header(std::string_view name) const;
  // The target without its query string.
  std::string_view path() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string body;
};

// How a message is put on the wire: protobuf's JSON mapping or its binary form.
enum class WireFormat { json, protobuf };

inline constexpr std::string_view kJsonType = "application/json";
inline constexpr std::string_view kProtobufType = "application/x-protobuf";
inline constexpr std::string_view kEventStreamType = "text/event-stream";

// ASCII case-insensitive equality, as header names compare.
bool equals_ignoring_case(std::string_view a, std::string_view b);
// text without the spaces and tabs that may surround a header value or list item.
std::string_view trim(std::string_view text);

// True when a header value (e.g. Accept: "text/html, application/json;q=0.9") names media_type.
bool lists_media_type(std::string_view header_value, std::string_view media_type);

// True when an Accept header prefers server-sent events to JSON: text/event-stream named with a
// higher q than application/json (or application/*, */*), or the same q and named first, or JSON
// not acceptable at all. "application/json, text/event-stream", which many clients send, gets
// JSON; "text/event-stream" alone gets the stream.
bool prefers_event_stream(std::string_view accept);

}  // namespace airlock::api
