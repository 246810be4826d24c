#include "policies/loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <tuple>

#include "policies/layer.h"
#include "policies/layering.h"

namespace airlock::policies {
namespace {

// A chain deeper than this is a mistake; it also bounds the work a hostile directory can cause.
constexpr size_t kMaxExtendsDepth = 16;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_regular_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Policy names found in `dirs`, for "did you mean" on a missing parent.
std::vector<std::string> names_in(const std::vector<std::string>& dirs) {
  std::vector<std::string> names;
  for (const auto& dir : dirs) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      const std::string file = entry.path().filename().string();
      if (ends_with(file, ".yaml")) names.push_back(policy_name_of(file));
    }
  }
  return names;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

// The path with symlinks and ".." resolved, so that a cycle through a symlink is still found.
std::string canonical_path(const std::string& path) {
  std::error_code error;
  const auto resolved = std::filesystem::weakly_canonical(path, error);
  return error ? path : resolved.string();
}

// Groups errors by file (in the order files first appear) and orders each file's by position.
void sort_errors(std::vector<PolicyError>& errors) {
  std::vector<std::string> files;
  for (const auto& error : errors) {
    if (std::find(files.begin(), files.end(), error.file) == files.end())
      files.push_back(error.file);
  }
  auto rank = [&](const PolicyError& error) {
    const int line = error.line == kAfterAllLines ? std::numeric_limits<int>::max() : error.line;
    return std::tuple(std::find(files.begin(), files.end(), error.file) - files.begin(), line,
                      error.column);
  };
  std::stable_sort(errors.begin(), errors.end(),
                   [&](const PolicyError& a, const PolicyError& b) { return rank(a) < rank(b); });
}

}  // namespace

std::string policy_name_of(const std::string& path) {
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  for (const std::string suffix : {".yaml", ".yml"}) {
    if (ends_with(name, suffix)) return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

std::string find_policy_file(const std::string& name, const std::vector<std::string>& dirs) {
  if (!is_valid_name(name)) return "";
  for (const auto& dir : dirs) {
    const std::string candidate = dir + "/" + name + ".yaml";
    if (is_regular_file(candidate)) return candidate;
  }
  return "";
}

LoadResult load_policy(const std::string& name_or_path,
                       const std::vector<std::string>& search_dirs) {
  LoadResult result;
  const bool is_path = name_or_path.find('/') != std::string::npos ||
                       ends_with(name_or_path, ".yaml") || ends_with(name_or_path, ".yml");
  std::string path = is_path ? name_or_path : find_policy_file(name_or_path, search_dirs);
  if (path.empty()) {
    std::string message = "no policy named '" + name_or_path + "' in " +
                          (search_dirs.empty() ? "(no directories)" : joined(search_dirs, ", "));
    message += did_you_mean(name_or_path, names_in(search_dirs));
    result.errors.push_back({name_or_path, 0, 0, message});
    return result;
  }

  // Read the chain from the policy up to its root ancestor. A layer with errors is still followed
  // and merged, so that one run of `policy check` reports every problem, not just the first.
  std::vector<PolicyLayer> chain;  // child first while reading
  std::vector<std::string> seen_paths;
  bool chain_complete = true;
  while (true) {
    ErrorList errors(path);
    PolicyLayer layer = parse_layer(path, policy_name_of(path), errors);
    for (auto& error : errors.errors()) result.errors.push_back(std::move(error));
    seen_paths.push_back(canonical_path(path));
    std::optional<std::string> parent = layer.extends;
    const YAML::Mark mark = layer.extends_mark;
    chain.push_back(std::move(layer));
    if (!parent) break;

    ErrorList link_errors(path);
    std::vector<std::string> dirs{directory_of(path)};
    dirs.insert(dirs.end(), search_dirs.begin(), search_dirs.end());
    const std::string parent_path = find_policy_file(*parent, dirs);
    if (parent_path.empty()) {
      link_errors.add(mark, "extends: no policy named '" + *parent + "' in " + joined(dirs, ", ") +
                                did_you_mean(*parent, names_in(dirs)));
    } else if (std::find(seen_paths.begin(), seen_paths.end(), canonical_path(parent_path)) !=
               seen_paths.end()) {
      std::string cycle;
      for (const auto& link : chain) cycle += link.name + " -> ";
      link_errors.add(mark, "extends: cycle " + cycle + *parent);
    } else if (chain.size() >= kMaxExtendsDepth) {
      link_errors.add(
          mark, "extends: more than " + std::to_string(kMaxExtendsDepth) + " levels of extends");
    }
    if (!link_errors.empty()) {
      for (auto& error : link_errors.errors()) result.errors.push_back(std::move(error));
      chain_complete = false;
      break;
    }
    path = parent_path;
  }
  if (chain_complete) {
    std::reverse(chain.begin(), chain.end());
    auto policy = merge_layers(chain, result.errors);
    if (result.errors.empty()) result.policy = std::move(policy);
  }
  sort_errors(result.errors);
  return result;
}

}  // namespace airlock::policies
