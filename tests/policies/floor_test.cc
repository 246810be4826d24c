// The mandatory floor stays under every policy: only a justified `unsafe` entry lifts a part of it,
// and the lifted syscalls are named for the sandbox and for reviewers.
#include <catch2/catch.hpp>

#include "policies/kernel_names.h"
#include "policies/loader.h"
#include "policies/render.h"
#include "sandbox/seccomp_floor.h"
#include "test_support.h"

namespace airlock::policies {

using testing::TempDir;

TEST_CASE("no policy rule lets a floor syscall through without unsafe") {
  // Every syscall the floor blocks outright, in every way a policy could let it through.
  TempDir dir;
  for (const auto& floor : sandbox::floor_rules()) {
    if (!floor.rule.conditions.empty()) continue;
    for (const std::string list : {"allow", "log"}) {
      const std::string syscall = floor.rule.syscall;
      INFO(list << " " << syscall);
      const LoadResult result =
          load_policy(dir.write("p.yaml", "syscalls:\n  default_action: kill\n  " + list + ": [" +
                                              syscall + "]\n"),
                      {});
      CHECK_FALSE(result.ok());
      CHECK(testing::error_text(result) ==
            dir.path() + "/p.yaml:3:" + std::to_string(list.size() + 6) + ": '" + syscall +
                "' is part of the mandatory floor (" + floor.rule.origin +
                "); letting it through needs an unsafe entry with a justification\n");
    }
  }
}

TEST_CASE("a justified unsafe entry lifts one floor syscall and is listed for review") {
  TempDir dir;
  const LoadResult result = load_policy(
      dir.write("debugger.yaml",
                "syscalls:\n  allow: [ptrace]\nunsafe:\n  - syscall: ptrace\n"
                "    justification: the debugging course runs gdb on its own programs\n"),
      {});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  CHECK(result.policy->syscalls.floor_exemptions == std::vector<std::string>{"ptrace"});
  REQUIRE(result.policy->unsafe.size() == 1);
  CHECK(render_unsafe(*result.policy) ==
        "UNSAFE policy \"debugger\": syscall ptrace — the debugging course runs gdb on its own "
        "programs\n");
}

TEST_CASE("an unsafe entry is inherited by policies that extend it") {
  TempDir dir;
  dir.write("base.yaml", "unsafe:\n  - {syscall: bpf, justification: packet filter lab}\n");
  const LoadResult result =
      load_policy(dir.write("child.yaml", "extends: base\nsyscalls:\n  allow: [bpf]\n"), {});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  CHECK(result.policy->syscalls.floor_exemptions == std::vector<std::string>{"bpf"});
}

TEST_CASE("allowing a syscall the floor only restricts by argument keeps the floor in place") {
  // clone with namespace flags and ioctl(TIOCSTI) stay refused by the floor; the rest may pass.
  TempDir dir;
  const LoadResult result = load_policy(
      dir.write("p.yaml", "syscalls:\n  default_action: kill\n  allow: [clone, ioctl, read]\n"),
      {});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  CHECK(result.policy->syscalls.floor_exemptions.empty());
}

TEST_CASE("a policy rule weaker than the floor's answer is left out, a stricter one kept") {
  TempDir dir;
  const LoadResult result = load_policy(
      dir.write("p.yaml", "syscalls:\n  deny: [mount, '@io-uring']\n  log: [chmod]\n"), {});
  REQUIRE(result.ok());
  std::vector<std::string> ruled;
  for (const auto& rule : result.policy->syscalls.rules) ruled.push_back(rule.syscall);
  // mount: the floor kills, EPERM could never apply. io_uring: the floor answers ENOSYS.
  CHECK(ruled == std::vector<std::string>{"chmod", "socket"});
}

}  // namespace airlock::policies

namespace airlock::policies {

TEST_CASE("a syscall this architecture does not have makes no rule") {
  testing::TempDir dir;
  // pciconfig_read exists on some architectures, not on x86_64; libseccomp cannot filter it here.
  const LoadResult result = load_policy(
      dir.write("p.yaml", "network: loopback\nsyscalls:\n  deny: [pciconfig_read]\n"), {});
  REQUIRE(result.ok());
#if defined(__x86_64__)
  CHECK(result.policy->syscalls.rules.empty());
#endif
}

TEST_CASE("every rule of every shipped policy names a syscall of this architecture") {
  for (const char* name : {"default", "python", "node", "bash", "compile", "minimal"}) {
    const LoadResult result = load_policy(name, {testing::shipped_dir()});
    REQUIRE(result.ok());
    for (const auto& rule : result.policy->syscalls.rules) {
      INFO(name << ": " << rule.syscall);
      CHECK(is_native_syscall(rule.syscall));
    }
  }
}

}  // namespace airlock::policies
