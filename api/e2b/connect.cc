#include "api/e2b/connect.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <utility>

#include "api/wire/json.h"

namespace airlock::api::e2b::connect {
namespace {

struct CodeStatus {
  std::string_view code;
  int status;
};

// Connect's table of codes and the HTTP status of a unary error with each.
constexpr std::array<CodeStatus, 16> kCodes = {{
    {"canceled", 499},
    {"unknown", 500},
    {"invalid_argument", 400},
    {"deadline_exceeded", 504},
    {"not_found", 404},
    {"already_exists", 409},
    {"permission_denied", 403},
    {"resource_exhausted", 429},
    {"failed_precondition", 400},
    {"aborted", 409},
    {"out_of_range", 400},
    {"unimplemented", 501},
    {"internal", 500},
    {"unavailable", 503},
    {"data_loss", 500},
    {"unauthenticated", 401},
}};

// The media type without parameters, lowercased.
std::string media_type(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  std::string lower(type);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

Error invalid(std::string message) {
  return {"invalid_argument", std::move(message)};
}

std::optional<Error> parse_message(std::string_view payload, Encoding encoding,
                                   google::protobuf::Message& message) {
  if (payload.size() > kMaxRequestMessageBytes) {
    return Error{"resource_exhausted", "request message is larger than " +
                                           std::to_string(kMaxRequestMessageBytes) + " bytes"};
  }
  message.Clear();
  if (encoding == Encoding::proto) {
    if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return invalid("request is not a valid " + message.GetTypeName() + " message");
    }
    return std::nullopt;
  }
  if (payload.empty()) return std::nullopt;  // an empty body is the empty message
  if (auto problem = json::syntax_problem(payload, json::kMaxJsonDepth, message.GetDescriptor())) {
    return invalid("request is not standard JSON: " + *problem);
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // Connect: newer clients may send fields we lack
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(payload.data(), payload.size()), &message, options);
  if (!status.ok()) {
    const std::string text(status.message());
    return invalid("request is not a valid " + message.GetTypeName() +
                   " in JSON: " + text.substr(0, text.find('\n')));
  }
  return std::nullopt;
}

// {"code":..,"message":..} in that order: a Struct's fields print in no fixed order, and the
// bytes of an error should not vary from one answer to the next.
std::string error_json(const Error& error) {
  return R"({"code":)" + json::print(json::string(error.code)) + R"(,"message":)" +
         json::print(json::string(error.message)) + "}";
}

}  // namespace

int http_status(std::string_view code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return entry.status;
  }
  return 500;
}

bool is_code(std::string_view code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return true;
  }
  return false;
}

std::optional<Encoding> unary_encoding(std::string_view content_type) {
  const std::string type = media_type(content_type);
  if (type == "application/json") return Encoding::json;
  if (type == "application/proto") return Encoding::proto;
  return std::nullopt;
}

std::optional<Encoding> streaming_encoding(std::string_view content_type) {
  const std::string type = media_type(content_type);
  if (type == "application/connect+json") return Encoding::json;
  if (type == "application/connect+proto") return Encoding::proto;
  return std::nullopt;
}

std::string_view unary_content_type(Encoding encoding) {
  return encoding == Encoding::json ? "application/json" : "application/proto";
}

std::string_view streaming_content_type(Encoding encoding) {
  return encoding == Encoding::json ? "application/connect+json" : "application/connect+proto";
}

std::optional<Error> parse_unary_request(std::string_view body, Encoding encoding,
                                         google::protobuf::Message& message) {
  return parse_message(body, encoding, message);
}

std::optional<Error> parse_streaming_request(std::string_view body, Encoding encoding,
                                             google::protobuf::Message& message) {
  if (body.size() < 5) return invalid("request body is not one Connect envelope");
  const auto flags = static_cast<uint8_t>(body[0]);
  const uint32_t length = (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
                          (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
                          (uint32_t{static_cast<uint8_t>(body[3])} << 8) |
                          uint32_t{static_cast<uint8_t>(body[4])};
  if (flags & kFlagCompressed) return invalid("compressed request messages are not supported");
  if (flags != 0) return invalid("the request envelope has unexpected flags");
  if (length != body.size() - 5) {
    return invalid("request body is not exactly one Connect envelope (length " +
                   std::to_string(length) + ", " + std::to_string(body.size() - 5) +
                   " bytes follow)");
  }
  return parse_message(body.substr(5), encoding, message);
}

std::string encode(const google::protobuf::Message& message, Encoding encoding) {
  std::string out;
  if (encoding == Encoding::proto) {
    message.SerializeToString(&out);
    return out;
  }
  // Default options: lowerCamelCase names, defaults left out, enums by name, as envd answers.
  if (!google::protobuf::util::MessageToJsonString(message, &out).ok()) return "{}";
  return out;
}

HttpResponse unary_response(const google::protobuf::Message& message, Encoding encoding) {
  HttpResponse response;
  response.status = 200;
  response.content_type = std::string(unary_content_type(encoding));
  response.body = encode(message, encoding);
  return response;
}

HttpResponse unary_error(const Error& error) {
  HttpResponse response;
  response.status = http_status(error.code);
  response.content_type = "application/json";
  response.body = error_json(error);
  return response;
}

std::string envelope(uint8_t flags, std::string_view payload) {
  const auto length = static_cast<uint32_t>(payload.size());
  std::string out;
  out.reserve(5 + payload.size());
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>((length >> 24) & 0xff));
  out.push_back(static_cast<char>((length >> 16) & 0xff));
  out.push_back(static_cast<char>((length >> 8) & 0xff));
  out.push_back(static_cast<char>(length & 0xff));
  out.append(payload);
  return out;
}

std::string stream_message(const google::protobuf::Message& message, Encoding encoding) {
  return envelope(0, encode(message, encoding));
}

std::string end_of_stream(const std::optional<Error>& error) {
  if (!error) return envelope(kFlagEndStream, "{}");
  return envelope(kFlagEndStream, R"({"error":)" + error_json(*error) + "}");
}

HttpResponse streaming_error(const Error& error, Encoding encoding) {
  HttpResponse response;
  response.status = 200;
  response.content_type = std::string(streaming_content_type(encoding));
  response.body = end_of_stream(error);
  return response;
}

std::optional<std::chrono::milliseconds> requested_timeout(const HttpRequest& request) {
  auto value = request.header("Connect-Timeout-Ms");
  if (!value || value->empty() || value->size() > 10) return std::nullopt;
  uint64_t ms = 0;
  for (char c : *value) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + static_cast<uint64_t>(c - '0');
  }
  return std::min(std::chrono::milliseconds(static_cast<int64_t>(ms)), kMaxTimeout);
}

}  // namespace airlock::api::e2b::connect
