// The v2 backend's logic against a fake cgroup tree in a temp dir (this machine runs v1).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

namespace airlock::sandbox {
namespace {

namespace fs = std::filesystem;

// Behaves like cgroupfs where the backend can tell: files appear when written, rmdir removes a
// directory's interface files but refuses subdirectories, and every write is recorded.
class FakeCgroupFs final : public CgroupFs {
 public:
  explicit FakeCgroupFs(std::string self_cgroup) : self_cgroup_(std::move(self_cgroup)) {}

  Status make_dir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("mkdir");
    return {};
  }
  Status remove_dir(const std::string& path) override {
    if (!fs::exists(path)) return {};
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.is_directory()) return SetupError{"rmdir(\"" + path + "\")", EBUSY};
    }
    fs::remove_all(path);
    removed.insert(path);
    return {};
  }
  Expected<std::string> read(const std::string& path) override {
    std::ifstream in(path);
    if (!in) return SetupError{"open(\"" + path + "\")", ENOENT};
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  Status write(const std::string& path, std::string_view value) override {
    if (!fs::exists(fs::path(path).parent_path())) return SetupError{"write", ENOENT};
    std::ofstream(path) << value;
    writes.push_back(path + "=" + std::string(value));
    return {};
  }
  bool exists(const std::string& path) override { return fs::exists(path); }
  std::vector<std::string> list_dirs(const std::string& path) override {
    std::vector<std::string> names;
    if (!fs::exists(path)) return names;
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.is_directory()) names.push_back(entry.path().filename());
    }
    return names;
  }
  std::string read_self_file(const std::string&) override { return self_cgroup_; }

  std::vector<std::string> writes;
  std::set<std::string> removed;

 private:
  std::string self_cgroup_;
};

struct FakeTree {
  FakeTree() {
    char pattern[] = "/tmp/airlock-cgroup2-XXXXXX";
    root = ::mkdtemp(pattern);
    fs::create_directories(root + "/service");
    std::ofstream(root + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
    std::ofstream(root + "/service/cgroup.controllers") << "cpu io memory pids\n";
    std::ofstream(root + "/service/cgroup.subtree_control") << "";
    fake = std::make_shared<FakeCgroupFs>("0::/service\n");
  }
  ~FakeTree() { fs::remove_all(root); }
  bool wrote(const std::string& line) const {
    return std::find(fake->writes.begin(), fake->writes.end(), line) != fake->writes.end();
  }
  std::string root;
  std::shared_ptr<FakeCgroupFs> fake;
};

}  // namespace

TEST_CASE("v2 is picked when the hierarchy root has cgroup.controllers") {
  FakeTree tree;
  auto backend =
      make_cgroup_backend(CgroupVersion::automatic, tree.root, tree.fake, new_instance_name());
  REQUIRE(backend.ok());
  CHECK((*backend)->name() == "v2");
}

TEST_CASE("v2: the supervisor moves into a leaf and enables controllers for its runs") {
  FakeTree tree;
  auto backend = make_cgroup_v2_backend(tree.root, tree.fake, new_instance_name());
  REQUIRE(backend.ok());
  const std::string pid = std::to_string(::getpid());
  CHECK(tree.wrote(tree.root + "/service/airlock-supervisor-" + pid + "/cgroup.procs=" + pid));
  CHECK(tree.wrote(tree.root + "/service/cgroup.subtree_control=+cpu +memory +pids"));
  CHECK(tree.wrote(tree.root + "/service/airlock/cgroup.subtree_control=+cpu +memory +pids"));
  const std::string instance = (*backend)->instance_path();
  CHECK(instance.rfind(tree.root + "/service/airlock/" + pid + "-", 0) == 0);
  CHECK(tree.wrote(instance + "/cgroup.subtree_control=+cpu +memory +pids"));
}

TEST_CASE("v2: a run's cgroup gets its limits, reports its counters and is removed") {
  FakeTree tree;
  auto backend = make_cgroup_v2_backend(tree.root, tree.fake, new_instance_name());
  REQUIRE(backend.ok());
  Limits limits;
  limits.memory_max_bytes = 64 * kMiB;
  limits.max_processes = 16;
  auto cgroup = (*backend)->create("run-7", limits);
  REQUIRE(cgroup.ok());
  const std::string dir = (*backend)->instance_path() + "/run-7";
  CHECK(tree.wrote(dir + "/memory.max=67108864"));
  CHECK(tree.wrote(dir + "/memory.swap.max=0"));
  CHECK(tree.wrote(dir + "/pids.max=16"));
  CHECK((*cgroup)->clone_into_fd() >= 0);
  REQUIRE((*cgroup)->attach(4242));
  CHECK(tree.wrote(dir + "/cgroup.procs=4242"));

  std::ofstream(dir + "/cpu.stat") << "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
  std::ofstream(dir + "/memory.events") << "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n";
  std::ofstream(dir + "/pids.events") << "max 2\n";
  std::ofstream(dir + "/memory.peak") << "1048576\n";
  std::ofstream(dir + "/cgroup.events") << "populated 0\nfrozen 0\n";
  auto stats = (*cgroup)->stats();
  REQUIRE(stats.ok());
  CHECK(stats->cpu_user_ns == 1'000'000);
  CHECK(stats->cpu_system_ns == 500'000);
  CHECK(stats->oom_kills == 1);
  CHECK(stats->pids_max_hits == 2);
  CHECK(stats->peak_memory_bytes == 1048576);
  CHECK((*cgroup)->cpu_usage_ns().value() == 1'500'000);

  REQUIRE((*cgroup)->destroy());
  CHECK(tree.wrote(dir + "/cgroup.kill=1"));
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("v2: stale cgroups of a dead supervisor are killed and removed at start") {
  FakeTree tree;
  const std::string stale = tree.root + "/service/airlock/999999999-1-1";
  std::filesystem::create_directories(stale + "/run-3");
  std::ofstream(stale + "/run-3/cgroup.events") << "populated 0\n";
  auto backend = make_cgroup_v2_backend(tree.root, tree.fake, new_instance_name());
  REQUIRE(backend.ok());
  CHECK(tree.wrote(stale + "/run-3/cgroup.kill=1"));
  CHECK_FALSE(std::filesystem::exists(stale));
}

TEST_CASE("v2: a controller that is not delegated is a clear setup error") {
  FakeTree tree;
  std::ofstream(tree.root + "/service/cgroup.controllers") << "cpu io\n";
  auto backend = make_cgroup_v2_backend(tree.root, tree.fake, new_instance_name());
  REQUIRE_FALSE(backend.ok());
  CHECK_THAT(backend.error().message(), Catch::Contains("'memory' is not delegated"));
}

}  // namespace airlock::sandbox
