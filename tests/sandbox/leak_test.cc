// 200 runs in a row leave nothing behind in the supervisor: no process, cgroup, mount or fd.
#include <dirent.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace airlock::sandbox {
using namespace testing;

namespace {

size_t count_entries(const std::string& dir, bool directories_only) {
  size_t count = 0;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return 0;
  while (dirent* entry = ::readdir(handle)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (!directories_only || entry->d_type == DT_DIR) ++count;
  }
  ::closedir(handle);
  return count;
}

size_t count_mounts_under(const std::string& prefix) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  size_t count = 0;
  while (std::getline(mountinfo, line)) {
    if (line.find(" " + prefix) != std::string::npos) ++count;
  }
  return count;
}

size_t count_children() {
  std::ifstream children("/proc/self/task/" + std::to_string(::gettid()) + "/children");
  std::string pid;
  size_t count = 0;
  while (children >> pid) ++count;
  return count;
}

struct Snapshot {
  size_t fds, children, mounts, cgroups, threads;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const std::string& cgroup_instance) {
  return {count_entries("/proc/self/fd", false), count_children(),
          count_mounts_under("/run/airlock"), count_entries(cgroup_instance, true),
          count_entries("/proc/self/task", false)};
}

std::string memory_instance_dir() {
  // The v1 memory hierarchy's instance dir: <mount><own path>/airlock/<pid>-<ticks>.
  std::ifstream self("/proc/self/cgroup");
  std::string line, own;
  while (std::getline(self, line)) {
    if (line.find(":memory:") != std::string::npos) own = line.substr(line.find(":memory:") + 8);
  }
  std::ostringstream path;
  path << "/sys/fs/cgroup/memory" << (own == "/" ? "" : own) << "/airlock";
  return path.str();
}

}  // namespace

TEST_CASE("200 runs in a row leave no process, cgroup, mount or fd behind", "[root][leak]") {
  if (!can_sandbox()) return;
  Captured warm;
  REQUIRE(run(probe_spec({kProbe, "exit", "0"}), warm).status == RunStatus::ok);
  const std::string cgroups = memory_instance_dir();
  Snapshot before = snapshot(cgroups);
  for (int i = 0; i < 200; ++i) {
    Captured captured;
    // Mix endings: normal exit, a left-behind daemon, a violation, a timeout.
    std::vector<std::string> argv = {kProbe, "exit", "0"};
    if (i % 4 == 1) argv = {kProbe, "daemon", "leakcheck"};
    if (i % 4 == 2) argv = {kProbe, "ptrace"};
    Spec spec = probe_spec(argv);
    if (i % 4 == 3) {
      spec.argv = {kProbe, "sleep", "5"};
      spec.limits.wall_time = std::chrono::milliseconds(20);
    }
    Outcome outcome = run(spec, captured);
    REQUIRE(outcome.status != RunStatus::setup_error);
  }
  Snapshot after = snapshot(cgroups);
  CHECK(after.fds == before.fds);
  CHECK(after.children == 0);
  CHECK(after.mounts == before.mounts);
  CHECK(after.cgroups == before.cgroups);
  CHECK(after.threads == before.threads);
}

}  // namespace airlock::sandbox
