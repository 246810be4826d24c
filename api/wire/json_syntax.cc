#include "api/wire/json_syntax.h"

#include <unordered_set>
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

class Checker {
 public:
  Checker(std::string_view text, size_t max_depth) : text_(text), max_depth_(max_depth) {}

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
          if (c == '{' || c == '[') {
            if (open_.size() == max_depth_) {
              return problem("arrays and objects nest deeper than " + std::to_string(max_depth_) +
                             " levels");
            }
            open_.push_back(c);
            if (c == '{') keys_.emplace_back();
            ++at_;
            want = c == '{' ? Want::key_or_close : Want::value_or_close;
            continue;
          }
          if (auto bad = scalar()) return bad;
          want = open_.empty() ? Want::end : Want::comma_or_close;
          continue;
      }
      // `c` closes the innermost array or object.
      if (open_.back() == '{') keys_.pop_back();
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

  // An object's key, which it has not had before: protobuf would keep the last of two, where
  // the client may have meant the first.
  std::optional<std::string> key() {
    const size_t start = at_;
    if (auto bad = string()) return bad;
    const std::string_view name = text_.substr(start + 1, at_ - start - 2);
    if (keys_.back().insert(name).second) return std::nullopt;
    at_ = start;
    constexpr size_t kMaxQuoted = 64;
    return problem("the key \"" +
                   (name.size() > kMaxQuoted ? std::string(name.substr(0, kMaxQuoted)) + "..."
                                             : std::string(name)) +
                   "\" appears twice in one object");
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
  // The keys of each object not yet closed, as written (escapes not decoded), innermost last.
  std::vector<std::unordered_set<std::string_view>> keys_;
};

}  // namespace

std::optional<std::string> syntax_problem(std::string_view text, size_t max_depth) {
  return Checker(text, max_depth).run();
}

}  // namespace airlock::api::json
