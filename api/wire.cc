#include "api/wire.h"

#include <google/protobuf/util/json_util.h>

#include <limits>

#include "api/json.h"
#include "api/text.h"

namespace airlock::api {
namespace {

// protobuf reports "(limits.processes): invalid value ..." or "cod: Cannot find field.", sometimes
// followed by the input and a caret on further lines; this keeps the first line and finds the
// field.
v1::Error describe_json_error(std::string_view status_message) {
  std::string_view line = status_message.substr(0, status_message.find('\n'));
  std::string field;
  std::string problem(line);
  if (line.size() > 2 && line.front() == '(') {
    size_t close = line.find("): ");
    if (close != std::string_view::npos) {
      field = std::string(line.substr(1, close - 1));
      problem = std::string(line.substr(close + 3));
    }
  } else if (size_t colon = line.find(": Cannot find field"); colon != std::string_view::npos) {
    field = std::string(line.substr(0, colon));
    problem = "unknown field \"" + field + "\"";
  } else if (line.starts_with(": ")) {
    problem = std::string(line.substr(2));
  }
  std::string message = field.empty() ? "malformed JSON: " + problem : field + ": " + problem;
  return make_error("invalid_json", message, field);
}

}  // namespace

v1::Error make_error(std::string code, std::string message, std::string field,
                     const std::vector<std::string>& valid) {
  v1::Error error;
  error.set_code(std::move(code));
  // Messages and field names quote what the client sent (a path, an Origin, a JSON key), which
  // may be any bytes; proto3 strings must be utf-8, or the answer cannot be encoded at all.
  error.set_message(to_valid_utf8(message));
  error.set_field(to_valid_utf8(field));
  for (const auto& name : valid) error.add_valid(name);
  return error;
}

std::string encode(const google::protobuf::Message& message, WireFormat format) {
  std::string out;
  if (format == WireFormat::protobuf) {
    message.SerializeToString(&out);
    return out;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    // Only possible with invalid utf-8, which the API repairs before it gets here.
    return R"({"error":{"code":"internal","message":"the response could not be encoded"}})";
  }
  return out;
}

std::optional<v1::Error> decode(std::string_view body, WireFormat format,
                                google::protobuf::Message& message) {
  if (body.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return make_error("too_large", "the body is too large to parse");
  }
  if (format == WireFormat::protobuf) {
    if (!message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return make_error("invalid_protobuf", "the body is not a valid binary " +
                                                message.GetTypeName() + " (strings must be utf-8)");
    }
    return std::nullopt;
  }
  if (body.empty()) return make_error("invalid_json", "the body is empty; expected a JSON object");
  if (json::nests_deeper_than(body, json::kMaxJsonDepth)) {
    return make_error("invalid_json", "malformed JSON: arrays and objects nest deeper than " +
                                          std::to_string(json::kMaxJsonDepth) + " levels");
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a misspelled field must not be silently ignored
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &message, options);
  if (!status.ok()) return describe_json_error(status.message().as_string());
  return std::nullopt;
}

std::optional<v1::Error> decode_request_body(const HttpRequest& request, uint64_t max_body_bytes,
                                             google::protobuf::Message& message, int& status,
                                             EmptyBody empty) {
  status = 400;
  if (request.body.size() > max_body_bytes) {
    status = 413;
    return make_error("body_too_large",
                      "the body is larger than " + std::to_string(max_body_bytes) + " bytes");
  }
  WireFormat body_format = WireFormat::json;
  if (auto type = request.header("Content-Type")) {
    if (lists_media_type(*type, kProtobufType)) {
      body_format = WireFormat::protobuf;
    } else if (!lists_media_type(*type, kJsonType)) {
      // Not even the form type `curl -d` sends: a page on another site may post a form without
      // asking, and its body must never be read as a request.
      status = 415;
      return make_error("unsupported_media_type",
                        "Content-Type must be application/json or application/x-protobuf "
                        "(with curl: -H 'Content-Type: application/json')");
    }
  }
  if (request.body.empty() && empty == EmptyBody::all_defaults) return std::nullopt;
  return decode(request.body, body_format, message);
}

}  // namespace airlock::api
