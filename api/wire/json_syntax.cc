#include "api/wire/json_syntax.h"

#include <google/protobuf/descriptor.h>

#include <unordered_map>
#include <vector>

namespace airlock::api::json {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// A message whose JSON form is its fields: not one of protobuf's well-known types (Struct, Value,
// Any, Timestamp, ...), whose JSON is free-form or a scalar.
const Descriptor* fields_of(const Descriptor* message) {
  return message && message->file()->package() != "google.protobuf" ? message : nullptr;
}

// What a JSON value is read as: an object's keys name the fields of `object` (when known), and
// `each` is what an object among its values, or among an array's elements, is read as.
struct Shape {
  const Descriptor* object = nullptr;
  const Descriptor* each = nullptr;
};

// A repeated message field's value is an array of that message, or (protobuf takes it too) one
// of them alone; a map's is an object whose values are its value type.
Shape shape_of(const FieldDescriptor* field) {
  if (field->is_map())
    return {nullptr, fields_of(field->message_type()->map_value()->message_type())};
  const Descriptor* message = fields_of(field->message_type());
  return field->is_repeated() ? Shape{message, message} : Shape{message, nullptr};
}

// The field a key names, by either name protobuf's parser takes for it (its JSON name, then its
// own), so that a key it would ignore as unknown is not taken for a field here.
const FieldDescriptor* field_named(const Descriptor* message, std::string_view key) {
  for (int i = 0; i < message->field_count(); ++i) {
    const FieldDescriptor* field = message->field(i);
    if (key == field->json_name() || key == field->name()) {
      return field;
    }
  }
  return nullptr;
}

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xc0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xe0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

// A string's contents (between its quotes, already checked) with its escapes decoded, so that
// two spellings of one key compare equal. A lone surrogate stays a code point of its own.
std::string decoded(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  auto hex4 = [&](size_t at) {  // four hex digits, checked by string()
    uint32_t code = 0;
    for (char c : raw.substr(at, 4))
      code = code * 16 + (is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    return code;
  };
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
      continue;
    }
    const char escaped = raw[++i];
    if (escaped != 'u') {
      static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
      out += kTo[kFrom.find(escaped)];
      continue;
    }
    uint32_t code = hex4(i + 1);
    i += 4;
    if (code >= 0xd800 && code < 0xdc00 && i + 6 < raw.size() && raw[i + 1] == '\\' &&
        raw[i + 2] == 'u') {
      const uint32_t low = hex4(i + 3);
      if (low >= 0xdc00 && low < 0xe000) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      }
    }
    append_utf8(out, code);
  }
  return out;
}

class Checker {
 public:
  Checker(std::string_view text, size_t max_depth, const Descriptor* schema)
      : text_(text), max_depth_(max_depth), next_{fields_of(schema), nullptr} {}

  std::optional<std::string> run() {
    // What may come next: a value, an object's key, the colon after it, or what follows a value.
    enum class Want { value, value_or_close, key, key_or_close, colon, comma_or_close, end };
    Want want = Want::value;
    for (;;) {
      while (at_ < text_.size() && is_space(text_[at_])) ++at_;
      if (at_ == text_.size()) {
        if (want == Want::end) return std::nullopt;
        return problem(text_.find_first_not_of(" \t\n\r") == std::string_view::npos
                           ? "the text is empty; expected a JSON value"
                           : "the text ends before its value does");
      }
      const char c = text_[at_];
      switch (want) {
        case Want::end:
          return problem("more follows the JSON value");
        case Want::colon:
          if (c != ':') return problem("expected ':' after an object's key");
          ++at_;
          want = Want::value;
          continue;
        case Want::comma_or_close:
          if (c == ',') {
            ++at_;
            want = open_.back() == '{' ? Want::key : Want::value;
            next_ = {frames_.back().each, frames_.back().each};  // an array's next element
            continue;
          }
          if (c == closer()) break;
          return problem(std::string("expected ',' or '") + closer() + "'");
        case Want::key_or_close:
          if (c == '}') break;
          [[fallthrough]];
        case Want::key:
          if (c != '"') {
            return problem(c == '\''  ? "strings must be in double quotes, not single"
                           : c == '}' ? "a ',' may not come before '}'"
                                      : "an object's keys must be strings in double quotes");
          }
          if (auto bad = key()) return bad;
          want = Want::colon;
          continue;
        case Want::value_or_close:
          if (c == ']') break;
          [[fallthrough]];
        case Want::value:
          if (++values_ > kMaxValues) {
            return problem("the text holds more than " + std::to_string(kMaxValues) + " values");
          }
          if (c == '{' || c == '[') {
            if (open_.size() == max_depth_) {
              return problem("arrays and objects nest deeper than " + std::to_string(max_depth_) +
                             " levels");
            }
            open_.push_back(c);
            frames_.push_back({c == '{' ? next_.object : nullptr, next_.each, {}});
            next_ = {next_.each, next_.each};  // an array's first element (protobuf flattens
                                               // arrays in arrays of a repeated field)
            ++at_;
            want = c == '{' ? Want::key_or_close : Want::value_or_close;
            continue;
          }
          if (auto bad = scalar()) return bad;
          want = open_.empty() ? Want::end : Want::comma_or_close;
          continue;
      }
      // `c` closes the innermost array or object.
      held_keys_ -= frames_.back().keys.size();
      frames_.pop_back();
      open_.pop_back();
      ++at_;
      want = open_.empty() ? Want::end : Want::comma_or_close;
    }
  }

 private:
  char closer() const { return open_.back() == '{' ? '}' : ']'; }

  std::optional<std::string> problem(const std::string& what) const {
    return what + " (at byte " + std::to_string(at_) + ")";
  }

  // An object's key, which it has not had before under any spelling: protobuf would keep the
  // last of two, where the client may have meant the first.
  std::optional<std::string> key() {
    const size_t start = at_;
    if (auto bad = string()) return bad;
    const std::string_view name = text_.substr(start + 1, at_ - start - 2);
    Frame& frame = frames_.back();
    // What the key is compared as: "k" and its text decoded, or "f" and the field's number.
    std::string canonical = "k" + decoded(name);
    next_ = {frame.each, nullptr};
    if (frame.message) {
      if (const FieldDescriptor* field =
              field_named(frame.message, std::string_view(canonical).substr(1))) {
        canonical = "f" + std::to_string(field->number());
        next_ = shape_of(field);
      } else {
        next_ = {};
      }
    }
    if (held_keys_ == kMaxHeldKeys) {
      return problem("the objects open here hold more than " + std::to_string(kMaxHeldKeys) +
                     " keys");
    }
    auto [first, fresh] = frame.keys.try_emplace(std::move(canonical), name);
    if (fresh) {
      ++held_keys_;
      return std::nullopt;
    }
    at_ = start;
    if (first->second == name)
      return problem("the key \"" + quoted(name) + "\" appears twice in one object");
    return problem("the key \"" + quoted(name) + "\" names what \"" + quoted(first->second) +
                   "\" named before it in one object");
  }

  static std::string quoted(std::string_view name) {
    constexpr size_t kMaxQuoted = 64;
    return name.size() > kMaxQuoted ? std::string(name.substr(0, kMaxQuoted)) + "..."
                                    : std::string(name);
  }

  // A string, a number, true, false or null, starting at at_.
  std::optional<std::string> scalar() {
    const char c = text_[at_];
    if (c == '"') return string();
    if (c == '-' || is_digit(c)) return number();
    for (std::string_view literal : {"true", "false", "null"}) {
      if (text_.substr(at_, literal.size()) == literal) {
        at_ += literal.size();
        return std::nullopt;
      }
    }
    if (c == '\'') return problem("strings must be in double quotes, not single");
    if (c == '/') return problem("JSON has no comments");
    if (c == ']' || c == '}') return problem(std::string("a ',' may not come before '") + c + "'");
    return problem("expected a value: an object, array, string, number, true, false or null");
  }

  std::optional<std::string> string() {
    ++at_;  // the opening quote
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (c == '"') {
        ++at_;
        return std::nullopt;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return problem("a control character in a string must be escaped (\\n, \\t, \\u0000)");
      }
      if (c != '\\') {
        ++at_;
        continue;
      }
      if (at_ + 1 >= text_.size()) break;
      const char escaped = text_[at_ + 1];
      if (escaped == 'u') {
        for (size_t i = 2; i < 6; ++i) {
          if (at_ + i >= text_.size() || !is_hex(text_[at_ + i])) {
            return problem("\\u must be followed by four hex digits");
          }
        }
        at_ += 6;
      } else if (std::string_view("\"\\/bfnrt").find(escaped) != std::string_view::npos) {
        at_ += 2;
      } else {
        return problem(std::string("\\") + escaped + " is not an escape JSON has");
      }
    }
    return problem("a string is not closed");
  }

  // -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
  std::optional<std::string> number() {
    auto digits = [&] {
      const size_t start = at_;
      while (at_ < text_.size() && is_digit(text_[at_])) ++at_;
      return at_ > start;
    };
    if (text_[at_] == '-') ++at_;
    if (at_ < text_.size() && text_[at_] == '0') {
      ++at_;
      if (at_ < text_.size() && is_digit(text_[at_])) {
        return problem("a number may not start with 0");
      }
    } else if (!digits()) {
      return problem("a '-' must be followed by digits");
    }
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (!digits()) return problem("a '.' in a number must be followed by digits");
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!digits()) return problem("a number's exponent must have digits");
    }
    return std::nullopt;
  }

  std::string_view text_;
  const size_t max_depth_;
  size_t at_ = 0;
  std::string open_;  // '{' or '[' for each array or object not yet closed, innermost last
  // Each array or object not yet closed, innermost last.
  struct Frame {
    const Descriptor* message;  // an object read as this message: its keys name its fields
    const Descriptor* each;     // what an object among its values or elements is read as
    // Its keys so far (an object's): decoded, or a field's number; each as first written.
    std::unordered_map<std::string, std::string_view> keys;
  };
  std::vector<Frame> frames_;
  // The keys the open objects hold, each a set entry of ~100 bytes: capped, so that a 16 MiB
  // body of short keys cannot cost more than ~10 MB to check. No request needs as many.
  static constexpr size_t kMaxHeldKeys = 100'000;
  size_t held_keys_ = 0;
  // Values of any kind, each of which protobuf's parser makes an object of (a free-form Value
  // costs ~70 bytes): capped, so that a 16 MiB body of "0," (8 million) cannot cost gigabytes
  // on a handler thread. No request needs as many.
  static constexpr size_t kMaxValues = 500'000;
  size_t values_ = 0;
  Shape next_;  // what the value about to start is read as
};

}  // namespace

std::optional<std::string> syntax_problem(std::string_view text, size_t max_depth,
                                          const Descriptor* schema) {
  return Checker(text, max_depth, schema).run();
}

}  // namespace airlock::api::json
