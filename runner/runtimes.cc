#include "runner/runtimes.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "sandbox/regular_file.h"

namespace airlock::runner {
namespace {

std::string where(const std::string& path, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}

sandbox::SetupError error_at(const std::string& path, const YAML::Node& node,
                             const std::string& message) {
  return sandbox::SetupError{where(path, node) + message, 0};
}

sandbox::Expected<std::vector<std::string>> string_list(const std::string& path,
                                                        const YAML::Node& node,
                                                        const std::string& key) {
  if (!node.IsSequence() || node.size() == 0) {
    return error_at(path, node, "'" + key + "' must be a non-empty list of strings");
  }
  std::vector<std::string> items;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) return error_at(path, item, "'" + key + "' items must be strings");
    items.push_back(item.Scalar());
  }
  return items;
}

}  // namespace

sandbox::Expected<RuntimeTable> load_runtimes(const std::string& path) {
  // A directory here made yaml-cpp's reader throw std::ios_failure, which nothing caught.
  constexpr size_t kMaxRuntimesBytes = 1024 * 1024;
  auto text = sandbox::read_regular_file(path, kMaxRuntimesBytes);
  if (!text) {
    return sandbox::SetupError{"cannot read runtimes file " + path + ": " + text.error().message(),
                               0};
  }
  YAML::Node root;
  try {
    root = YAML::Load(text.value());
  } catch (const YAML::ParserException& e) {
    return sandbox::SetupError{path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg,
                               0};
  }
  if (!root.IsMap()) return error_at(path, root, "expected a map of runtime names");
  static const std::set<std::string> kKeys = {
      "description",        "source",  "compile",     "run",    "compile_policy", "preload",
      "compile_error_line", "warm_up", "environment", "support"};
  RuntimeTable table;
  for (const auto& entry : root) {
    Runtime runtime;
    runtime.name = entry.first.Scalar();
    const YAML::Node& fields = entry.second;
    if (!fields.IsMap()) return error_at(path, fields, "runtime '" + runtime.name + "' must be a map");
    for (const auto& field : fields) {
      if (!kKeys.count(field.first.Scalar())) {
        return error_at(path, field.first, "unknown key '" + field.first.Scalar() +
                                               "' (expected description, source, compile, run, "
                                               "compile_policy, compile_error_line, preload, "
                                               "warm_up, environment or support)");
      }
    }
    if (!fields["source"] || !fields["source"].IsScalar()) {
      return error_at(path, fields, "runtime '" + runtime.name + "' needs 'source: FILE'");
    }
    runtime.source_file = fields["source"].Scalar();
    if (runtime.source_file.find('/') != std::string::npos) {
      return error_at(path, fields["source"], "'source' must be a plain file name");
    }
    if (fields["description"]) runtime.description = fields["description"].Scalar();
    if (!fields["run"]) return error_at(path, fields, "runtime '" + runtime.name + "' needs 'run'");
    auto run = string_list(path, fields["run"], "run");
    if (!run) return run.error();
    runtime.run = run.value();
    if (fields["compile"]) {
      auto compile = string_list(path, fields["compile"], "compile");
      if (!compile) return compile.error();
      runtime.compile = compile.value();
    }
    if (fields["compile_policy"]) runtime.compile_policy = fields["compile_policy"].Scalar();
    if (fields["compile_error_line"]) {
      runtime.compile_error_line = fields["compile_error_line"].Scalar();
    }
    if (fields["preload"]) {
      auto preload = string_list(path, fields["preload"], "preload");
      if (!preload) return preload.error();
      runtime.preload = preload.value();
    }
    if (fields["warm_up"]) {
      if (!fields["warm_up"].IsScalar()) {
        return error_at(path, fields["warm_up"], "'warm_up' must be code (a string)");
      }
      runtime.warm_up = fields["warm_up"].Scalar();
    }
    if (const YAML::Node& environment = fields["environment"]) {
      if (!environment.IsMap()) {
        return error_at(path, environment, "'environment' must be a map of NAME: value");
      }
      for (const auto& variable : environment) {
        if (!variable.second.IsScalar()) {
          return error_at(path, variable.second, "environment values must be strings");
        }
        runtime.environment[variable.first.Scalar()] = variable.second.Scalar();
      }
    }
    if (const YAML::Node& support = fields["support"]) {
      if (!support.IsScalar() || support.Scalar().empty() ||
          support.Scalar().find('/') != std::string::npos || support.Scalar()[0] == '.') {
        return error_at(path, support, "'support' must name a folder of the drivers directory");
      }
      runtime.support = support.Scalar();
    }
    table.emplace(runtime.name, std::move(runtime));
  }
  return table;
}

void add_runtime_setup(sandbox::Spec& spec, const Runtime& runtime,
                       const std::string& drivers_dir) {
  for (const auto& [name, value] : runtime.environment) {
    const std::string prefix = name + "=";
    const bool set_by_policy =
        std::any_of(spec.env.begin(), spec.env.end(),
                    [&](const std::string& e) { return e.starts_with(prefix); });
    if (!set_by_policy) spec.env.push_back(prefix + value);
  }
  if (runtime.support.empty() || drivers_dir.empty()) return;
  const std::string inside = std::string(kSupportSandboxDir) + "/" + runtime.support;
  for (const sandbox::BindMount& bind : spec.filesystem.binds) {
    if (bind.sandbox_path == kSupportSandboxDir || bind.sandbox_path == inside) return;
  }
  // Copied, not bound, as the drivers are: no host path shows in the sandbox's mountinfo.
  spec.filesystem.binds.push_back(
      {drivers_dir + "/" + runtime.support, inside, false, false, true});
}

}  // namespace airlock::runner
