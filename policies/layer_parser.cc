// Parses the top level of a policy file and its `limits` and `environment` sections.
#include <limits>
#include <set>

#include "policies/layer.h"
#include "policies/units.h"
#include "policies/yaml_fields.h"
#include "sandbox/regular_file.h"

namespace airlock::policies {
namespace {

const std::vector<std::string> kTopLevelKeys{"description", "extends", "runtimes",    "limits",
                                             "filesystem",  "network", "environment", "syscalls",
                                             "unsafe",      "egress"};
const std::vector<std::string> kLimitKeys{"wall_time", "cpu_time",    "memory",
                                          "processes", "open_files",  "file_size",
                                          "cpu",       "output_kept", "output_overflow"};
const std::vector<std::string> kNetworkModes{"none", "loopback"};

// What a file may amount to with every YAML alias (*name) written out. A file without aliases is
// far below both (it is at most 1 MiB); a few aliases of aliases would otherwise make a small file
// into gigabytes of strings once the parsers copy them.
constexpr size_t kMaxExpandedNodes = 1 << 20;
constexpr size_t kMaxExpandedScalarBytes = 4 << 20;
// A policy is a few levels deep; the bound also ends an alias that points into its own anchor.
constexpr int kMaxNesting = 64;

struct Expansion {
  size_t nodes = 0;
  size_t scalar_bytes = 0;
  std::string problem;
};

// Walks the document as the parsers would, stopping at the first cap it passes.
bool within_caps(const YAML::Node& node, int depth, Expansion& seen) {
  if (depth > kMaxNesting) {
    seen.problem = "nests more than " + std::to_string(kMaxNesting) + " levels deep";
    return false;
  }
  if (++seen.nodes > kMaxExpandedNodes) {
    seen.problem = "holds more than " + std::to_string(kMaxExpandedNodes) + " values";
    return false;
  }
  if (node.IsScalar()) {
    seen.scalar_bytes += node.Scalar().size();
    if (seen.scalar_bytes <= kMaxExpandedScalarBytes) return true;
    seen.problem =
        "holds more than " + std::to_string(kMaxExpandedScalarBytes >> 20) + " MiB of text";
    return false;
  }
  if (node.IsSequence()) {
    for (const auto& item : node) {
      if (!within_caps(item, depth + 1, seen)) return false;
    }
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!within_caps(it->first, depth + 1, seen) || !within_caps(it->second, depth + 1, seen)) {
        return false;
      }
    }
  }
  return true;
}

// Reports a unit parser's message at the value, prefixed with the key.
template <typename T>
std::optional<T> take(const Parsed<T>& parsed, const YAML::Node& value, const std::string& key,
                      ErrorList& errors) {
  if (const auto* message = std::get_if<std::string>(&parsed)) {
    errors.add(value.Mark(), key + ": " + *message);
    return std::nullopt;
  }
  return std::get<T>(parsed);
}

void parse_limits(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "limits", errors)) return;
  for (const auto& [key_node, value] : checked_entries(node, kLimitKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "wall_time" || key == "cpu_time") {
      const auto text = scalar_text(value, key, "a duration such as '10s'", errors);
      if (!text) continue;
      auto parsed = take(parse_duration(*text), value, key, errors);
      (key == "wall_time" ? layer.wall_time : layer.cpu_time) = parsed;
    } else if (key == "memory" || key == "file_size" || key == "output_kept") {
      const auto text = scalar_text(value, key, "a size such as '256MiB'", errors);
      if (!text) continue;
      auto parsed = take(parse_bytes(*text), value, key, errors);
      if (key == "memory") layer.memory_max_bytes = parsed;
      if (key == "file_size") layer.file_size_max_bytes = parsed;
      if (key == "output_kept") layer.output_kept_bytes = parsed;
    } else if (key == "processes" || key == "open_files") {
      const auto text = scalar_text(value, key, "a whole number", errors);
      if (!text) continue;
      // Bounds a kernel would accept and a reviewer can still read.
      const uint64_t max = key == "processes" ? 65'536 : 1'048'576;
      if (auto parsed = take(parse_count(*text, max), value, key, errors)) {
        (key == "processes" ? layer.max_processes : layer.max_open_files) =
            static_cast<uint32_t>(*parsed);
      }
    } else if (key == "cpu") {
      const auto text = scalar_text(value, key, "millicores such as '1000m'", errors);
      if (text) layer.cpu_millicores = take(parse_millicores(*text), value, key, errors);
    } else if (key == "output_overflow") {
      const auto text = scalar_text(value, key, "truncate or kill", errors);
      if (!text) continue;
      if (*text == "truncate") {
        layer.output_overflow = OverflowAction::truncate;
      } else if (*text == "kill") {
        layer.output_overflow = OverflowAction::kill;
      } else {
        errors.add(value.Mark(), "output_overflow: expected truncate or kill, got '" + *text + "'");
      }
    }
  }
}

bool is_env_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

void parse_environment(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "environment", errors)) return;
  size_t total_bytes = 0;
  for (const auto& [key_node, value] : free_entries(node, errors)) {
    const std::string name = key_node.Scalar();
    if (!is_env_name(name)) {
      errors.add(key_node.Mark(), "invalid environment variable name '" + name +
                                      "': use letters, digits and '_', not starting with a digit");
      continue;
    }
    if (value.IsNull()) {  // `NAME: ~` removes what a parent set
      layer.environment.emplace_back(name, std::nullopt);
      continue;
    }
    auto text = scalar_text(value, name, "a string value", errors);
    if (!text) continue;
    if (text->find('\0') != std::string::npos) {
      errors.add(value.Mark(), "environment variable '" + name + "' contains a NUL byte");
      continue;
    }
    const size_t bytes = name.size() + 1 + text->size() + 1;  // NAME=value and its NUL
    if (bytes > kMaxEnvVarBytes) {
      errors.add(value.Mark(), "environment variable '" + name + "' is " + std::to_string(bytes) +
                                   " bytes as NAME=value; at most " +
                                   std::to_string(kMaxEnvVarBytes) +
                                   " (the kernel's MAX_ARG_STRLEN)");
      continue;
    }
    total_bytes += bytes;
    if (total_bytes > kMaxEnvironmentBytes) {
      errors.add(value.Mark(), "environment: more than " + std::to_string(kMaxEnvironmentBytes) +
                                   " bytes in all (as NAME=value) by variable '" + name + "'");
      return;
    }
    layer.environment.emplace_back(name, std::move(*text));
  }
}

void parse_runtimes(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  auto items = scalar_list(node, "runtimes", "runtime names", errors);
  if (!items) return;
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& [name, mark] : *items) {
    if (!is_valid_name(name)) {
      errors.add(mark, "invalid runtime name '" + name + "'");
    } else if (!seen.insert(name).second) {
      errors.add(mark, "runtime '" + name + "' is listed twice");
    } else {
      names.push_back(name);
    }
  }
  layer.runtimes = std::move(names);
}

void parse_top_level(const YAML::Node& root, PolicyLayer& layer, ErrorList& errors) {
  for (const auto& [key_node, value] : checked_entries(root, kTopLevelKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "description") {
      layer.description = scalar_text(value, key, "a sentence", errors);
    } else if (key == "extends") {
      auto parent = scalar_text(value, key, "a policy name", errors);
      if (parent && !is_valid_name(*parent)) {
        errors.add(value.Mark(), "extends: expected a policy name such as 'default', got '" +
                                     *parent + "' (paths are not allowed)");
      } else if (parent) {
        layer.extends = *parent;
        layer.extends_mark = value.Mark();
      }
    } else if (key == "runtimes") {
      parse_runtimes(value, layer, errors);
    } else if (key == "limits") {
      parse_limits(value, layer, errors);
    } else if (key == "filesystem") {
      parse_filesystem_section(value, layer, errors);
    } else if (key == "network") {
      auto mode = scalar_text(value, key, "none or loopback", errors);
      if (mode &&
          std::find(kNetworkModes.begin(), kNetworkModes.end(), *mode) == kNetworkModes.end()) {
        errors.add(value.Mark(), "network: expected none or loopback, got '" + *mode + "'" +
                                     did_you_mean(*mode, kNetworkModes));
      } else if (mode) {
        layer.network = *mode;
        layer.network_mark = value.Mark();
      }
    } else if (key == "environment") {
      parse_environment(value, layer, errors);
    } else if (key == "syscalls") {
      parse_syscalls_section(value, layer, errors);
    } else if (key == "unsafe") {
      parse_unsafe_section(value, layer, errors);
    } else if (key == "egress") {
      parse_egress_section(value, layer, errors);
      layer.egress_mark = key_node.Mark();  // errors about the section point at its key
    }
  }
  // An egress section makes the run's network reach the gateway; one file saying both is a
  // contradiction a reviewer should see, not a precedence rule to remember.
  if (layer.egress && layer.network) {
    errors.add(layer.network_mark, "network: " + *layer.network +
                                       " contradicts the egress section at line " +
                                       std::to_string(layer.egress_mark.line + 1) +
                                       "; a policy with egress reaches the gateway, so leave "
                                       "network out");
  }
}

}  // namespace

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '+' || c == '.';
    if (!ok) return false;
  }
  return true;
}

PolicyLayer parse_layer_text(const std::string& text, const std::string& path,
                             const std::string& name, ErrorList& errors) {
  PolicyLayer layer;
  layer.name = name;
  layer.path = path;
  layer.text = text;
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    errors.add(e.mark, "invalid YAML: " + e.msg);
    return layer;
  }
  // A second document after `---` would otherwise be ignored without a word.
  if (documents.size() > 1) {
    errors.add(documents[1].Mark(), "a policy file holds one YAML document; this file has " +
                                        std::to_string(documents.size()) +
                                        " (the second starts here): merge them or split the file");
    return layer;
  }
  const YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
  Expansion expansion;
  if (!within_caps(root, 0, expansion)) {
    errors.add_file_error("with its YAML aliases (*name) written out, the policy " +
                          expansion.problem + "; refused");
    return layer;
  }
  if (root.IsNull()) {
    errors.add_file_error("the policy is empty: expected a map of settings");
  } else if (!root.IsMap()) {
    errors.add(root.Mark(),
               "expected a map of settings at the top of the policy, got " + kind_name(root));
  } else {
    parse_top_level(root, layer, errors);
  }
  return layer;
}

PolicyLayer parse_layer(const std::string& path, const std::string& name, ErrorList& errors) {
  // A policy is a short text; a huge file is a mistake or an attack, not a policy.
  constexpr size_t kMaxPolicyBytes = 1 << 20;
  auto text = sandbox::read_regular_file(path, kMaxPolicyBytes);
  if (!text) {
    errors.add_file_error("cannot read the policy file: " + text.error().message());
    PolicyLayer layer;
    layer.name = name;
    layer.path = path;
    return layer;
  }
  return parse_layer_text(text.value(), path, name, errors);
}

}  // namespace airlock::policies
