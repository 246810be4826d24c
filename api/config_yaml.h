// The YAML reading that the sections of the serve config share (config.cc, egress_config.cc):
// typed values whose errors point at the node they are about. Internal to airlock::api.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace airlock::api::config_yaml {

// Carries a message and the node it is about out of the parsing code, up to parse_config, which
// turns it into "file:line:column: message".
struct ConfigError {
  YAML::Mark mark;
  std::string message;
};

// Throws ConfigError for `node`.
[[noreturn]] void fail(const YAML::Node& node, std::string message);

// 'unknown setting "max_concurent" — did you mean 'max_concurrent'?', or with the whole list
// when nothing is near.
std::string unknown(const std::string& what, const std::string& name,
                    const std::vector<std::string>& valid);

// yaml-cpp keeps the last of two equal keys. Fails at the second of two equal keys in any map of
// the document ("e2b: 'spares' is given twice (first at line 4)"), before a section reads it.
// Bounded: aliases can repeat a part, or nest a node into itself.
void reject_duplicate_keys(const YAML::Node& root);

// Each reads `node` as one kind of value or fails naming `key`.
std::string scalar(const YAML::Node& node, const std::string& key);
uint64_t whole_number(const YAML::Node& node, const std::string& key, uint64_t max);
std::chrono::milliseconds duration(const YAML::Node& node, const std::string& key);  // "10s"
uint64_t size(const YAML::Node& node, const std::string& key);                       // "64KiB"
std::vector<std::string> string_list(const YAML::Node& node, const std::string& key);

}  // namespace airlock::api::config_yaml
