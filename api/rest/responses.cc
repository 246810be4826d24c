#include "api/rest/responses.h"

#include <algorithm>

#include "api/wire/wire.h"

namespace airlock::api {

HttpResponse message_response(int status, const google::protobuf::Message& message,
                              WireFormat format) {
  HttpResponse response;
  response.status = status;
  response.content_type = std::string(format == WireFormat::protobuf ? kProtobufType : kJsonType);
  response.body = encode(message, format);
  return response;
}

HttpResponse error_response(int status, const v1::Error& error, WireFormat format) {
  v1::ErrorResponse body;
  *body.mutable_error() = error;
  return message_response(status, body, format);
}

HttpResponse error(int status, std::string code, std::string message, WireFormat format,
                   std::string field, const std::vector<std::string>& valid) {
  return error_response(
      status, make_error(std::move(code), std::move(message), std::move(field), valid), format);
}

HttpResponse method_not_allowed(std::string allow, WireFormat format) {
  HttpResponse response = error(405, "method_not_allowed", "this path takes " + allow, format);
  response.headers.emplace_back("Allow", std::move(allow));
  return response;
}

std::string body_too_large_message(uint64_t max_body_bytes) {
  return "the body is larger than " + std::to_string(max_body_bytes) + " bytes";
}

bool is_path_name(std::string_view text) {
  constexpr size_t kMaxPathNameLength = 128;
  return !text.empty() && text.size() <= kMaxPathNameLength &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
         });
}

HttpResponse final_event_response(const v1::Event& final_event, WireFormat format) {
  if (final_event.has_exit()) {
    HttpResponse response = message_response(200, final_event.exit().result(), format);
    response.headers.emplace_back("Location", "/v1/executions/" + final_event.execution_id());
    return response;
  }
  // A request error found while running it is the client's to fix; any other is airlock's.
  const int status = final_event.error().code() == "invalid_request" ? 400 : 500;
  return error_response(status, final_event.error(), format);
}

std::string_view event_name(const v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kStarted:
      return "started";
    case v1::Event::kStdout:
      return "stdout";
    case v1::Event::kStderr:
      return "stderr";
    case v1::Event::kFile:
      return "file";
    case v1::Event::kExit:
      return "exit";
    case v1::Event::kError:
      return "error";
    case v1::Event::KIND_NOT_SET:
      break;
  }
  return "message";
}

bool is_final(const v1::Event& event) {
  return event.has_exit() || event.has_error();
}

std::string sse_frame(const v1::Event& event) {
  // The JSON encoding has no raw line breaks (they are escaped in strings), so one data line
  // always holds the whole event.
  std::string frame = "event: ";
  frame += event_name(event);
  frame += "\nid: ";
  frame += std::to_string(event.sequence());
  frame += "\ndata: ";
  frame += encode(event, WireFormat::json);
  frame += "\n\n";
  return frame;
}

std::vector<std::pair<std::string, std::string>> sse_headers(const std::string& execution_id) {
  return {{"Cache-Control", "no-store"},
          {"X-Accel-Buffering", "no"},  // tells nginx-style proxies not to hold events back
          {"X-Execution-Id", execution_id}};
}

}  // namespace airlock::api
