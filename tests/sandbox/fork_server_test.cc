// Fork servers: sandboxes forked from a zygote are sandboxes of their own (namespaces, cgroup,
// seccomp, file system), as isolated from each other as cold ones.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "sandbox/fs_ids.h"
#include "sandbox/rlimits.h"
#include "test_support.h"

namespace airlock::sandbox {
using namespace testing;

namespace {

Spec zygote_spec() {
  Spec spec = probe_spec({"/usr/bin/python3", "-u", "/opt/airlock/python_driver.py"});
  // Copied in, as the runner does (no host path in mountinfo).
  spec.filesystem.binds.push_back({DRIVERS_DIR, "/opt/airlock", false, false, true});
  spec.filesystem.binds.push_back({FORK_LIBRARY, "/opt/airlock-lib/libairlock_fork.so", false, false, true});
  spec.env.push_back("AIRLOCK_DRIVER_MODE=zygote");
  spec.env.push_back("AIRLOCK_FORK_LIBRARY=/opt/airlock-lib/libairlock_fork.so");
  spec.fork_server = true;
  // Above the children's: each child keeps its control socket at their limit (fork_child.h).
  spec.limits.max_open_files += 16;
  spec.limits.wall_time = std::chrono::seconds(60);
  spec.limits.cpu_time = std::chrono::seconds(60);
  return spec;
}

// One frame of the driver's protocol: "MARKER CODE_BYTES STDIN_BYTES\n" then the code.
std::string frame(const std::string& code) {
  return "M " + std::to_string(code.size()) + " 0\n" + code;
}

Spec child_spec() {
  Spec spec = zygote_spec();
  spec.fork_server = false;
  spec.control_channel = true;
  spec.limits.max_open_files -= 16;
  spec.limits.wall_time = std::chrono::seconds(20);
  return spec;
}

// The driver's output; waits for the record that ends an execution and stdout's marker.
struct Driver : OutputHandler {
  std::mutex mutex;
  std::condition_variable changed;
  std::string out, err, control;
  bool on_output(Stream stream, std::string_view data) override {
    {
      std::lock_guard lock(mutex);
      (stream == Stream::control_stream ? control
       : stream == Stream::stdout_stream ? out
                                          : err)
          .append(data);
    }
    changed.notify_all();
    return true;
  }
  // Sends code as one frame and returns its stdout once the driver has reported its end.
  std::string execute(LiveSandbox& live, const std::string& code) {
    {
      std::lock_guard lock(mutex);
      out.clear();
      control.clear();
    }
    REQUIRE(live.write_stdin(frame(code)));
    std::unique_lock lock(mutex);
    // The end record and stdout's marker come on two pipes, in either order.
    bool ended = changed.wait_for(lock, std::chrono::seconds(20), [&] {
      return control.find("M end") != std::string::npos && out.find('M') != std::string::npos;
    });
    INFO("stderr: " << err << "\ncontrol: " << control);
    REQUIRE(ended);
    return out.substr(0, out.find('M'));
  }
};

std::unique_ptr<ForkServer> start_server() {
  auto server = shared_sandbox().start_fork_server(zygote_spec());
  if (!server) FAIL("start_fork_server: " << server.error().message());
  return std::move(server.value());
}

}  // namespace

TEST_CASE("a forked sandbox is a sandbox of its own, and sees nothing of the one before", "[root]") {
  if (!can_sandbox()) return;
  auto server = start_server();
  const char* probe = R"py(
import os, socket
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen = [p for p in ("/tmp/left", "/dev/shm/left", "/dev/left", "left", "/proc/2") if os.path.exists(p)]
writable = [p for p in ("/", "/dev", "/etc", "/usr", "/opt/airlock") if os.access(p, os.W_OK)]
print(os.getpid(), os.getuid(), caps, socket.gethostname(), pids, seen, writable, os.getcwd(),
      os.environ.get("LEFT"), sorted(os.listdir(".")))
)py";
  const char* leave_traces = R"py(
import os, subprocess
for path in ("/tmp/left", "/dev/shm/left", "left"):
    open(path, "w").write("x")
try:
    open("/dev/left", "w").write("x")
except OSError:
    pass
os.environ["LEFT"] = "1"
subprocess.Popen(["sleep", "60"], start_new_session=True)
)py";
  for (int round = 0; round < 2; ++round) {
    Driver driver;
    auto forked = shared_sandbox().fork(*server, child_spec(), driver);
    REQUIRE(forked.ok());
    REQUIRE(forked->workspace != nullptr);
    {
      ScopedFsIds as_owner(forked->workspace->owner_uid(), forked->workspace->owner_gid());
      std::ofstream(forked->workspace->path() + "/input.txt") << "in";
    }
    // pid 1 of its own namespace, uid 1000, no capabilities, loopback only; nothing left over.
    CHECK(driver.execute(*forked->live, probe) ==
          "1 1000 0000000000000000 airlock [1] [] [] /work None ['input.txt']\n");
    driver.execute(*forked->live, leave_traces);
    forked->live->kill();
    forked->live->wait();
    // The working directory outlives the sandbox, for the runner to collect results.
    struct stat st {};
    CHECK(::stat((forked->workspace->path() + "/left").c_str(), &st) == 0);
  }
  CHECK(server->alive());
}

TEST_CASE("a forked sandbox hides host state in /proc and has clocks of its own, as a cold one",
          "[root]") {
  if (!can_sandbox()) return;
  auto server = start_server();
  // Long enough for the zygote's clocks to have moved on from zero: the child's must start again.
  ::usleep(1'500'000);
  const std::string probe =
      std::string("host_paths = ('") + DRIVERS_DIR + "', '" + FORK_LIBRARY + "')\n" + R"py(
import os, resource
masked = [p for p in ("/proc/kallsyms", "/proc/timer_list", "/proc/modules", "/proc/interrupts")
          if os.path.exists(p) and open(p, "rb").read()]
mounts = open("/proc/self/mountinfo").read()
uptime = float(open("/proc/uptime").read().split()[0])
print(open("/proc/1/cmdline").read().split("\0"), masked, " /proc/sys ro," in mounts, uptime < 1,
      [p for p in host_paths if p in mounts], "bash_driver.sh" in os.listdir("/opt/airlock"))
print(open("/proc/sys/user/max_inotify_instances").read().strip(),
      resource.getrlimit(resource.RLIMIT_SIGPENDING)[0])
)py";
  Driver driver;
  auto forked = shared_sandbox().fork(*server, child_spec(), driver);
  REQUIRE(forked.ok());
  // pid 1 is the program itself here: the interpreter, named by its sandbox paths.
  const std::string seen = driver.execute(*forked->live, probe);
  INFO(driver.err);
  // The drivers and the fork library are there, copied: no mount names their host paths.
  CHECK(seen ==
        "['/usr/bin/python3', '-u', '/opt/airlock/python_driver.py', ''] [] True True "
        "[] True\n" +
            std::to_string(kMaxInotifyInstances) + " " + std::to_string(kMaxPendingSignals) + "\n");
  forked->live->kill();
  forked->live->wait();
}

TEST_CASE("a forked sandbox runs under its own seccomp policy and cgroup limits", "[root]") {
  if (!can_sandbox()) return;
  auto server = start_server();
  SECTION("a call its policy kills for ends it as a violation naming the rule") {
    Spec spec = child_spec();
    spec.seccomp.rules.push_back({"uname", {}, SyscallAction::kill, 0, "test rule"});
    Driver driver;
    auto forked = shared_sandbox().fork(*server, spec, driver);
    REQUIRE(forked.ok());
    const std::string code = "import os; os.uname()";
    REQUIRE(forked->live->write_stdin(frame(code)));
    const Outcome& outcome = forked->live->wait();
    CHECK(outcome.status == RunStatus::violation);
    CHECK_THAT(outcome.reason, Catch::Contains("uname"));
  }
  SECTION("on v1 its init and program are in its run's cgroup of every controller") {
    if (!cgroup_v1()) return;  // v2: attached by the supervisor, unchanged
    std::map<std::string, size_t> before;
    for (const char* controller : {"memory", "pids", "cpu", "cpuacct"}) {
      before[controller] = processes_in_own_runs_v1(controller);
    }
    Driver driver;
    auto forked = shared_sandbox().fork(*server, child_spec(), driver);
    REQUIRE(forked.ok());
    // A joined its run's cgroup before its hello (Cgroup::self_join_files); B is A's fork.
    for (const char* controller : {"memory", "pids", "cpu", "cpuacct"}) {
      INFO(controller);
      CHECK(processes_in_own_runs_v1(controller) == before[controller] + 2);
    }
    CHECK(driver.execute(*forked->live, "print(6 * 7)") == "42\n");
  }
  SECTION("memory beyond its limit ends it as memory_limit") {
    Spec spec = child_spec();
    spec.limits.memory_max_bytes = 64ull << 20;
    Driver driver;
    auto forked = shared_sandbox().fork(*server, spec, driver);
    REQUIRE(forked.ok());
    const std::string code = "x = bytearray(200 << 20)";
    REQUIRE(forked->live->write_stdin(frame(code)));
    const Outcome& outcome = forked->live->wait();
    CHECK(outcome.status == RunStatus::memory_limit);
  }
  CHECK(server->alive());
}

TEST_CASE("a fork server refuses to serve with writable shared memory in its zygote", "[root]") {
  if (!can_sandbox()) return;
  // A preload that maps shared memory: every child would share it, a channel between executions.
  char dir[] = "/tmp/airlock-preload-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string module = std::string(dir) + "/shares_memory.py";
  std::ofstream(module) << "import mmap\nregion = mmap.mmap(-1, 4096)\n";
  ::chmod(dir, 0755);
  ::chmod(module.c_str(), 0644);
  Spec spec = zygote_spec();
  spec.filesystem.binds.push_back({dir, "/preloads", false, false});
  spec.env.push_back("PYTHONPATH=/preloads");
  spec.env.push_back("AIRLOCK_PRELOAD=shares_memory");
  auto server = shared_sandbox().start_fork_server(spec);
  ::unlink(module.c_str());
  ::rmdir(dir);
  REQUIRE_FALSE(server.ok());
  CHECK_THAT(server.error().message(), Catch::Contains("writable shared mappings"));
}

TEST_CASE("a fork server that cannot start is an error, not a server", "[root]") {
  if (!can_sandbox()) return;
  Spec spec = zygote_spec();
  spec.env.back() = "AIRLOCK_FORK_LIBRARY=/nonexistent.so";
  auto server = shared_sandbox().start_fork_server(spec);
  REQUIRE_FALSE(server.ok());
  CHECK_THAT(server.error().message(), Catch::Contains("did not start"));
  CHECK_THAT(server.error().message(), Catch::Contains("nonexistent.so"));
}

}  // namespace airlock::sandbox
