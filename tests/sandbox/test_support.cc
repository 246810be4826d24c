#include "test_support.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "sandbox/cgroup.h"

namespace airlock::sandbox::testing {

Spec probe_spec(std::vector<std::string> argv) {
  Spec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "LANG=C.UTF-8"};
  for (const char* path : {"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ld.so.cache",
                           "/etc/alternatives", "/etc/ssl", "/etc/localtime"}) {
    spec.filesystem.binds.push_back({path, "", false, true});
  }
  spec.filesystem.binds.push_back({PROBE_DIR, "/helpers", false, false});
  spec.limits.wall_time = std::chrono::seconds(5);
  spec.limits.cpu_time = std::chrono::seconds(5);
  return spec;
}

bool can_sandbox() {
  if (::geteuid() == 0) return true;
  WARN("skipped: creating sandboxes needs root (cgroups and uid maps)");
  return false;
}

Sandbox& shared_sandbox() {
  static std::unique_ptr<Sandbox> sandbox = [] {
    auto created = Sandbox::create(SandboxConfig{});
    if (!created) FAIL("Sandbox::create: " << created.error().message());
    return std::move(created.value());
  }();
  return *sandbox;
}

bool cgroup_v1() {
  return ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0;
}

size_t processes_in_own_runs_v1(const std::string& controller) {
  auto fs = make_kernel_cgroup_fs();
  std::string own = own_cgroup_path(fs->read_self_file("/proc/self/cgroup"), controller);
  std::string base = "/sys/fs/cgroup/" + controller + (own == "/" ? "" : own) + "/airlock";
  const std::string prefix = std::to_string(::getpid()) + "-";
  size_t count = 0;
  for (const std::string& instance : fs->list_dirs(base)) {
    if (instance.rfind(prefix, 0) != 0) continue;
    for (const std::string& run : fs->list_dirs(base + "/" + instance)) {
      std::ifstream procs(base + "/" + instance + "/" + run + "/cgroup.procs");
      for (std::string line; std::getline(procs, line);) ++count;
    }
  }
  return count;
}

Outcome run(const Spec& spec, Captured& captured, const RunOptions& options) {
  return shared_sandbox().run(spec, captured, options);
}

}  // namespace airlock::sandbox::testing
