#include "api/wire/json.h"

#include <google/protobuf/util/json_util.h>

#include "api/wire/text.h"

namespace airlock::api::json {

std::optional<Value> parse(std::string_view text, std::string& error) {
  if (auto problem = syntax_problem(text)) {
    error = std::move(*problem);
    return std::nullopt;
  }
  Value value;
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), &value, options);
  if (!status.ok()) {
    // Only the first line, which says what is wrong: protobuf follows it with the input around
    // the error, raw bytes cut anywhere, and an answer that quoted them would not be utf-8.
    const std::string message(status.message());
    error = message.substr(0, message.find('\n'));
    return std::nullopt;
  }
  return value;
}

std::string print(const Value& value) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(value, &out, options).ok()) return "null";
  return out;
}

Value null() {
  Value value;
  value.set_null_value(google::protobuf::NULL_VALUE);
  return value;
}

Value string(std::string text) {
  Value value;
  // Strings often quote what a client sent (a header, a name), which may be any bytes; JSON
  // text must be utf-8, or print() could not encode the value at all.
  value.set_string_value(is_valid_utf8(text) ? std::move(text) : to_valid_utf8(text));
  return value;
}

Value number(double number) {
  Value value;
  value.set_number_value(number);
  return value;
}

Value boolean(bool flag) {
  Value value;
  value.set_bool_value(flag);
  return value;
}

Value array(std::vector<Value> items) {
  Value value;
  auto* list = value.mutable_list_value();
  for (auto& item : items) *list->add_values() = std::move(item);
  return value;
}

Value object(std::initializer_list<std::pair<std::string, Value>> fields) {
  Value value;
  auto* members = value.mutable_struct_value()->mutable_fields();
  for (const auto& [name, member] : fields) (*members)[name] = member;
  return value;
}

void set(Value& object, const std::string& name, Value value) {
  (*object.mutable_struct_value()->mutable_fields())[to_valid_utf8(name)] = std::move(value);
}

const Value* field(const Value& value, std::string_view name) {
  if (!value.has_struct_value()) return nullptr;
  const auto& fields = value.struct_value().fields();
  auto found = fields.find(std::string(name));
  return found == fields.end() ? nullptr : &found->second;
}

std::optional<std::string> string_field(const Value& value, std::string_view name) {
  const Value* member = field(value, name);
  if (member == nullptr || member->kind_case() != Value::kStringValue) return std::nullopt;
  return member->string_value();
}

}  // namespace airlock::api::json
