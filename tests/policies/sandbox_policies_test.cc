// Policies enforced by the real sandbox: each syscall group blocks its members in a sandboxed
// program, network: none refuses sockets with a named origin, and every shipped policy runs its
// runtime's hello world (python also a realistic program). Needs root to create namespaces and
// cgroups; skipped with a reason otherwise.
#include <seccomp.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>

#include "policies/loader.h"
#include "policies/syscall_groups.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_floor.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

struct Captured : sandbox::OutputHandler {
  std::string out;
  std::string err;
  bool on_output(sandbox::Stream stream, std::string_view data) override {
    (stream == sandbox::Stream::stdout_stream ? out : err).append(data);
    return out.size() + err.size() < (1 << 20);
  }
};

struct Run {
  sandbox::Outcome outcome;
  std::string out;
  std::string err;
};

sandbox::Sandbox* shared_sandbox() {
  static std::unique_ptr<sandbox::Sandbox> instance = [] {
    sandbox::SandboxConfig config;
    config.state_dir = "/run/airlock-policies-test";  // apart from a service on the same host
    auto created = sandbox::Sandbox::create(config);
    if (!created) FAIL("sandbox setup: " << created.error().message());
    return std::move(created.value());
  }();
  return instance.get();
}

// The same mapping the runner makes from a policy to the sandbox's spec.
Run run_under(const Policy& policy, std::vector<std::string> argv,
              const std::string& host_workdir = "") {
  sandbox::Spec spec;
  spec.argv = std::move(argv);
  for (const auto& [name, value] : policy.environment) spec.env.push_back(name + "=" + value);
  spec.limits = policy.limits;
  spec.filesystem = policy.filesystem;
  spec.seccomp = policy.syscalls;
  spec.host_workdir = host_workdir;
  Captured output;
  Run run;
  run.outcome = shared_sandbox()->run(spec, output, {});
  run.out = output.out;
  run.err = output.err;
  INFO("stderr: " << run.err << "\nreason: " << run.outcome.reason);
  REQUIRE(run.outcome.status != sandbox::RunStatus::setup_error);
  return run;
}

std::shared_ptr<const Policy> load(const std::string& name_or_path) {
  const LoadResult result = load_policy(name_or_path, {testing::shipped_dir()});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  return result.policy;
}

bool have_root() {
  if (::geteuid() == 0) return true;
  WARN("skipped: creating namespaces and cgroups for a sandbox needs root");
  return false;
}

const sandbox::SyscallRule* floor_rule_for(const std::string& syscall) {
  for (const auto& floor : sandbox::floor_rules()) {
    if (floor.rule.syscall == syscall && floor.rule.conditions.empty()) return &floor.rule;
  }
  return nullptr;
}

// Python that calls each syscall by number with zero arguments and prints "name errno".
std::string syscall_program(const std::vector<std::string>& names) {
  std::string code =
      "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
      "libc.syscall.restype = ctypes.c_long\n";
  for (const auto& name : names) {
    code += "ctypes.set_errno(0)\nr = libc.syscall(" +
            std::to_string(seccomp_syscall_resolve_name(name.c_str())) +
            ", 0, 0, 0, 0, 0, 0)\nprint('" + name + "', ctypes.get_errno() if r == -1 else 0, " +
            "flush=True)\n";
  }
  return code;
}

constexpr int kMarkerErrno = ENOTRECOVERABLE;  // nothing in the kernel answers these calls with it

}  // namespace

TEST_CASE("each syscall group blocks its members in a sandboxed program", "[sandbox]") {
  if (!have_root()) return;
  testing::TempDir dir;
  for (const auto& group : syscall_groups()) {
    DYNAMIC_SECTION(group.name) {
      const auto policy =
          load(dir.write("deny.yaml",
                         "extends: default\nnetwork: loopback\nlimits: {wall_time: 5s}\nsyscalls:\n"
                         "  deny_action: errno(ENOTRECOVERABLE)\n  deny: ['" +
                             group.name + "']\n"));
      std::vector<std::string> by_policy;
      const auto members = expand_group(group.name);
      REQUIRE(members);
      for (const auto& member : *members) {
        if (seccomp_syscall_resolve_name(member.c_str()) < 0) continue;  // not on this arch
        const sandbox::SyscallRule* floor = floor_rule_for(member);
        if (floor == nullptr) {
          by_policy.push_back(member);
        } else if (floor->action == sandbox::SyscallAction::kill) {
          // The floor ends the run at the call; the outcome names the call and the floor.
          const Run run = run_under(*policy, {"/usr/bin/python3", "-c", syscall_program({member})});
          INFO(member << ": " << run.outcome.reason);
          CHECK(run.outcome.status == sandbox::RunStatus::violation);
          REQUIRE(run.outcome.violation);
          CHECK(run.outcome.violation->syscall == member);
          CHECK(run.outcome.violation->origin == floor->origin);
        } else {
          const Run run = run_under(*policy, {"/usr/bin/python3", "-c", syscall_program({member})});
          CHECK(run.out == member + " " + std::to_string(floor->errno_value) + "\n");
        }
      }
      if (by_policy.empty()) continue;
      const Run run = run_under(*policy, {"/usr/bin/python3", "-c", syscall_program(by_policy)});
      INFO(run.err);
      std::string expected;
      for (const auto& member : by_policy) {
        expected += member + " " + std::to_string(kMarkerErrno) + "\n";
      }
      INFO("signal " << run.outcome.signal << ", reason: " << run.outcome.reason);
      CHECK(run.out == expected);
      CHECK(run.outcome.status == sandbox::RunStatus::ok);
    }
  }
}

TEST_CASE("network: none refuses socket(AF_INET) and names the rule", "[sandbox]") {
  if (!have_root()) return;
  const auto policy = load("default");
  const Run run =
      run_under(*policy, {"/usr/bin/python3", "-c",
                          "import socket\n"
                          "socket.socket(socket.AF_UNIX).close()\nprint('unix ok', flush=True)\n"
                          "try:\n  socket.socket(socket.AF_INET)\nexcept PermissionError:\n"
                          "  print('inet refused')\n"});
  CHECK(run.out == "unix ok\ninet refused\n");
  bool named = false;
  for (const auto& event : run.outcome.blocked) {
    if (event.syscall == "socket" && event.origin == "policy \"default\" (network: none)" &&
        event.detail.find("AF_INET") != std::string::npos) {
      named = true;
    }
  }
  CHECK(named);
}

TEST_CASE("every shipped policy runs its runtime's hello world", "[sandbox]") {
  if (!have_root()) return;
  const std::map<std::string, std::vector<std::string>> programs{
      {"default", {"/bin/sh", "-c", "echo hello"}},
      {"python", {"/usr/bin/python3", "-c", "print('hello')"}},
      {"node", {"/usr/bin/node", "-e", "console.log('hello')"}},
      {"bash", {"/bin/bash", "-c", "echo hello | cat"}},
      {"compile",
       {"/bin/sh", "-c",
        "printf '#include <stdio.h>\\nint main(void){puts(\"hello\");return 0;}\\n' > /tmp/h.c"
        " && gcc -O1 -o /tmp/h /tmp/h.c && /tmp/h"}},
  };
  for (const auto& [name, argv] : programs) {
    DYNAMIC_SECTION(name) {
      const Run run = run_under(*load(name), argv);
      INFO(run.err << run.outcome.reason);
      CHECK(run.outcome.status == sandbox::RunStatus::ok);
      CHECK(run.out == "hello\n");
    }
  }
}

TEST_CASE("the minimal policy runs a static binary and kills it on anything else", "[sandbox]") {
  if (!have_root()) return;
  testing::TempDir dir;
  dir.write("hello.c",
            "#include <stdio.h>\n#include <unistd.h>\n"
            "int main(int argc, char** argv) {\n"
            "  (void)argv;\n"
            "  if (argc > 1) fork();\n"
            "  puts(\"hello\");\n  return 0;\n}\n");
  const auto policy = load("minimal");
  auto workspace = shared_sandbox()->create_workspace(policy->limits.workdir_size_bytes);
  REQUIRE(workspace.ok());
  const std::string workdir = (*workspace)->path();
  const std::string binary = workdir + "/hello";
  REQUIRE(std::system(("gcc -static -O1 -o " + binary + " " + dir.path() + "/hello.c").c_str()) ==
          0);
  REQUIRE((*workspace)->give_to_sandbox(binary).ok());
  const Run hello = run_under(*policy, {policy->filesystem.workdir + "/hello"}, workdir);
  INFO(hello.outcome.reason);
  CHECK(hello.outcome.status == sandbox::RunStatus::ok);
  CHECK(hello.out == "hello\n");
  const Run forking = run_under(*policy, {policy->filesystem.workdir + "/hello", "fork"}, workdir);
  CHECK(forking.outcome.status == sandbox::RunStatus::violation);
  REQUIRE(forking.outcome.violation);
  CHECK(forking.outcome.violation->origin == "policy \"minimal\" (default_action: kill)");
}

TEST_CASE("python runs json, sqlite3, threads and multiprocessing under its policy", "[sandbox]") {
  if (!have_root()) return;
  const Run run = run_under(
      *load("python"),
      {"/usr/bin/python3", "-c",
       "import json, sqlite3, threading, multiprocessing\n"
       "db = sqlite3.connect(':memory:')\n"
       "db.execute('create table t (x)')\n"
       "db.executemany('insert into t values (?)', [(i,) for i in range(100)])\n"
       "total = db.execute('select sum(x) from t').fetchone()[0]\n"
       "results = []\n"
       "threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(8)]\n"
       "[t.start() for t in threads]\n[t.join() for t in threads]\n"
       "def square(x):\n  return x * x\n"
       "if __name__ == '__main__':\n"
       "  with multiprocessing.Pool(2) as pool:\n"
       "    squares = pool.map(square, range(10))\n"
       "  print(json.dumps({'sum': total, 'threads': sorted(results), 'pool': squares}))\n"});
  INFO(run.err << run.outcome.reason);
  CHECK(run.outcome.status == sandbox::RunStatus::ok);
  CHECK(run.out ==
        "{\"sum\": 4950, \"threads\": [0, 1, 4, 9, 16, 25, 36, 49], \"pool\": [0, 1, 4, 9, 16, "
        "25, 36, 49, 64, 81]}\n");
}

}  // namespace airlock::policies
