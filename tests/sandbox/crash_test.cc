// A supervisor killed mid-run takes its sandbox with it, and the next start removes its cgroups.
#include <dirent.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sandbox/cgroup.h"
#include "test_support.h"

namespace airlock::sandbox {
using namespace testing;

namespace {

bool process_named_exists(const std::string& name) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream comm(entry.path() / "comm");
    std::string value;
    if (std::getline(comm, value) && value == name) return true;
  }
  return false;
}

// Polls `condition` for up to 20 s; a bound for a hung kernel, not a timing assertion.
template <typename F>
bool eventually(F condition) {
  for (int i = 0; i < 2000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

std::string memory_base() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, own;
  while (std::getline(self, line)) {
    if (line.find(":memory:") != std::string::npos) own = line.substr(line.find(":memory:") + 8);
  }
  return "/sys/fs/cgroup/memory" + (own == "/" ? std::string() : own) + "/airlock";
}

}  // namespace

TEST_CASE(
    "a supervisor killed mid-run leaves no sandbox process; the next start removes its cgroups",
    "[root]") {
  if (!can_sandbox()) return;
  unsigned char random[3];
  REQUIRE(::getrandom(random, sizeof random, 0) == 3);
  char name[16];
  std::snprintf(name, sizeof name, "crash%02x%02x%02x", random[0], random[1], random[2]);
  int ready[2];
  REQUIRE(::pipe(ready) == 0);

  pid_t supervisor = ::fork();
  if (supervisor == 0) {  // a supervisor of its own, killed below while its run is going on
    auto sandbox = Sandbox::create({});
    if (!sandbox) ::_exit(3);
    struct Started : OutputHandler {
      int fd;
      bool on_output(Stream, std::string_view) override { return true; }
      void on_started() override { (void)::write(fd, "s", 1); }
    } started;
    started.fd = ready[1];
    (*sandbox)->run(probe_spec({kProbe, "named-sleep", name}), started, {});
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  REQUIRE(eventually([&] { return process_named_exists(name); }));
  // The killed supervisor's instance directory: the one named after its pid and start time.
  const std::string prefix = instance_prefix(supervisor, process_start_ticks(supervisor));
  std::string stale;
  for (const auto& entry : std::filesystem::directory_iterator(memory_base())) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) stale = entry.path();
  }
  REQUIRE_FALSE(stale.empty());
  REQUIRE(std::filesystem::exists(stale));

  ::kill(supervisor, SIGKILL);
  int status = 0;
  ::waitpid(supervisor, &status, 0);
  CHECK(eventually([&] { return !process_named_exists(name); }));
  CHECK(std::filesystem::exists(stale));  // nobody has cleaned up yet

  pid_t next = ::fork();  // the next supervisor to start
  if (next == 0) {
    bool created = false;
    {
      auto sandbox = Sandbox::create({});  // destroyed before _exit: it removes its own dirs
      created = sandbox.ok();
    }
    ::_exit(created ? 0 : 1);
  }
  ::waitpid(next, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(std::filesystem::exists(stale));
}

}  // namespace airlock::sandbox
