#include "policies/layering.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "policies/canonical.h"
#include "policies/syscall_rules.h"
#include "sandbox/setup_plan.h"

namespace airlock::policies {
namespace {

template <typename T>
void set_if(const std::optional<T>& value, T& target) {
  if (value) target = *value;
}

void merge_limits(const PolicyLayer& layer, Policy& policy) {
  set_if(layer.wall_time, policy.limits.wall_time);
  set_if(layer.cpu_time, policy.limits.cpu_time);
  set_if(layer.memory_max_bytes, policy.limits.memory_max_bytes);
  set_if(layer.max_processes, policy.limits.max_processes);
  set_if(layer.max_open_files, policy.limits.max_open_files);
  set_if(layer.file_size_max_bytes, policy.limits.file_size_max_bytes);
  set_if(layer.cpu_millicores, policy.limits.cpu_millicores);
  set_if(layer.workdir_size_bytes, policy.limits.workdir_size_bytes);
  set_if(layer.output_kept_bytes, policy.output.kept_bytes);
  set_if(layer.output_overflow, policy.output.on_overflow);
}

void merge_filesystem(const PolicyLayer& layer, Policy& policy,
                      std::map<std::string, sandbox::BindMount>& binds,
                      std::map<std::string, uint64_t>& tmpfs) {
  set_if(layer.workdir, policy.filesystem.workdir);
  for (const auto& bind : layer.binds) binds[bind.sandbox_path] = bind;
  for (const auto& mount : layer.tmpfs) {
    if (mount.sandbox_path == "/tmp") {
      policy.limits.tmp_size_bytes = mount.size_bytes;
    } else if (mount.sandbox_path == "/dev/shm") {
      policy.limits.shm_size_bytes = mount.size_bytes;
    } else {
      tmpfs[mount.sandbox_path] = mount.size_bytes;
    }
  }
}

// Domains before networks, each in order, so that file order never changes the canonical text.
void sort_egress(Egress& egress) {
  std::sort(egress.allow.begin(), egress.allow.end(), [](const EgressRule& a, const EgressRule& b) {
    if (a.cidr.has_value() != b.cidr.has_value()) return !a.cidr.has_value();
    if (!a.cidr) return a.domain < b.domain;
    return std::tie(a.cidr->address, a.cidr->prefix_length) <
           std::tie(b.cidr->address, b.cidr->prefix_length);
  });
}

// Two mounts at one place would hide each other; the sandbox must never have to guess.
void check_mount_points(const Policy& policy, const std::string& file,
                        std::vector<PolicyError>& errors) {
  std::map<std::string, std::string> claimed{{"/tmp", "the /tmp tmpfs"},
                                             {"/dev/shm", "the /dev/shm tmpfs"}};
  auto claim = [&](const std::string& path, const std::string& what) {
    auto [it, inserted] = claimed.emplace(path, what);
    if (!inserted) {
      errors.push_back(
          {file, 0, 0, what + " and " + it->second + " are both mounted at '" + path + "'"});
    }
  };
  claim(policy.filesystem.workdir, "the workdir");
  for (const auto& mount : policy.filesystem.tmpfs) claim(mount.sandbox_path, "a tmpfs");
  // What a sandbox's setup plan has room for (sandbox/setup_plan.h): refused here, not at a run.
  if (policy.filesystem.tmpfs.size() > sandbox::kMaxPolicyTmpfs) {
    errors.push_back({file, 0, 0,
                      "filesystem.tmpfs: " + std::to_string(policy.filesystem.tmpfs.size()) +
                          " mounts with the ones it extends; at most " +
                          std::to_string(sandbox::kMaxPolicyTmpfs) +
                          " besides /tmp and /dev/shm"});
  }
  for (const auto& mount : policy.filesystem.tmpfs) {
    if (mount.sandbox_path.size() > sandbox::kMaxTmpfsPathBytes) {
      errors.push_back({file, 0, 0,
                        "filesystem.tmpfs: the path '" + mount.sandbox_path.substr(0, 40) +
                            "...' is longer than " + std::to_string(sandbox::kMaxTmpfsPathBytes) +
                            " bytes"});
    }
  }
  for (const auto& bind : policy.filesystem.binds) claim(bind.sandbox_path, "a bind");
}

}  // namespace

std::shared_ptr<const Policy> merge_layers(const std::vector<PolicyLayer>& chain,
                                           std::vector<PolicyError>& errors) {
  const size_t errors_before = errors.size();
  const PolicyLayer& self = chain.back();
  auto policy = std::make_shared<Policy>();
  policy->name = self.name;
  policy->source_path = self.path;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    policy->extends_chain.push_back(it->name);
    policy->chain_paths.push_back(it->path);
  }

  std::map<std::string, sandbox::BindMount> binds;
  std::map<std::string, uint64_t> tmpfs;
  std::map<std::string, std::string> environment;
  EffectiveNetwork network;
  std::vector<const PolicyLayer*> pointers;
  for (const auto& layer : chain) {
    pointers.push_back(&layer);
    set_if(layer.description, policy->description);
    set_if(layer.runtimes, policy->runtimes);
    merge_limits(layer, *policy);
    merge_filesystem(layer, *policy, binds, tmpfs);
    // `network` and `egress` are one decision: the nearest layer that makes it decides both.
    if (layer.network) {
      network = {*layer.network, layer.name, layer.path, layer.network_mark};
      policy->egress = Egress{};
    }
    if (layer.egress) {
      network = {"egress", layer.name, layer.path, layer.egress_mark};
      policy->egress = *layer.egress;
    }
    for (const auto& [name, value] : layer.environment) {
      if (value) {
        environment[name] = *value;
      } else {
        environment.erase(name);
      }
    }
  }
  // Sorted by path, so a parent directory is always mounted before what is bound inside it.
  for (auto& [path, bind] : binds) policy->filesystem.binds.push_back(bind);
  for (auto& [path, size] : tmpfs) policy->filesystem.tmpfs.push_back({path, size});
  policy->network = network.mode;
  sort_egress(policy->egress);
  policy->environment.assign(environment.begin(), environment.end());
  // Each layer keeps under the limit; what they add up to must too.
  size_t environment_bytes = 0;
  for (const auto& [name, value] : environment) environment_bytes += name.size() + value.size() + 2;
  if (environment_bytes > kMaxEnvironmentBytes) {
    errors.push_back({self.path, 0, 0,
                      "environment: " + std::to_string(environment_bytes) +
                          " bytes (as NAME=value) with the policies it extends; at most " +
                          std::to_string(kMaxEnvironmentBytes)});
  }
  std::sort(policy->runtimes.begin(), policy->runtimes.end());
  check_mount_points(*policy, self.path, errors);
  policy->syscalls = build_syscall_rules(pointers, network, self.name, policy->unsafe, errors);

  if (errors.size() != errors_before) return nullptr;
  policy->canonical = canonical_text(*policy);
  policy->hash = "sha256:" + policy_digest(policy->canonical);
  return policy;
}

}  // namespace airlock::policies
