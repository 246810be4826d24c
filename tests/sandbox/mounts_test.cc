#include "sandbox/mounts.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "sandbox/rlimits.h"

namespace airlock::sandbox {
namespace {

const MountOp* find_op(const MountPlan& plan, MountOp::Kind kind, const std::string& target) {
  for (const MountOp& op : plan.ops) {
    if (op.kind == kind && op.target == target) return &op;
  }
  return nullptr;
}

Spec spec_with(std::vector<BindMount> binds) {
  Spec spec;
  spec.filesystem.binds = std::move(binds);
  return spec;
}

}  // namespace

TEST_CASE("a read-only bind is remounted read-only, nosuid and nodev") {
  auto plan = plan_mounts(spec_with({{"/usr", "", false, false}}), "/stage", "/host/work", {});
  REQUIRE(plan.ok());
  const MountOp* usr = find_op(*plan, MountOp::Kind::bind, "/stage/usr");
  REQUIRE(usr != nullptr);
  CHECK(usr->source == "/usr");
  CHECK((usr->flags & MS_RDONLY) != 0);
  CHECK((usr->flags & MS_NOSUID) != 0);
  CHECK((usr->flags & MS_NODEV) != 0);
}

TEST_CASE("a host symlink such as /bin is recreated as a symlink, not bound") {
  auto plan = plan_mounts(spec_with({{"/bin", "", false, false}}), "/stage", "/w", {});
  REQUIRE(plan.ok());
  char target[256] = {};
  if (::readlink("/bin", target, sizeof target - 1) < 0) {
    WARN("skipped: /bin is not a symlink on this host");
    return;
  }
  const MountOp* link = find_op(*plan, MountOp::Kind::symlink, "/stage/bin");
  REQUIRE(link != nullptr);
  CHECK(link->source == target);
  CHECK(find_op(*plan, MountOp::Kind::bind, "/stage/bin") == nullptr);
}

TEST_CASE("a copied bind becomes files written into the root, and room for them") {
  char dir[] = "/tmp/airlock-copy-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string host = dir;
  ::mkdir((host + "/sub").c_str(), 0755);
  { std::ofstream(host + "/driver.py") << "print(1)\n"; }
  { std::ofstream(host + "/sub/tool.sh") << "#!/bin/sh\n"; }
  ::chmod((host + "/sub/tool.sh").c_str(), 0755);
  ::symlink("driver.py", (host + "/link.py").c_str());
  auto plan = plan_mounts(spec_with({{host, "/opt/airlock", false, false, true}}), "/s", "/w", {});
  std::filesystem::remove_all(host);
  REQUIRE(plan.ok());
  CHECK(find_op(*plan, MountOp::Kind::bind, "/s/opt/airlock") == nullptr);
  CHECK(find_op(*plan, MountOp::Kind::make_dir, "/s/opt/airlock/sub") != nullptr);
  const MountOp* driver = find_op(*plan, MountOp::Kind::write_file, "/s/opt/airlock/driver.py");
  REQUIRE(driver != nullptr);
  CHECK(driver->data == "print(1)\n");
  CHECK(driver->mode == 0644);
  const MountOp* tool = find_op(*plan, MountOp::Kind::write_file, "/s/opt/airlock/sub/tool.sh");
  REQUIRE(tool != nullptr);
  CHECK(tool->mode == 0755);
  const MountOp* link = find_op(*plan, MountOp::Kind::symlink, "/s/opt/airlock/link.py");
  REQUIRE(link != nullptr);
  CHECK(link->source == "driver.py");
  // The new root's tmpfs: its usual 1 MiB plus the 19 bytes copied.
  CHECK_THAT(plan->root_options, Catch::StartsWith("size=1048595,"));
}

TEST_CASE("a missing optional bind is skipped and a missing required one is an error") {
  auto optional = plan_mounts(spec_with({{"/no/such/path", "", false, true}}), "/s", "/w", {});
  REQUIRE(optional.ok());
  CHECK(find_op(*optional, MountOp::Kind::bind, "/s/no/such/path") == nullptr);
  auto required = plan_mounts(spec_with({{"/no/such/path", "", false, false}}), "/s", "/w", {});
  REQUIRE_FALSE(required.ok());
  CHECK(required.error().operation == "lstat(\"/no/such/path\")");
  CHECK(required.error().error_number == ENOENT);
}

TEST_CASE("bind paths with '..' or relative paths are refused") {
  CHECK_FALSE(plan_mounts(spec_with({{"/usr/../etc", "", false, false}}), "/s", "/w", {}).ok());
  CHECK_FALSE(plan_mounts(spec_with({{"usr", "", false, false}}), "/s", "/w", {}).ok());
  CHECK_FALSE(plan_mounts(spec_with({{"/usr", "/x/../y", false, false}}), "/s", "/w", {}).ok());
  CHECK(is_clean_absolute_path("/usr/lib"));
  CHECK_FALSE(is_clean_absolute_path("/usr//lib"));
  CHECK_FALSE(is_clean_absolute_path("/usr/"));
}

TEST_CASE("the plan always has a fresh proc, a minimal dev and sized tmpfs for /tmp and /dev/shm") {
  Spec spec;
  spec.limits.tmp_size_bytes = 32 * kMiB;
  spec.limits.shm_size_bytes = 8 * kMiB;
  auto plan = plan_mounts(spec, "/s", "/w", {});
  REQUIRE(plan.ok());
  CHECK(find_op(*plan, MountOp::Kind::proc, "/s/proc") != nullptr);
  const MountOp* tmp = find_op(*plan, MountOp::Kind::tmpfs, "/s/tmp");
  REQUIRE(tmp != nullptr);
  CHECK(tmp->data == "size=33554432,mode=1777");
  const MountOp* shm = find_op(*plan, MountOp::Kind::tmpfs, "/s/dev/shm");
  REQUIRE(shm != nullptr);
  CHECK(shm->data == "size=8388608,mode=1777");
  std::vector<std::string> devices;
  for (const MountOp& op : plan->ops) {
    if (op.kind == MountOp::Kind::bind && op.source.rfind("/dev/", 0) == 0) devices.push_back(op.source);
  }
  CHECK(devices == std::vector<std::string>{"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                            "/dev/urandom"});
}

TEST_CASE("the working dir is the host dir, bound writable at the spec's path") {
  Spec spec;
  spec.filesystem.workdir = "/home/agent";
  auto plan = plan_mounts(spec, "/s", "/run/airlock/x/work-1", {});
  REQUIRE(plan.ok());
  CHECK(plan->workdir == "/home/agent");
  const MountOp* work = find_op(*plan, MountOp::Kind::bind, "/s/home/agent");
  REQUIRE(work != nullptr);
  CHECK(work->source == "/run/airlock/x/work-1");
  CHECK((work->flags & MS_RDONLY) == 0);
  CHECK(find_op(*plan, MountOp::Kind::make_dir, "/s/home") != nullptr);
}

TEST_CASE("identity files name the sandbox user and map localhost to loopback") {
  auto plan = plan_mounts(Spec{}, "/s", "/w", SandboxIdentity{1000, 1000, "sandbox"});
  REQUIRE(plan.ok());
  const MountOp* passwd = find_op(*plan, MountOp::Kind::write_file, "/s/etc/passwd");
  REQUIRE(passwd != nullptr);
  CHECK(passwd->data.rfind("sandbox:x:1000:1000::/work:/bin/sh\n", 0) == 0);
  const MountOp* hosts = find_op(*plan, MountOp::Kind::write_file, "/s/etc/hosts");
  REQUIRE(hosts != nullptr);
  CHECK(hosts->data.find("127.0.0.1 localhost") != std::string::npos);
}

TEST_CASE("a user name goes into passwd only when it cannot break the file's lines") {
  CHECK(valid_user_name("user"));
  CHECK(valid_user_name("build_bot-2"));
  CHECK_FALSE(valid_user_name(""));
  CHECK_FALSE(valid_user_name("-rf"));
  CHECK_FALSE(valid_user_name("root:x:0:0"));
  CHECK_FALSE(valid_user_name("a\nroot"));
  CHECK_FALSE(valid_user_name(std::string(33, 'a')));
  auto plan = plan_mounts(Spec{}, "/s", "/w", SandboxIdentity{1000, 1000, "user"});
  REQUIRE(plan.ok());
  const MountOp* group = find_op(*plan, MountOp::Kind::write_file, "/s/etc/group");
  REQUIRE(group != nullptr);
  CHECK(group->data.rfind("user:x:1000:\n", 0) == 0);
}

TEST_CASE("rlimits turn core dumps off and bound cpu, file size and open files") {
  Limits limits;
  limits.cpu_time = std::chrono::milliseconds(2500);
  limits.file_size_max_bytes = 1 * kMiB;
  limits.max_open_files = 64;
  auto settings = plan_rlimits(limits);
  auto get = [&](int resource) {
    auto it = std::find_if(settings.begin(), settings.end(),
                           [&](const RlimitSetting& s) { return s.resource == resource; });
    REQUIRE(it != settings.end());
    return *it;
  };
  CHECK(get(RLIMIT_CORE).hard == 0);
  CHECK(get(RLIMIT_CPU).soft == 3);  // rounded up to whole seconds
  CHECK(get(RLIMIT_CPU).hard == 4);
  CHECK(get(RLIMIT_FSIZE).soft == 1 * kMiB);
  CHECK(get(RLIMIT_NOFILE).hard == 64);
  CHECK(get(RLIMIT_SIGPENDING).hard == kMaxPendingSignals);
}

TEST_CASE("a failed rlimit names its resource") {
  struct rlimit core {};
  REQUIRE(::getrlimit(RLIMIT_CORE, &core) == 0);
  // The first is what we have already; the second asks for a soft limit above its hard one.
  const RlimitSetting settings[] = {{RLIMIT_CORE, core.rlim_cur, core.rlim_max},
                                    {RLIMIT_FSIZE, 2, 1}};
  errno = 0;
  const RlimitSetting* failed = apply_rlimits(settings, 2);
  REQUIRE(failed == &settings[1]);
  CHECK(errno == EINVAL);
  CHECK(std::string(rlimit_name(failed->resource)) == "RLIMIT_FSIZE");
}

}  // namespace airlock::sandbox
