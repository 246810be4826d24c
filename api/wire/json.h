// Schema-less JSON for MCP's JSON-RPC messages, whose params and results have no protobuf schema:
// values are protobuf's google.protobuf.Value, parsed and printed by protobuf's own JSON support,
// so no second JSON library is needed. A text is checked to be standard JSON, nesting at most
// kMaxJsonDepth deep, before protobuf sees it (json_syntax.h).
#pragma once

#include <google/protobuf/struct.pb.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/wire/json_syntax.h"

namespace airlock::api::json {

using Value = google::protobuf::Value;
using Object = google::protobuf::Struct;

// Parses one JSON text (object, array, string, number, true, false or null). On failure returns
// nullopt and sets error to what protobuf's parser said (one line, without the input it
// quotes), or what makes it other than standard JSON (syntax_problem).
std::optional<Value> parse(std::string_view text, std::string& error);

// Compact JSON text of a value. Numbers that are whole print without a fraction.
std::string print(const Value& value);

Value null();
Value string(std::string text);
Value number(double number);
Value boolean(bool flag);
Value array(std::vector<Value> items);
Value object(std::initializer_list<std::pair<std::string, Value>> fields);

// Adds or replaces one field of an object value (which must hold a struct).
void set(Value& object, const std::string& name, Value value);

// The field `name` of an object value, or nullptr when value is not an object or has no such field.
const Value* field(const Value& value, std::string_view name);

// A string field's text, or nullopt when absent or not a string.
std::optional<std::string> string_field(const Value& value, std::string_view name);

}  // namespace airlock::api::json
