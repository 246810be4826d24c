// extends: the nearest layer decides each field; lists merge by path and name; a child can
// undo a parent's syscall rule; a broken parent breaks the child.
#include <sys/socket.h>
#include <catch2/catch.hpp>

#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::load_ok;
using testing::TempDir;


const sandbox::SyscallRule* rule_for(const Policy& policy, const std::string& syscall) {
  for (const auto& rule : policy.syscalls.rules) {
    if (rule.syscall == syscall) return &rule;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a child overrides the limits it names and inherits the rest") {
  TempDir dir;
  dir.write("base.yaml", "limits: {memory: 512MiB, processes: 10, wall_time: 20s}\n");
  const auto child =
      load_ok(dir.write("child.yaml", "extends: base\nlimits: {memory: 128MiB}\n"), dir.path());
  CHECK(child->limits.memory_max_bytes == 128 * sandbox::kMiB);
  CHECK(child->limits.max_processes == 10);
  CHECK(child->limits.wall_time == std::chrono::seconds(20));
  CHECK(child->limits.cpu_time == sandbox::Limits{}.cpu_time);  // compiled default
  CHECK(child->extends_chain == std::vector<std::string>{"child", "base"});
}

TEST_CASE("binds and tmpfs merge by path; environment merges by name and ~ removes") {
  TempDir dir;
  dir.write("base.yaml",
            "filesystem:\n  binds: [/usr, /etc/ssl]\n  tmpfs: {/var/cache: 1MiB}\n"
            "environment: {A: one, B: two}\n");
  const auto child = load_ok(
      dir.write("child.yaml",
                "extends: base\nfilesystem:\n  binds: [{path: /etc/ssl, optional: true}, /opt]\n"
                "  tmpfs: {/var/cache: 2MiB}\nenvironment: {B: ~, C: three}\n"),
      dir.path());
  REQUIRE(child->filesystem.binds.size() == 3);
  CHECK(child->filesystem.binds[0].sandbox_path == "/etc/ssl");
  CHECK(child->filesystem.binds[0].optional);
  CHECK(child->filesystem.binds[1].sandbox_path == "/opt");
  CHECK(child->filesystem.binds[2].sandbox_path == "/usr");
  REQUIRE(child->filesystem.tmpfs.size() == 1);
  CHECK(child->filesystem.tmpfs[0].size_bytes == 2 * sandbox::kMiB);
  using Env = std::vector<std::pair<std::string, std::string>>;
  CHECK(child->environment == Env{{"A", "one"}, {"C", "three"}});
}

TEST_CASE("the nearest layer that names a syscall decides it") {
  TempDir dir;
  dir.write("base.yaml", "syscalls:\n  deny: ['@clock', chmod]\n");
  const auto child = load_ok(dir.write("child.yaml",
                                       "extends: base\nsyscalls:\n  allow: [chmod]\n"
                                       "  deny: [{syscall: settimeofday, action: kill}]\n"),
                             dir.path());
  CHECK(rule_for(*child, "chmod") == nullptr);  // allowed, as the default action already does
  const auto* settimeofday = rule_for(*child, "settimeofday");
  REQUIRE(settimeofday != nullptr);
  CHECK(settimeofday->action == sandbox::SyscallAction::kill);
  CHECK(settimeofday->origin == "policy \"child\" (deny: settimeofday)");
  const auto* clock_settime = rule_for(*child, "clock_settime");
  REQUIRE(clock_settime != nullptr);
  CHECK(clock_settime->action == sandbox::SyscallAction::errno_code);
  CHECK(clock_settime->origin == "policy \"base\" (deny: @clock)");
}

TEST_CASE("deny_action applies to the deny entries of its file and of files extending it") {
  TempDir dir;
  dir.write("base.yaml", "syscalls:\n  deny_action: errno(EACCES)\n  deny: [chmod]\n");
  const auto child =
      load_ok(dir.write("child.yaml", "extends: base\nsyscalls:\n  deny: [chown]\n"), dir.path());
  REQUIRE(rule_for(*child, "chmod"));
  CHECK(rule_for(*child, "chmod")->errno_value == EACCES);
  REQUIRE(rule_for(*child, "chown"));
  CHECK(rule_for(*child, "chown")->errno_value == EACCES);
}

TEST_CASE("a socket rule by family turns into one condition per family") {
  TempDir dir;
  const auto policy =
      load_ok(dir.write("p.yaml",
                        "network: loopback\nsyscalls:\n  deny:\n"
                        "    - {syscall: socket, family: [AF_INET6, AF_NETLINK], action: kill}\n"),
              dir.path());
  std::vector<uint64_t> families;
  for (const auto& rule : policy->syscalls.rules) {
    if (rule.syscall != "socket") continue;
    REQUIRE(rule.conditions.size() == 1);
    CHECK(rule.conditions[0].op == sandbox::ArgCondition::Op::masked_eq);
    CHECK(rule.conditions[0].mask == 0xffffffffULL);  // the kernel reads an int
    CHECK(rule.action == sandbox::SyscallAction::kill);
    families.push_back(rule.conditions[0].value);
  }
  CHECK(families == std::vector<uint64_t>{AF_INET6, AF_NETLINK});
}

TEST_CASE("network: loopback adds no socket rule; an unconditional socket deny replaces none's") {
  TempDir dir;
  const auto loopback = load_ok(dir.write("l.yaml", "network: loopback\n"), dir.path());
  CHECK(rule_for(*loopback, "socket") == nullptr);
  const auto denied = load_ok(
      dir.write("d.yaml", "syscalls:\n  deny: [{syscall: socket, action: kill}]\n"), dir.path());
  const auto* rule = rule_for(*denied, "socket");
  REQUIRE(rule != nullptr);
  CHECK(rule->conditions.empty());
  CHECK(rule->action == sandbox::SyscallAction::kill);
}

TEST_CASE("a child of a broken parent is rejected with the parent's errors") {
  TempDir dir;
  dir.write("base.yaml", "limits: {memory: lots}\n");
  const LoadResult result = load_policy(dir.write("child.yaml", "extends: base\n"), {dir.path()});
  CHECK_FALSE(result.ok());
  CHECK(result.policy == nullptr);
  CHECK(testing::error_text(result) ==
        dir.path() +
            "/base.yaml:1:18: memory: invalid size 'lots': expected size with a unit (B, "
            "KiB, MiB, GiB or TiB), e.g. '256MiB'\n");
}

TEST_CASE("parents are found next to the child before the search directories") {
  TempDir near;
  TempDir far;
  near.write("base.yaml", "limits: {processes: 7}\n");
  far.write("base.yaml", "limits: {processes: 9}\n");
  const LoadResult result = load_policy(near.write("c.yaml", "extends: base\n"), {far.path()});
  REQUIRE(result.ok());
  CHECK(result.policy->limits.max_processes == 7);
}

}  // namespace airlock::policies
