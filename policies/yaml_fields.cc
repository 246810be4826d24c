#include "policies/yaml_fields.h"

#include <map>

namespace airlock::policies {

std::string kind_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "nothing";
}

namespace {

std::vector<std::pair<YAML::Node, YAML::Node>> entries(const YAML::Node& map,
                                                       const std::vector<std::string>* allowed,
                                                       ErrorList& errors) {
  std::vector<std::pair<YAML::Node, YAML::Node>> out;
  std::map<std::string, int> first_line;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: the iterator hands out a temporary pair, and a Node is a cheap handle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      errors.add(key.Mark(), "expected a name as key, got " + kind_name(key));
      continue;
    }
    const std::string name = key.Scalar();
    if (allowed != nullptr && std::find(allowed->begin(), allowed->end(), name) == allowed->end()) {
      std::string message = "unknown key '" + name + "'";
      const std::string suggestion = errors.full() ? "" : did_you_mean(name, *allowed);
      if (!suggestion.empty()) {
        message += suggestion;
      } else {
        message += " (expected one of:";
        for (size_t i = 0; i < allowed->size(); ++i) message += (i ? ", " : " ") + (*allowed)[i];
        message += ")";
      }
      errors.add(key.Mark(), message);
      continue;
    }
    const auto [seen, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      errors.add(key.Mark(), "duplicate key '" + name + "' (first given at line " +
                                 std::to_string(seen->second) + ")");
      continue;
    }
    out.emplace_back(key, value);
  }
  return out;
}

}  // namespace

std::vector<std::pair<YAML::Node, YAML::Node>> checked_entries(
    const YAML::Node& map, const std::vector<std::string>& allowed, ErrorList& errors) {
  return entries(map, &allowed, errors);
}

std::vector<std::pair<YAML::Node, YAML::Node>> free_entries(const YAML::Node& map,
                                                            ErrorList& errors) {
  return entries(map, nullptr, errors);
}

bool expect_map(const YAML::Node& node, const std::string& what, ErrorList& errors) {
  if (node.IsMap()) return true;
  errors.add(node.Mark(), "expected a map for '" + what + "', got " + kind_name(node));
  return false;
}

std::optional<std::string> scalar_text(const YAML::Node& node, const std::string& what,
                                       const std::string& expected, ErrorList& errors) {
  if (node.IsScalar()) return node.Scalar();
  errors.add(node.Mark(), "expected " + expected + " for '" + what + "', got " + kind_name(node));
  return std::nullopt;
}

std::optional<bool> boolean(const YAML::Node& node, const std::string& what, ErrorList& errors) {
  const auto text = scalar_text(node, what, "true or false", errors);
  if (!text) return std::nullopt;
  if (*text == "true") return true;
  if (*text == "false") return false;
  errors.add(node.Mark(), "expected true or false for '" + what + "', got '" + *text + "'");
  return std::nullopt;
}

std::optional<std::vector<std::pair<std::string, YAML::Mark>>> scalar_list(
    const YAML::Node& node, const std::string& what, const std::string& expected,
    ErrorList& errors) {
  if (node.IsNull()) return std::vector<std::pair<std::string, YAML::Mark>>{};
  if (!node.IsSequence()) {
    errors.add(node.Mark(),
               "expected a list of " + expected + " for '" + what + "', got " + kind_name(node));
    return std::nullopt;
  }
  std::vector<std::pair<std::string, YAML::Mark>> items;
  bool ok = true;
  for (const auto& item : node) {
    if (auto text = scalar_text(item, what, expected, errors)) {
      items.emplace_back(*text, item.Mark());
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return items;
}

}  // namespace airlock::policies
