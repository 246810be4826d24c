// `policy diff` wording: what a change loosens, tightens or merely changes.
#include "policies/diff.h"

#include <catch2/catch.hpp>

#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::TempDir;

std::vector<std::string> diff_text(const std::string& before, const std::string& after) {
  TempDir dir;
  const LoadResult a = load_policy(dir.write("a.yaml", before), {});
  const LoadResult b = load_policy(dir.write("b.yaml", after), {});
  INFO(testing::error_text(a) << testing::error_text(b));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<std::string> lines;
  for (const auto& change : diff_policies(*a.policy, *b.policy)) lines.push_back(change.text());
  return lines;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("raising a limit loosens, lowering it tightens") {
  CHECK(diff_text("limits: {memory: 256MiB, wall_time: 10s}\n",
                  "limits: {memory: 1GiB, wall_time: 5s}\n") ==
        Lines{"wall time limit lowered from 10 s to 5 s (tightens)",
              "memory limit raised from 256 MiB to 1 GiB (loosens)"});
}

TEST_CASE("output overflow, runtimes and network changes are named") {
  CHECK(diff_text("runtimes: [python]\n",
                  "runtimes: [node]\nnetwork: loopback\nlimits: {output_overflow: kill}\n") ==
        Lines{"output overflow now kills the run (was truncate) (tightens)",
              "runtime 'node' added (loosens)", "runtime 'python' removed (tightens)",
              "network changed from none to loopback (loosens)"});
}

TEST_CASE("filesystem changes say which path and how") {
  CHECK(diff_text("filesystem: {binds: [/usr, /etc/ssl], tmpfs: {/cache: 1MiB}}\n",
                  "filesystem: {binds: [{path: /usr, writable: true}, /opt], "
                  "tmpfs: {/cache: 2MiB}}\n") ==
        Lines{"bind /opt added, read-only (loosens)", "bind /usr now writable (loosens)",
              "bind /etc/ssl removed (tightens)",
              "tmpfs /cache size raised from 1 MiB to 2 MiB (loosens)"});
}

TEST_CASE("syscall changes compare what each syscall ends up with") {
  CHECK(diff_text("syscalls: {deny: [chmod, chown]}\n",
                  "syscalls: {deny: [{syscall: chmod, action: kill}], log: [mkdir]}\n") ==
        Lines{"syscall chmod now kill (was errno(EPERM)) (tightens)",
              "syscall chown now allow by the default action (was errno(EPERM)) (loosens)",
              "syscall mkdir now log (was allow) (tightens)"});
}

TEST_CASE("changing the default action and lifting the floor are flagged") {
  CHECK(diff_text("syscalls: {default_action: kill, allow: [read]}\n",
                  "syscalls: {default_action: allow}\n"
                  "unsafe: [{syscall: ptrace, justification: gdb lab}]\n") ==
        Lines{"default syscall action changed from kill to allow (loosens)",
              "mandatory floor lifted for ptrace (unsafe: gdb lab); ptrace now allow (loosens)"});
}

TEST_CASE("environment changes are reported as changes") {
  CHECK(diff_text("environment: {A: x, B: y}\n", "environment: {A: z, C: w}\n") ==
        Lines{"environment variable A changed from \"x\" to \"z\" (changes)",
              "environment variable C added: \"w\" (changes)",
              "environment variable B removed (changes)"});
}

TEST_CASE("two policies with the same meaning have no differences") {
  CHECK(diff_text("limits: {memory: 1GiB}\n# comment\n", "limits:\n  memory: 1024MiB\n").empty());
}

}  // namespace airlock::policies
