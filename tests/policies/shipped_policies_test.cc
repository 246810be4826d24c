// The policies shipped in policies/: each loads cleanly, and default matches the sandbox's
// compiled defaults exactly.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>

#include "policies/loader.h"
#include "sandbox/spec.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

std::shared_ptr<const Policy> shipped(const std::string& name) {
  const LoadResult result = load_policy(name, {testing::shipped_dir()});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  return result.policy;
}

const sandbox::BindMount* find_bind(const Policy& policy, const std::string& path) {
  for (const auto& bind : policy.filesystem.binds) {
    if (bind.sandbox_path == path) return &bind;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("every shipped policy loads without error and has a hash") {
  for (const char* name : {"default", "python", "node", "bash", "compile", "minimal"}) {
    INFO(name);
    const auto policy = shipped(name);
    CHECK(policy->name == name);
    CHECK(policy->hash.starts_with("sha256:"));
    CHECK(policy->hash.size() == 7 + 64);
    CHECK(policy->unsafe.empty());  // nothing shipped lifts the floor
    CHECK_FALSE(policy->description.empty());
  }
}

TEST_CASE("the default policy's limits are the sandbox's compiled defaults") {
  const auto policy = shipped("default");
  const sandbox::Limits compiled;
  CHECK(policy->limits.wall_time == compiled.wall_time);
  CHECK(policy->limits.cpu_time == compiled.cpu_time);
  CHECK(policy->limits.memory_max_bytes == compiled.memory_max_bytes);
  CHECK(policy->limits.max_processes == compiled.max_processes);
  CHECK(policy->limits.max_open_files == compiled.max_open_files);
  CHECK(policy->limits.file_size_max_bytes == compiled.file_size_max_bytes);
  CHECK(policy->limits.tmp_size_bytes == compiled.tmp_size_bytes);
  CHECK(policy->limits.shm_size_bytes == compiled.shm_size_bytes);
  CHECK(policy->limits.workdir_size_bytes == compiled.workdir_size_bytes);
  CHECK(policy->limits.cpu_millicores == compiled.cpu_millicores);
  CHECK(policy->output.kept_bytes == 1 * sandbox::kMiB);
  CHECK(policy->output.on_overflow == OverflowAction::truncate);
}

TEST_CASE("the default policy shows runtimes read-only and sets the documented environment") {
  const auto policy = shipped("default");
  for (const char* path : {"/usr", "/bin", "/sbin", "/lib", "/etc/ld.so.cache", "/etc/ssl",
                           "/etc/alternatives", "/etc/nsswitch.conf", "/etc/ld.so.conf.d"}) {
    INFO(path);
    const auto* bind = find_bind(*policy, path);
    REQUIRE(bind != nullptr);
    CHECK_FALSE(bind->writable);
    CHECK_FALSE(bind->optional);
  }
  for (const char* path : {"/lib64", "/etc/ca-certificates", "/etc/localtime",
                           "/etc/java-17-openjdk", "/etc/mime.types"}) {
    INFO(path);
    const auto* bind = find_bind(*policy, path);
    REQUIRE(bind != nullptr);
    CHECK(bind->optional);
  }
  using Env = std::vector<std::pair<std::string, std::string>>;
  CHECK(policy->environment ==
        Env{{"HOME", "/work"}, {"LANG", "C.UTF-8"}, {"PATH", "/usr/local/bin:/usr/bin:/bin"}});
  CHECK(policy->filesystem.workdir == "/work");
}

TEST_CASE("network: none in default denies socket() for every family but AF_UNIX") {
  const auto policy = shipped("default");
  const sandbox::SyscallRule* socket_rule = nullptr;
  for (const auto& rule : policy->syscalls.rules) {
    if (rule.syscall == "socket") socket_rule = &rule;
  }
  REQUIRE(socket_rule != nullptr);
  REQUIRE(socket_rule->conditions.size() == 1);
  CHECK(socket_rule->conditions[0].index == 0);
  CHECK(socket_rule->conditions[0].op == sandbox::ArgCondition::Op::ne);
  CHECK(socket_rule->conditions[0].value == AF_UNIX);
  CHECK(socket_rule->action == sandbox::SyscallAction::errno_code);
  CHECK(socket_rule->errno_value == EPERM);
  CHECK(socket_rule->origin == "policy \"default\" (network: none)");
}

TEST_CASE("runtime policies extend default and loosen only what their runtime needs") {
  const auto base = shipped("default");
  const auto python = shipped("python");
  CHECK(python->extends_chain == std::vector<std::string>{"python", "default"});
  CHECK(python->runtimes == std::vector<std::string>{"python"});
  CHECK(python->limits.memory_max_bytes > base->limits.memory_max_bytes);
  CHECK(python->syscalls.rules.size() == base->syscalls.rules.size());
  const auto compile = shipped("compile");
  CHECK(compile->runtimes == std::vector<std::string>{"c", "cpp"});
  CHECK(compile->limits.max_processes > base->limits.max_processes);
  CHECK(compile->limits.tmp_size_bytes > base->limits.tmp_size_bytes);
}

TEST_CASE("minimal is an allowlist that kills on anything else and shows nothing of the host") {
  const auto policy = shipped("minimal");
  CHECK(policy->syscalls.default_action == sandbox::SyscallAction::kill);
  CHECK(policy->filesystem.binds.empty());
  CHECK(policy->environment.empty());
  CHECK(policy->runtimes.empty());
  bool allows_write = false;
  for (const auto& rule : policy->syscalls.rules) {
    if (rule.syscall == "write") allows_write = rule.action == sandbox::SyscallAction::allow;
    CHECK(rule.syscall != "fork");
    CHECK(rule.syscall != "openat");
  }
  CHECK(allows_write);
}

TEST_CASE("a policy is found by name in the first directory that has it") {
  testing::TempDir first;
  first.write("default.yaml", "description: overriding copy\n");
  const LoadResult result = load_policy("default", {first.path(), testing::shipped_dir()});
  REQUIRE(result.ok());
  CHECK(result.policy->description == "overriding copy");
  CHECK(result.policy->source_path == first.path() + "/default.yaml");
}

TEST_CASE("an unknown policy name is an error with a suggestion") {
  const LoadResult result = load_policy("pyhton", {testing::shipped_dir()});
  CHECK_FALSE(result.ok());
  CHECK(testing::error_text(result) == "pyhton: no policy named 'pyhton' in " +
                                           testing::shipped_dir() + " — did you mean 'python'?\n");
}

}  // namespace airlock::policies

namespace airlock::policies {

TEST_CASE("a path that is missing, a directory, a FIFO or too large is an error about the file") {
  testing::TempDir dir;
  const std::string missing = dir.path() + "/nope.yaml";
  CHECK(testing::error_text(load_policy(missing, {})) ==
        missing + ": cannot read the policy file: open(\"" + missing +
            "\"): ENOENT (No such file or directory)\n");
  CHECK(testing::error_text(load_policy(dir.path() + "/", {})) ==
        dir.path() + "/: cannot read the policy file: \"" + dir.path() +
            "/\" is a directory, not a regular file\n");
  // Opened without waiting for a writer, and refused unread.
  const std::string fifo = dir.path() + "/fifo.yaml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(testing::error_text(load_policy(fifo, {})) ==
        fifo + ": cannot read the policy file: \"" + fifo + "\" is a FIFO, not a regular file\n");
  const std::string big = dir.write("big.yaml", "# " + std::string(1 << 20, 'x') + "\n");
  CHECK(testing::error_text(load_policy(big, {})) ==
        big + ": cannot read the policy file: \"" + big + "\" is larger than 1 MiB\n");
}

}  // namespace airlock::policies
