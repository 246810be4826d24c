// Parses the top level of a policy file and its `limits` and `environment` sections.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "policies/layer.h"
#include "policies/units.h"
#include "policies/yaml_fields.h"

namespace airlock::policies {
namespace {

const std::vector<std::string> kTopLevelKeys{"description", "extends", "runtimes",    "limits",
                                             "filesystem",  "network", "environment", "syscalls",
                                             "unsafe",      "egress"};
const std::vector<std::string> kLimitKeys{"wall_time", "cpu_time",    "memory",
                                          "processes", "open_files",  "file_size",
                                          "cpu",       "output_kept", "output_overflow"};
const std::vector<std::string> kNetworkModes{"none", "loopback"};

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
    layer.environment.emplace_back(name, *text);
  }
}

void parse_runtimes(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  auto items = scalar_list(node, "runtimes", "runtime names", errors);
  if (!items) return;
  std::vector<std::string> names;
  for (const auto& [name, mark] : *items) {
    if (!is_valid_name(name)) {
      errors.add(mark, "invalid runtime name '" + name + "'");
    } else if (std::find(names.begin(), names.end(), name) != names.end()) {
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
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors.add(e.mark, "invalid YAML: " + e.msg);
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
  constexpr std::streamsize kMaxPolicyBytes = 1 << 20;
  auto unreadable = [&](std::string message) {
    errors.add_file_error(std::move(message));
    PolicyLayer layer;
    layer.name = name;
    layer.path = path;
    return layer;
  };
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return unreadable(std::string("cannot read the policy file: ") + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) return unreadable("not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return unreadable("cannot read the policy file");
  // Read as it comes, up to one byte over the limit: a buffer of the whole limit would be
  // allocated and zeroed (1 MiB, page faults and all) for every layer of every policy loaded.
  std::string text;
  char chunk[16384];
  while (in && text.size() <= static_cast<size_t>(kMaxPolicyBytes)) {
    in.read(chunk, sizeof chunk);
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (text.size() > static_cast<size_t>(kMaxPolicyBytes)) {
    return unreadable("the policy file is larger than 1 MiB");
  }
  return parse_layer_text(text, path, name, errors);
}

}  // namespace airlock::policies
