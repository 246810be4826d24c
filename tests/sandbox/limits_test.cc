// Limits end misbehaving programs with the right outcome, and the whole tree always ends.
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>

#include "test_support.h"

namespace airlock::sandbox {
using namespace testing;

namespace {

// Host pids whose comm is `name`.
std::vector<int> processes_named(const std::string& name) {
  std::vector<int> pids;
  DIR* proc = ::opendir("/proc");
  while (dirent* entry = ::readdir(proc)) {
    int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream comm(std::string("/proc/") + entry->d_name + "/comm");
    std::string value;
    if (std::getline(comm, value) && value == name) pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

}  // namespace

TEST_CASE("v1: init and program are in the run's cgroup of every controller", "[root]") {
  if (!can_sandbox()) return;
  if (!cgroup_v1()) return;  // v2: CLONE_INTO_CGROUP
  // Counted while the program sleeps, then cancelled: no timing decides what is seen.
  struct Counter : OutputHandler {
    int cancel = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    std::map<std::string, size_t> seen;
    bool on_output(Stream, std::string_view) override { return true; }
    void on_started() override {
      for (const char* controller : {"memory", "pids", "cpu", "cpuacct"}) {
        seen[controller] = processes_in_own_runs_v1(controller);
      }
      uint64_t one = 1;
      (void)::write(cancel, &one, sizeof one);
    }
  } counter;
  REQUIRE(counter.cancel >= 0);
  RunOptions options;
  options.cancel_fd = counter.cancel;
  Spec spec = probe_spec({kProbe, "sleep", "30"});
  spec.limits.wall_time = std::chrono::seconds(60);
  Outcome outcome = shared_sandbox().run(spec, counter, options);
  ::close(counter.cancel);
  CHECK(outcome.status == RunStatus::cancelled);
  // The child joins by itself (Cgroup::self_join_files) before it starts the program, which
  // inherits: both are there by the time the run has started.
  for (const char* controller : {"memory", "pids", "cpu", "cpuacct"}) {
    INFO(controller);
    CHECK(counter.seen[controller] == 2);
  }
}

TEST_CASE("a memory bomb ends as memory_limit", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "memory-bomb"});
  spec.limits.memory_max_bytes = 64 * kMiB;
  Captured captured;
  Outcome outcome = run(spec, captured);
  CHECK(outcome.status == RunStatus::memory_limit);
  CHECK(outcome.reason == "memory limit 64 MiB reached");
  CHECK(outcome.usage.peak_memory_bytes >= 60 * kMiB);
  CHECK(outcome.usage.peak_memory_bytes <= 64 * kMiB);
  CHECK(cli_exit_code(outcome) == 137);
}

TEST_CASE("a busy loop ends as a wall or cpu timeout", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "busy"});
  spec.limits.wall_time = std::chrono::milliseconds(700);
  Captured wall;
  Outcome by_wall = run(spec, wall);
  CHECK(by_wall.status == RunStatus::timeout);
  CHECK(by_wall.timeout == TimeoutKind::wall);
  CHECK(by_wall.usage.wall >= std::chrono::milliseconds(700));

  spec.limits.wall_time = std::chrono::seconds(10);
  spec.limits.cpu_time = std::chrono::milliseconds(300);
  Captured cpu;
  Outcome by_cpu = run(spec, cpu);
  CHECK(by_cpu.status == RunStatus::timeout);
  CHECK(by_cpu.timeout == TimeoutKind::cpu);
  CHECK(by_cpu.reason == "cpu time limit 300 ms reached");
}

TEST_CASE("a sleeping program ends at the wall time limit", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "sleep", "60"});
  spec.limits.wall_time = std::chrono::milliseconds(300);
  Captured captured;
  Outcome outcome = run(spec, captured);
  CHECK(outcome.status == RunStatus::timeout);
  CHECK(outcome.timeout == TimeoutKind::wall);
  CHECK(cli_exit_code(outcome) == 124);  // as timeout(1), not the 137 of the SIGKILL it took
}

TEST_CASE("a fork bomb is bounded by the process limit", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "fork-bomb"});
  spec.limits.max_processes = 16;
  // The bomb runs until the wall limit; long enough for the sandbox's setup to finish first on
  // an emulated CPU (the cgroup-v2 VM), where 800 ms ran out before the first fork.
  spec.limits.wall_time = std::chrono::seconds(3);
  Captured captured;
  Outcome outcome = run(spec, captured);
  CHECK(outcome.status == RunStatus::process_limit);
  CHECK(outcome.process_limit_hit);
  CHECK_THAT(outcome.reason, Catch::StartsWith("process limit 16 reached"));
}

TEST_CASE("a double-forked setsid daemon is gone after the run", "[root]") {
  if (!can_sandbox()) return;
  unsigned char random[4];
  REQUIRE(::getrandom(random, sizeof random, 0) == 4);
  char name[16];
  std::snprintf(name, sizeof name, "dmn%02x%02x%02x%02x", random[0], random[1], random[2], random[3]);
  Captured captured;
  Outcome outcome = run(probe_spec({kProbe, "daemon", name}), captured);
  CHECK(outcome.status == RunStatus::ok);
  CHECK(captured.out == "parent done\n");
  CHECK(processes_named(name).empty());
}

TEST_CASE("an output flood is streamed through and cannot outlive its limits", "[root]") {
  if (!can_sandbox()) return;
  struct Counting : OutputHandler {
    uint64_t bytes = 0;
    bool on_output(Stream, std::string_view data) override {
      bytes += data.size();
      return bytes < 8 * kMiB;  // the caller's cap: stop the run
    }
  } counting;
  Outcome outcome = shared_sandbox().run(probe_spec({kProbe, "flood"}), counting, {});
  CHECK(outcome.status == RunStatus::output_limit);
  CHECK(counting.bytes >= 8 * kMiB);
  CHECK(counting.bytes < 9 * kMiB);
}

TEST_CASE("fd exhaustion ends in EMFILE at the open-files limit", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "open-many"});
  spec.limits.max_open_files = 64;
  Captured captured;
  REQUIRE(run(spec, captured).status == RunStatus::ok);
  CHECK(captured.out == "EMFILE after 61\n");  // 0, 1, 2 are open already
}

TEST_CASE("/tmp is capped at its size", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = probe_spec({kProbe, "write-big", "16"});
  spec.limits.tmp_size_bytes = 8 * kMiB;
  Captured captured;
  run(spec, captured);
  CHECK(captured.out == "ENOSPC\n");
}

TEST_CASE("a run can be cancelled from another thread", "[root]") {
  if (!can_sandbox()) return;
  int cancel = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  REQUIRE(cancel >= 0);
  struct Canceller : OutputHandler {
    int fd;
    bool on_output(Stream, std::string_view) override { return true; }
    void on_started() override {
      uint64_t one = 1;
      (void)::write(fd, &one, sizeof one);
    }
  } canceller;
  canceller.fd = cancel;
  RunOptions options;
  options.cancel_fd = cancel;
  Outcome outcome = shared_sandbox().run(probe_spec({kProbe, "sleep", "30"}), canceller, options);
  ::close(cancel);
  CHECK(outcome.status == RunStatus::cancelled);
  CHECK(outcome.usage.wall < std::chrono::seconds(30));
}

}  // namespace airlock::sandbox
