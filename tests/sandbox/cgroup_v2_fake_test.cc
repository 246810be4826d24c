// The v2 backend's logic against a fake cgroup tree in a temp dir (this machine runs v1).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
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
  explicit FakeCgroupFs(std::string self) : self_cgroup(std::move(self)) {}

  Status make_dir(const std::string& path) override {
    if (mkdir_errno != 0) return SetupError{"mkdir(\"" + path + "\")", mkdir_errno};
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
    if (!fail_write_suffix.empty() && path.size() >= fail_write_suffix.size() &&
        path.compare(path.size() - fail_write_suffix.size(), fail_write_suffix.size(),
                     fail_write_suffix) == 0) {
      return SetupError{"write(\"" + path + "\")", fail_write_errno};
    }
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
  std::string read_self_file(const std::string&) override { return self_cgroup; }

  std::string self_cgroup;  // what /proc/self/cgroup says
  std::vector<std::string> writes;
  std::set<std::string> removed;
  int mkdir_errno = 0;            // every mkdir fails with it (a read-only or foreign cgroupfs)
  std::string fail_write_suffix;  // writes to paths ending so fail with fail_write_errno
  int fail_write_errno = 0;
};

struct FakeTree {
  FakeTree() {
    char pattern[] = "/tmp/airlock-cgroup2-XXXXXX";
    root = ::mkdtemp(pattern);
    fs::create_directories(root + "/service");
    std::ofstream(root + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
    std::ofstream(root + "/service/cgroup.controllers") << "cpu io memory pids\n";
    std::ofstream(root + "/service/cgroup.subtree_control") << "";
    std::ofstream(root + "/service/cgroup.type") << "domain\n";  // not the root cgroup
    std::ofstream(root + "/service/cgroup.procs") << ::getpid() << "\n";
    fake = std::make_shared<FakeCgroupFs>("0::/service\n");
  }
  // A backend as the service makes it; systemd is not asked unless a test says so.
  Expected<std::unique_ptr<CgroupBackend>> backend() {
    return make_cgroup_v2_backend(root, fake, new_instance_name(), scope);
  }
  // What is left in the service's cgroup: the names of its subdirectories.
  std::set<std::string> service_children() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(root + "/service")) {
      if (entry.is_directory()) names.insert(entry.path().filename());
    }
    return names;
  }
  std::function<Status(const std::string&)> scope = [this](const std::string& unit) -> Status {
    scope_requests.push_back(unit);
    return SetupError{"no systemd runs here to ask for a delegated scope", 0};
  };
  std::vector<std::string> scope_requests;
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
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  const std::string pid = std::to_string(::getpid());
  const std::string leaf = tree.root + "/service/airlock-supervisor-" + pid + "-" +
                           std::to_string(process_start_ticks(::getpid()));
  CHECK(tree.wrote(leaf + "/cgroup.procs=" + pid));
  CHECK(tree.wrote(tree.root + "/service/cgroup.subtree_control=+cpu +memory +pids"));
  CHECK(tree.wrote(tree.root + "/service/airlock/cgroup.subtree_control=+cpu +memory +pids"));
  const std::string instance = (*backend)->instance_path();
  CHECK(instance.rfind(tree.root + "/service/airlock/" + pid + "-", 0) == 0);
  CHECK(tree.wrote(instance + "/cgroup.subtree_control=+cpu +memory +pids"));
}

TEST_CASE("v2: a run's cgroup gets its limits, reports its counters and is removed") {
  FakeTree tree;
  auto backend = tree.backend();
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
  REQUIRE((*cgroup)->set_cpu_share(CpuShare::background));
  CHECK(tree.wrote(dir + "/cpu.weight=1"));
  REQUIRE((*cgroup)->set_cpu_share(CpuShare::normal));
  CHECK(tree.wrote(dir + "/cpu.weight=100"));

  REQUIRE((*cgroup)->destroy());
  CHECK(tree.wrote(dir + "/cgroup.kill=1"));
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("v2: stale cgroups of a dead supervisor are killed and removed at start") {
  FakeTree tree;
  const std::string stale = tree.root + "/service/airlock/999999999-1-1";
  std::filesystem::create_directories(stale + "/run-3");
  std::ofstream(stale + "/run-3/cgroup.events") << "populated 0\n";
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  CHECK(tree.wrote(stale + "/run-3/cgroup.kill=1"));
  CHECK_FALSE(std::filesystem::exists(stale));
}

TEST_CASE("v2: a controller that is not delegated is a clear setup error") {
  FakeTree tree;
  std::ofstream(tree.root + "/service/cgroup.controllers") << "cpu io\n";
  auto backend = tree.backend();
  REQUIRE_FALSE(backend.ok());
  CHECK_THAT(backend.error().message(),
             Catch::Contains("the memory pids controller(s) are not delegated"));
  CHECK_THAT(backend.error().message(), Catch::Contains("no systemd runs here"));
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: at exit the supervisor moves back home and removes its leaf") {
  FakeTree tree;
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  CHECK(tree.service_children().size() == 2);  // the leaf and airlock/
  backend.value().reset();
  const std::string pid = std::to_string(::getpid());
  CHECK(tree.wrote(tree.root + "/service/cgroup.subtree_control=-cpu -memory -pids"));
  CHECK(tree.wrote(tree.root + "/service/cgroup.procs=" + pid));
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: the leaf stays while another backend of the process still has runs") {
  FakeTree tree;
  auto first = tree.backend();
  auto second = tree.backend();
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  first.value().reset();
  CHECK(tree.service_children().size() == 2);
  second.value().reset();
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: stale supervisor leaves of dead processes are removed at start") {
  FakeTree tree;
  std::filesystem::create_directories(tree.root + "/service/airlock-supervisor-999999999-1");
  std::filesystem::create_directories(tree.root + "/service/airlock-supervisor-999999998");
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  for (const std::string& name : tree.service_children()) {
    CHECK(name.find("99999999") == std::string::npos);
  }
}

TEST_CASE("v2: a cgroup shared with other processes asks systemd for a delegated scope") {
  FakeTree tree;
  const std::string pid = std::to_string(::getpid());
  std::ofstream(tree.root + "/service/cgroup.procs") << "1\n" << pid << "\n";
  tree.scope = [&](const std::string& unit) -> Status {
    tree.scope_requests.push_back(unit);
    const std::string scope = tree.root + "/system.slice/" + unit;
    std::filesystem::create_directories(scope);
    std::ofstream(scope + "/cgroup.controllers") << "cpu io memory pids\n";
    std::ofstream(scope + "/cgroup.type") << "domain\n";
    std::ofstream(scope + "/cgroup.procs") << pid << "\n";
    tree.fake->self_cgroup = "0::/system.slice/" + unit + "\n";
    return {};
  };
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  REQUIRE(tree.scope_requests == std::vector<std::string>{"airlock-" + pid + ".scope"});
  CHECK((*backend)->instance_path().rfind(
            tree.root + "/system.slice/airlock-" + pid + ".scope/airlock/", 0) == 0);
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: a scope outside the cgroup namespace (a container's) is a clear error") {
  FakeTree tree;
  std::ofstream(tree.root + "/service/cgroup.procs") << "1\n" << ::getpid() << "\n";
  tree.scope = [&](const std::string& unit) -> Status {
    tree.fake->self_cgroup = "0::/../system.slice/" + unit + "\n";
    return {};
  };
  auto backend = tree.backend();
  REQUIRE_FALSE(backend.ok());
  CHECK_THAT(backend.error().message(), Catch::Contains("outside this cgroup namespace"));
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: a shared cgroup without systemd is one clear error and leaves nothing") {
  FakeTree tree;
  std::ofstream(tree.root + "/service/cgroup.procs") << "1\n" << ::getpid() << "\n";
  auto backend = tree.backend();
  REQUIRE_FALSE(backend.ok());
  const std::string message = backend.error().message();
  CHECK_THAT(message, Catch::Contains("is shared with other processes"));
  CHECK_THAT(message, Catch::Contains("no systemd runs here"));
  CHECK_THAT(message, Catch::Contains("Delegate=yes"));
  CHECK(message.find('\n') == std::string::npos);
  CHECK(tree.service_children().empty());
}

TEST_CASE("v2: a read-only cgroupfs, no permission and a vanished cgroup are clear errors") {
  FakeTree tree;
  tree.fake->mkdir_errno = EROFS;
  auto read_only = tree.backend();
  REQUIRE_FALSE(read_only.ok());
  CHECK_THAT(read_only.error().message(), Catch::Contains("read-only"));

  tree.fake->mkdir_errno = EACCES;
  auto denied = tree.backend();
  REQUIRE_FALSE(denied.ok());
  CHECK_THAT(denied.error().message(), Catch::Contains("no permission to manage"));

  tree.fake->mkdir_errno = 0;
  tree.fake->fail_write_suffix = "/service/cgroup.subtree_control";
  tree.fake->fail_write_errno = ENOENT;
  auto vanished = tree.backend();
  REQUIRE_FALSE(vanished.ok());
  CHECK_THAT(vanished.error().message(), Catch::Contains("vanished"));
  CHECK(tree.service_children().empty());  // the leaf it had made is gone again
}

TEST_CASE("v2: without memory.peak, peak memory is the highest memory.current read") {
  FakeTree tree;
  auto backend = tree.backend();
  REQUIRE(backend.ok());
  auto cgroup = (*backend)->create("run-1", Limits{});
  REQUIRE(cgroup.ok());
  const std::string dir = (*backend)->instance_path() + "/run-1";
  std::ofstream(dir + "/cpu.stat") << "usage_usec 0\nuser_usec 0\nsystem_usec 0\n";
  std::ofstream(dir + "/memory.events") << "oom_kill 0\n";
  std::ofstream(dir + "/pids.events") << "max 0\n";
  std::ofstream(dir + "/memory.current") << "3000000\n";
  REQUIRE((*cgroup)->memory_usage_bytes().value() == 3000000);
  std::ofstream(dir + "/memory.current") << "1000\n";
  auto stats = (*cgroup)->stats();
  REQUIRE(stats.ok());
  CHECK(stats->peak_memory_bytes == 3000000);
  std::ofstream(dir + "/cgroup.events") << "populated 0\n";
}

}  // namespace airlock::sandbox
