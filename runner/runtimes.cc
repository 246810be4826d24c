#include "runner/runtimes.h"

#include <yaml-cpp/yaml.h>

#include <set>

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
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return sandbox::SetupError{"cannot read runtimes file " + path, ENOENT};
  } catch (const YAML::ParserException& e) {
    return sandbox::SetupError{path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg,
                               0};
  }
  if (!root.IsMap()) return error_at(path, root, "expected a map of runtime names");
  static const std::set<std::string> kKeys = {"description",    "source",  "compile",
                                              "run",            "compile_policy", "preload",
                                              "compile_error_line"};
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
                                               "compile_policy, compile_error_line or preload)");
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
    table.emplace(runtime.name, std::move(runtime));
  }
  return table;
}

}  // namespace airlock::runner
