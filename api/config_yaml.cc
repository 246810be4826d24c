#include "api/config_yaml.h"

#include <map>

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

namespace {

constexpr int kMaxConfigNesting = 32;
constexpr size_t kMaxConfigNodes = 1 << 20;

void check_keys(const YAML::Node& node, const std::string& path, int depth, size_t& budget) {
  if (depth > kMaxConfigNesting || budget == 0) {
    fail(node, "the config nests deeper than " + std::to_string(kMaxConfigNesting) +
                   " levels or holds more than " + std::to_string(kMaxConfigNodes) +
                   " values (YAML aliases count each time they are used)");
  }
  --budget;
  if (node.IsSequence()) {
    for (const auto& item : node) check_keys(item, path, depth + 1, budget);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, int> first_line;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) continue;  // the section reading it says what it expected
    const std::string& key = entry.first.Scalar();
    const auto [first, inserted] = first_line.emplace(key, entry.first.Mark().line + 1);
    if (!inserted) {
      fail(entry.first,
           (path.empty() ? key + ": given twice" : path + ": '" + key + "' is given twice") +
               " (first at line " + std::to_string(first->second) + ")");
    }
    check_keys(entry.second, path.empty() ? key : path + "." + key, depth + 1, budget);
  }
}

}  // namespace

void reject_duplicate_keys(const YAML::Node& root) {
  size_t budget = kMaxConfigNodes;
  check_keys(root, "", 0, budget);
}

}  // namespace airlock::api::config_yaml
