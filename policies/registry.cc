#include "policies/registry.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "policies/layer.h"
#include "policies/loader.h"

namespace airlock::policies {

PolicyRegistry::PolicyRegistry(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

std::vector<PolicyError> PolicyRegistry::reload() {
  std::lock_guard reload_lock(reload_mutex_);
  std::vector<PolicyError> errors;

  // Which names exist on disk now; the first directory holding a name wins.
  std::set<std::string> names_on_disk;
  for (const auto& dir : dirs_) {
    std::error_code error;
    std::vector<std::string> files;
    std::filesystem::directory_iterator it(dir, error);
    const bool opened = !error;
    // A directory that cannot be opened holds no policies; one that fails part way through
    // would look like removed policies, so nothing changes then.
    for (; !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
      const std::string file = it->path().filename().string();
      if (file.size() > 5 && file.ends_with(".yaml")) files.push_back(file);
    }
    if (error && opened) {
      errors.push_back({dir, 0, 0,
                        "not reloaded: listing the directory failed: " + error.message() +
                            "; every policy stays as it was"});
      return errors;
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      const std::string name = policy_name_of(file);
      if (!is_valid_name(name)) {
        errors.push_back(
            {dir + "/" + file, 0, 0, "not loaded: '" + name + "' is not a valid policy name"});
        continue;
      }
      names_on_disk.insert(name);
    }
  }

  // Load outside the lock: get() keeps answering with the old versions meanwhile.
  std::map<std::string, std::shared_ptr<const Policy>> loaded;
  for (const auto& name : names_on_disk) {
    LoadResult result;
    try {
      result = load_policy(name, dirs_);
    } catch (const std::exception& e) {
      // Out of memory, a filesystem error: this policy keeps its old version, the others load.
      result = {};
      result.errors.push_back({name, 0, 0, std::string("not loaded: ") + e.what()});
    }
    if (result.ok()) {
      loaded[name] = result.policy;
    } else {
      for (auto& error : result.errors) errors.push_back(std::move(error));
    }
  }

  std::lock_guard lock(mutex_);
  for (auto it = policies_.begin(); it != policies_.end();) {
    it = names_on_disk.count(it->first) ? std::next(it) : policies_.erase(it);
  }
  for (auto& [name, policy] : loaded) policies_[name] = std::move(policy);
  return errors;
}

std::shared_ptr<const Policy> PolicyRegistry::get(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = policies_.find(name);
  return it == policies_.end() ? nullptr : it->second;
}

std::vector<std::string> PolicyRegistry::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, policy] : policies_) names.push_back(name);
  return names;
}

}  // namespace airlock::policies
