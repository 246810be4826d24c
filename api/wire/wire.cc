#include "api/wire/wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <limits>

#include "api/wire/json.h"
#include "api/wire/text.h"

namespace airlock::api {
namespace {

// What a value of the wrong JSON type should have been, with an example that is valid input.
std::string expected_value(std::string_view field, std::string_view proto_type) {
  if (field == "limits.wall_time" || field == "limits.cpu_time" || field == "idle_timeout" ||
      field == "max_lifetime") {
    return "a duration with a unit, as a string, e.g. \"10 s\" or \"500ms\"";
  }
  if (field == "limits.memory") return "a size with a unit, as a string, e.g. \"256 MiB\"";
  if (proto_type == "TYPE_STRING") return "a string";
  if (proto_type == "TYPE_BOOL") return "true or false";
  if (proto_type.find("INT") != std::string_view::npos) {
    return field.ends_with("_bytes") ? "a whole number of bytes, e.g. 65536" : "a whole number";
  }
  return "a value of type " + std::string(proto_type);
}

// "invalid value 5 for type TYPE_STRING" becomes "got 5; expected a duration ...".
std::string explain_invalid_value(std::string_view field, std::string_view problem) {
  constexpr std::string_view kPrefix = "invalid value ";
  constexpr std::string_view kType = " for type ";
  size_t type_at = problem.rfind(kType);
  if (!problem.starts_with(kPrefix) || type_at == std::string_view::npos) {
    return std::string(problem);
  }
  std::string_view value = problem.substr(kPrefix.size(), type_at - kPrefix.size());
  return "invalid value " + std::string(value) + "; expected " +
         expected_value(field, problem.substr(type_at + kType.size()));
}

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
      problem = explain_invalid_value(field, line.substr(close + 3));
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

void append_json_string(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void print_field_value(const google::protobuf::Message& message,
                       const google::protobuf::FieldDescriptor* field, int index,
                       std::string& out);

void print_message(const google::protobuf::Message& message, std::string& out) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  const google::protobuf::Reflection* reflection = message.GetReflection();
  out += '{';
  bool first = true;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    // Like protobuf's own printer with always_print_primitive_fields: every scalar and list, but
    // a message or a oneof member only when set.
    bool present = field->is_repeated() ||
                   (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
                    field->real_containing_oneof() == nullptr) ||
                   reflection->HasField(message, field);
    if (!present) continue;
    if (!first) out += ',';
    first = false;
    append_json_string(field->name(), out);
    out += ':';
    if (field->is_repeated()) {
      out += '[';
      for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
        if (j > 0) out += ',';
        print_field_value(message, field, j, out);
      }
      out += ']';
    } else {
      print_field_value(message, field, -1, out);
    }
  }
  out += '}';
}

// One value of a field (index -1: a singular field). Unlike protobuf's mapping, 64-bit integers
// print as numbers: counters and times are numbers to every client, and none of airlock's come
// near 2^53.
void print_field_value(const google::protobuf::Message& message,
                       const google::protobuf::FieldDescriptor* field, int index,
                       std::string& out) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = message.GetReflection();
  const bool list = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      out += std::to_string(list ? r->GetRepeatedInt32(message, field, index)
                                 : r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out += std::to_string(list ? r->GetRepeatedInt64(message, field, index)
                                 : r->GetInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      out += std::to_string(list ? r->GetRepeatedUInt32(message, field, index)
                                 : r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out += std::to_string(list ? r->GetRepeatedUInt64(message, field, index)
                                 : r->GetUInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value = field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE
                         ? (list ? r->GetRepeatedDouble(message, field, index)
                                 : r->GetDouble(message, field))
                         : (list ? r->GetRepeatedFloat(message, field, index)
                                 : r->GetFloat(message, field));
      char text[32];
      std::snprintf(text, sizeof text, "%.17g", value);
      out += text;
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (list ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "true"
                 : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      append_json_string(list ? r->GetRepeatedEnum(message, field, index)->name()
                              : r->GetEnum(message, field)->name(),
                         out);
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& value =
          list ? r->GetRepeatedStringReference(message, field, index, &scratch)
               : r->GetStringReference(message, field, &scratch);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        std::string encoded = base64_encode(value);
        append_json_string(encoded, out);
      } else {
        // proto3 strings are utf-8 and the API repairs program output before it gets here;
        // repaired again all the same, as one bad byte would make the whole answer unreadable.
        if (is_valid_utf8(value)) {
          append_json_string(value, out);
        } else {
          append_json_string(to_valid_utf8(value), out);
        }
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      print_message(list ? r->GetRepeatedMessage(message, field, index)
                         : r->GetMessage(message, field),
                    out);
      break;
  }
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
  print_message(message, out);
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
  if (auto problem = json::syntax_problem(body, json::kMaxJsonDepth, message.GetDescriptor())) {
    return make_error("invalid_json", "malformed JSON: " + *problem);
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
