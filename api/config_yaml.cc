#include "api/config_yaml.h"

#include "policies/errors.h"
#include "policies/units.h"

namespace airlock::api::config_yaml {

[[noreturn]] void fail(const YAML::Node& node, std::string message) {
  throw ConfigError{node.Mark(), std::move(message)};
}

std::string unknown(const std::string& what, const std::string& name,
                    const std::vector<std::string>& valid) {
  std::string message = "unknown " + what + " \"" + name + "\"";
  if (const std::string near = policies::nearest(name, valid); !near.empty()) {
    return message + " — did you mean '" + near + "'?";
  }
  std::string list;
  for (const std::string& item : valid) list += (list.empty() ? "" : ", ") + item;
  return message + " (expected " + list + ")";
}

std::string scalar(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) fail(node, key + ": expected a single value");
  return node.Scalar();
}

uint64_t whole_number(const YAML::Node& node, const std::string& key, uint64_t max) {
  std::string text = scalar(node, key);
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != text.npos) {
    fail(node, key + ": expected a whole number, got \"" + text + "\"");
  }
  uint64_t value = std::stoull(text);
  if (value > max) fail(node, key + ": at most " + std::to_string(max));
  return value;
}

std::chrono::milliseconds duration(const YAML::Node& node, const std::string& key) {
  std::string text = scalar(node, key);
  auto value = policies::parse_duration(text);
  if (auto* problem = std::get_if<std::string>(&value)) fail(node, key + ": " + *problem);
  return std::get<std::chrono::milliseconds>(value);
}

uint64_t size(const YAML::Node& node, const std::string& key) {
  std::string text = scalar(node, key);
  auto value = policies::parse_bytes(text);
  if (auto* problem = std::get_if<std::string>(&value)) fail(node, key + ": " + *problem);
  return std::get<uint64_t>(value);
}

std::vector<std::string> string_list(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) fail(node, key + ": expected a list");
  std::vector<std::string> out;
  for (const auto& item : node) out.push_back(scalar(item, key + " item"));
  return out;
}

}  // namespace airlock::api::config_yaml
