// Reading YAML nodes with errors that say where and what was expected. Every helper reports into
// an ErrorList and returns nullopt/false instead of throwing, so one file's errors are all found.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policies/errors.h"

namespace airlock::policies {

// "a map", "a list", "a string", "null": how a node's kind reads in an error message.
std::string kind_name(const YAML::Node& node);

// The (key, value) pairs of a map, in file order. Reports keys not in `allowed` (with the nearest
// valid key), duplicate keys and non-string keys; those pairs are left out.
std::vector<std::pair<YAML::Node, YAML::Node>> checked_entries(
    const YAML::Node& map, const std::vector<std::string>& allowed, ErrorList& errors);

// Like checked_entries, for maps whose keys are free (paths, variable names): only duplicate and
// non-string keys are reported.
std::vector<std::pair<YAML::Node, YAML::Node>> free_entries(const YAML::Node& map,
                                                            ErrorList& errors);

// True when `node` is a map; otherwise reports "expected a map for 'what', got a list".
bool expect_map(const YAML::Node& node, const std::string& what, ErrorList& errors);

// The text of a scalar; otherwise reports "expected <expected> for 'what', got a <kind>".
std::optional<std::string> scalar_text(const YAML::Node& node, const std::string& what,
                                       const std::string& expected, ErrorList& errors);

// true/false; anything else is reported.
std::optional<bool> boolean(const YAML::Node& node, const std::string& what, ErrorList& errors);

// A list of scalars; a single scalar is reported, not silently taken as a one-element list.
std::optional<std::vector<std::pair<std::string, YAML::Mark>>> scalar_list(
    const YAML::Node& node, const std::string& what, const std::string& expected,
    ErrorList& errors);

}  // namespace airlock::policies
