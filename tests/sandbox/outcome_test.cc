// From what the monitor saw to an outcome and `airlock run`'s exit code: plain data, no sandbox.
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include <catch2/catch.hpp>

#include "sandbox/classify.h"

namespace airlock::sandbox {
namespace {

// What the monitor saw of a tree it killed for `reason` (init ends by SIGKILL, no report).
Outcome killed_for(KilledFor reason, CgroupStats stats = {}) {
  MonitorResult seen;
  seen.killed_for = reason;
  seen.init_status = SIGKILL;
  if (reason == KilledFor::violation) {
    seen.violation = SyscallEvent{"bpf", 321, 0, {}, "kill", "floor (@bpf)", "bpf(0, ...)"};
  }
  return classify(seen, stats, Limits{});
}

Outcome exited(int status, CgroupStats stats = {}) {
  MonitorResult seen;
  seen.program_status = status;
  return classify(seen, stats, Limits{});
}

}  // namespace

TEST_CASE("a seccomp kill is reported as SIGSYS, as the kernel reports its own") {
  Outcome outcome = killed_for(KilledFor::violation);
  CHECK(outcome.status == RunStatus::violation);
  CHECK(outcome.signal == SIGSYS);
  CHECK(outcome.exit_code == -1);
  CHECK(cli_exit_code(outcome) == 128 + SIGSYS);
  CHECK(outcome.reason == "bpf(0, ...) denied by floor (@bpf)");
}

TEST_CASE("each way a run ends has its own exit code") {
  CHECK(cli_exit_code(exited(W_EXITCODE(0, 0))) == 0);
  CHECK(cli_exit_code(exited(W_EXITCODE(3, 0))) == 3);
  CHECK(cli_exit_code(exited(SIGSEGV)) == 128 + SIGSEGV);
  CHECK(cli_exit_code(killed_for(KilledFor::wall_time)) == 124);
  CHECK(cli_exit_code(killed_for(KilledFor::cpu_time)) == 124);
  CHECK(cli_exit_code(exited(SIGXCPU)) == 124);  // RLIMIT_CPU got there first
  CHECK(cli_exit_code(killed_for(KilledFor::output)) == 153);
  CHECK(cli_exit_code(killed_for(KilledFor::cancel)) == 130);
  CgroupStats oom;
  oom.oom_kills = 1;
  Outcome memory = exited(SIGKILL, oom);
  CHECK(memory.status == RunStatus::memory_limit);
  CHECK(cli_exit_code(memory) == 137);
  // A child was OOM-killed and the program gave up with its own code: still the memory limit.
  CHECK(cli_exit_code(exited(W_EXITCODE(1, 0), oom)) == 137);
  CgroupStats forks;
  forks.pids_max_hits = 5;
  Outcome gave_up = exited(W_EXITCODE(1, 0), forks);
  CHECK(gave_up.status == RunStatus::process_limit);
  CHECK(cli_exit_code(gave_up) == 1);
  Outcome bomb = killed_for(KilledFor::wall_time, forks);
  CHECK(bomb.status == RunStatus::process_limit);
  CHECK(cli_exit_code(bomb) == 124);
  Outcome setup;
  setup.status = RunStatus::setup_error;
  CHECK(cli_exit_code(setup) == 125);
}

TEST_CASE("a setup failure keeps its operation and errno") {
  MonitorResult seen;
  seen.setup_failure = SetupError{"mount(\"/usr\")", EPERM};
  seen.blocked.push_back(SyscallEvent{"socket", 41, 0, {}, "errno(EPERM)", "policy", "socket()"});
  CgroupStats stats;
  stats.peak_memory_bytes = 4096;
  Outcome outcome = classify(seen, stats, Limits{});
  CHECK(outcome.status == RunStatus::setup_error);
  REQUIRE(outcome.setup_error);
  CHECK(outcome.setup_error->operation == "mount(\"/usr\")");
  CHECK(outcome.setup_error->error_number == EPERM);
  CHECK(outcome.reason == "sandbox setup failed: mount(\"/usr\"): EPERM (Operation not permitted)");
  CHECK(outcome.usage.peak_memory_bytes == 4096);
  CHECK(outcome.blocked.size() == 1);
  CHECK(cli_exit_code(outcome) == 125);

  // Built directly, with the part of airlock that failed in the reason.
  Outcome session = setup_failure(SetupError{"the session was closed", 0}, "session setup");
  CHECK(session.status == RunStatus::setup_error);
  REQUIRE(session.setup_error);
  CHECK(session.setup_error->error_number == 0);
  CHECK(session.reason == "session setup failed: the session was closed");
}

}  // namespace airlock::sandbox
