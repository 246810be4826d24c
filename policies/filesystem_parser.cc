// Parses the `filesystem:` section: read-only binds, sized tmpfs mounts, the working directory.
#include <set>

#include "policies/layer.h"
#include "policies/units.h"
#include "policies/yaml_fields.h"

namespace airlock::policies {
namespace {

const std::vector<std::string> kFilesystemKeys{"workdir", "workdir_size", "tmpfs", "binds"};
const std::vector<std::string> kBindKeys{"path", "host", "optional", "writable"};

// Paths the sandbox itself provides; a policy must not cover them with a host path.
const std::vector<std::string> kProvidedTrees{"/proc", "/dev"};
const std::vector<std::string> kProvidedFiles{"/etc/passwd", "/etc/group", "/etc/hosts",
                                              "/etc/hostname"};

bool is_under(const std::string& path, const std::string& tree) {
  return path == tree || (path.size() > tree.size() && path.compare(0, tree.size(), tree) == 0 &&
                          path[tree.size()] == '/');
}

// An absolute path with no '.', '..', empty components or trailing '/', or a reason why not.
std::string path_problem(const std::string& path) {
  if (path.empty() || path[0] != '/') return "must be an absolute path";
  if (path == "/") return "must not be the root directory";
  if (path.back() == '/') return "must not end with '/'";
  if (path.find('\0') != std::string::npos) return "must not contain a NUL byte";
  size_t start = 1;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return "must be a plain path without '.', '..' or '//'";
    }
    start = end + 1;
  }
  return "";
}

// Where a mount inside the sandbox may not go.
std::string sandbox_path_problem(const std::string& path) {
  if (auto problem = path_problem(path); !problem.empty()) return problem;
  for (const auto& tree : kProvidedTrees) {
    if (is_under(path, tree) && !is_under(path, "/dev/shm")) {
      return "is inside " + tree + ", which the sandbox provides";
    }
  }
  for (const auto& file : kProvidedFiles) {
    if (path == file) return "is written by the sandbox itself";
  }
  return "";
}

bool checked_path(const std::string& path, const YAML::Mark& mark, const std::string& what,
                  bool inside_sandbox, ErrorList& errors) {
  const std::string problem = inside_sandbox ? sandbox_path_problem(path) : path_problem(path);
  if (problem.empty()) return true;
  errors.add(mark, what + " '" + path + "' " + problem);
  return false;
}

// `bind_paths`: the sandbox paths of the binds before this one, a set because a file may list many.
void parse_bind(const YAML::Node& item, PolicyLayer& layer, std::set<std::string>& bind_paths,
                ErrorList& errors) {
  sandbox::BindMount bind;
  YAML::Mark path_mark = item.Mark();
  if (item.IsScalar()) {
    bind.host_path = item.Scalar();
  } else if (item.IsMap()) {
    bool has_path = false;
    for (const auto& [key_node, value] : checked_entries(item, kBindKeys, errors)) {
      const std::string key = key_node.Scalar();
      if (key == "path" || key == "host") {
        auto text = scalar_text(value, key, "an absolute path", errors);
        if (!text) return;
        (key == "path" ? bind.sandbox_path : bind.host_path) = *text;
        if (key == "path") {
          has_path = true;
          path_mark = value.Mark();
        }
      } else {
        auto flag = boolean(value, key, errors);
        if (!flag) return;
        (key == "optional" ? bind.optional : bind.writable) = *flag;
      }
    }
    if (!has_path) {
      errors.add(item.Mark(), "a bind needs 'path' (where it appears in the sandbox)");
      return;
    }
    if (bind.host_path.empty()) bind.host_path = bind.sandbox_path;
  } else {
    errors.add(item.Mark(),
               "expected a path or a map with 'path' for a bind, got " + kind_name(item));
    return;
  }
  if (bind.sandbox_path.empty()) bind.sandbox_path = bind.host_path;
  if (!checked_path(bind.sandbox_path, path_mark, "bind path", true, errors)) return;
  if (!checked_path(bind.host_path, path_mark, "bind host path", false, errors)) return;
  if (!bind_paths.insert(bind.sandbox_path).second) {
    errors.add(path_mark, "bind path '" + bind.sandbox_path + "' is listed twice");
    return;
  }
  layer.binds.push_back(std::move(bind));
}

void parse_tmpfs(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "tmpfs", errors)) return;
  for (const auto& [key_node, value] : free_entries(node, errors)) {
    const std::string path = key_node.Scalar();
    if (!checked_path(path, key_node.Mark(), "tmpfs path", true, errors)) continue;
    auto text = scalar_text(value, path, "a size such as '64MiB'", errors);
    if (!text) continue;
    auto parsed = parse_bytes(*text);
    if (const auto* message = std::get_if<std::string>(&parsed)) {
      errors.add(value.Mark(), path + ": " + *message);
      continue;
    }
    layer.tmpfs.push_back({path, std::get<uint64_t>(parsed)});
  }
}

}  // namespace

void parse_filesystem_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "filesystem", errors)) return;
  for (const auto& [key_node, value] : checked_entries(node, kFilesystemKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "workdir") {
      auto text = scalar_text(value, key, "an absolute path", errors);
      if (text && checked_path(*text, value.Mark(), "workdir", true, errors)) {
        if (*text == "/tmp" || *text == "/dev/shm") {
          errors.add(value.Mark(), "workdir '" + *text + "' is a tmpfs of its own; pick another");
        } else {
          layer.workdir = *text;
        }
      }
    } else if (key == "workdir_size") {
      auto text = scalar_text(value, key, "a size such as '64MiB'", errors);
      if (!text) continue;
      auto parsed = parse_bytes(*text);
      if (const auto* message = std::get_if<std::string>(&parsed)) {
        errors.add(value.Mark(), key + ": " + *message);
      } else {
        layer.workdir_size_bytes = std::get<uint64_t>(parsed);
      }
    } else if (key == "tmpfs") {
      parse_tmpfs(value, layer, errors);
    } else if (key == "binds") {
      if (value.IsNull()) continue;
      if (!value.IsSequence()) {
        errors.add(value.Mark(), "expected a list of binds for 'binds', got " + kind_name(value));
        continue;
      }
      std::set<std::string> bind_paths;
      for (const auto& item : value) parse_bind(item, layer, bind_paths, errors);
    }
  }
}

}  // namespace airlock::policies
