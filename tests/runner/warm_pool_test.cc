// Warm capacity: ready sandboxes used once each; nothing of one execution reaches the next.
#include "runner/warm_pool.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sandbox/cgroup.h"
#include "test_env.h"

namespace airlock::runner {
namespace {

using namespace testing;

// The sources' drivers and the build's fork library: what an install lays out under lib/airlock.
constexpr const char* kDrivers = AIRLOCK_SOURCE_DIR "/runner/drivers";
constexpr const char* kForkLibrary = FORK_LIBRARY;

std::unique_ptr<WarmPool> make_pool(size_t size) {
  auto pool = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                               {{{"python", "default", size}}, kDrivers, kForkLibrary});
  if (!pool) FAIL(pool.error().message());
  return std::move(pool.value());
}

// Waits (bounded, for a hung start) until `count` sandboxes are ready. Generous: under the
// cgroup-v2 VM's emulated CPU the fork server's data stack and first chart take a minute.
void wait_ready(const WarmPool& pool, size_t count) {
  for (int i = 0; i < 30000 && pool.stats().front().ready < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(pool.stats().front().ready >= count);
}

// The CPU weight (v1 cpu.shares, v2 cpu.weight) of each run cgroup this process has now,
// found under the cgroup tree's `airlock` directories by this process's instance prefix.
std::vector<std::string> run_cpu_shares() {
  namespace fs = std::filesystem;
  const bool v2 = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  const fs::path root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpu";
  const std::string file = v2 ? "cpu.weight" : "cpu.shares";
  const std::string prefix =
      sandbox::instance_prefix(::getpid(), sandbox::process_start_ticks(::getpid()));
  std::vector<std::string> shares;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied,
                                           error), end;
       it != end; it.increment(error)) {
    if (error) break;
    const fs::path& path = it->path();
    if (!it->is_directory(error) || path.filename().string().rfind("run-", 0) != 0) continue;
    const std::string instance = path.parent_path().filename().string();
    if (path.parent_path().parent_path().filename() != "airlock" ||
        instance.rfind(prefix, 0) != 0) {
      continue;
    }
    std::string value;
    std::ifstream(path / file) >> value;
    shares.push_back(value);
    it.disable_recursion_pending();
  }
  return shares;
}

}  // namespace

TEST_CASE("a refill warms up at the lowest CPU weight and serves at the default", "[root]") {
  if (!can_run()) return;
  // node's pool: its sandboxes start fresh (no fork server), so each is one run cgroup.
  auto made = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                               {{{"node", "default", 1}}, kDrivers, kForkLibrary});
  REQUIRE(made.ok());
  auto& pool = made.value();
  const bool v2 = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers");
  const std::string background = v2 ? "1" : "2", normal = v2 ? "100" : "1024";
  wait_ready(*pool, 1);
  CHECK(run_cpu_shares() == std::vector<std::string>{background});

  auto policy = env().lookup("default");
  RunRequest request = python("setTimeout(() => console.log('served'), 4000)");
  request.runtime = "node";
  std::optional<RunResult> result;
  std::thread serving([&] { result = pool->try_run(request, *policy, nullptr, -1); });
  // Only the sandbox serving the request is there (the refill follows its end), at full weight.
  std::vector<std::string> while_serving;
  for (int i = 0; i < 350 && while_serving != std::vector<std::string>{normal}; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    while_serving = run_cpu_shares();
  }
  serving.join();
  CHECK(while_serving == std::vector<std::string>{normal});
  REQUIRE(result.has_value());
  CHECK(result->stdout_output.text == "served\n");
  // Its replacement warms up in the background again (once the used one's cgroup is gone).
  wait_ready(*pool, 1);
  std::vector<std::string> after;
  for (int i = 0; i < 1000 && after != std::vector<std::string>{background}; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = run_cpu_shares();
  }
  CHECK(after == std::vector<std::string>{background});
  CHECK(pool->stats().front().hits == 1);
}

TEST_CASE("consecutive warm executions see nothing of each other", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(2);
  wait_ready(*pool, 2);
  auto policy = env().lookup("default");
  const char* leave_traces = R"py(
import os, subprocess
open("left.txt", "w").write("x")
open("/tmp/left.txt", "w").write("x")
open("/dev/shm/left", "w").write("x")
os.environ["LEFT_BEHIND"] = "1"
secret = 42
subprocess.Popen(["/bin/sleep", "60"], start_new_session=True)
print("traces left")
)py";
  auto first = pool->try_run(python(leave_traces), *policy, nullptr, -1);
  REQUIRE(first.has_value());
  REQUIRE(first->status_name() == "ok");
  const char* look = R"py(
import os
found = []
for path in ("left.txt", "/tmp/left.txt", "/dev/shm/left"):
    if os.path.exists(path): found.append(path)
if "LEFT_BEHIND" in os.environ: found.append("environment")
if "secret" in globals(): found.append("globals")
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "sleep": found.append("process")
        except OSError:
            pass
print(found)
)py";
  auto second = pool->try_run(python(look), *policy, nullptr, -1);
  REQUIRE(second.has_value());
  INFO(second->stderr_output.text);
  CHECK(second->status_name() == "ok");
  CHECK(second->stdout_output.text == "[]\n");
  CHECK(pool->stats().front().hits == 2);
}

TEST_CASE("a warm execution behaves like `python3 main.py`", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(3);
  wait_ready(*pool, 3);
  auto policy = env().lookup("default");
  auto quiet = pool->try_run(python("import sys\nx = 41\nx + 1\nprint(sys.argv, __name__)"),
                             *policy, nullptr, -1);
  REQUIRE(quiet.has_value());
  CHECK(quiet->stdout_output.text == "['main.py'] __main__\n");  // no echo of `x + 1`
  auto failing =
      pool->try_run(python("def f():\n    raise ValueError('boom')\nf()"), *policy, nullptr, -1);
  REQUIRE(failing.has_value());
  CHECK(failing->status_name() == "nonzero_exit");
  CHECK(failing->outcome.exit_code == 1);
  CHECK_THAT(failing->stderr_output.text, Catch::Contains("File \"main.py\", line 2, in f"));
  CHECK_THAT(failing->stderr_output.text, Catch::EndsWith("ValueError: boom\n"));
  auto exiting = pool->try_run(
      python("import atexit, sys, threading, time\natexit.register(lambda: print('atexit'))\n"
             "threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()\n"
             "sys.exit(3)"),
      *policy, nullptr, -1);
  REQUIRE(exiting.has_value());
  CHECK(exiting->status_name() == "nonzero_exit");
  CHECK(exiting->outcome.exit_code == 3);
  CHECK(exiting->stdout_output.text == "thread\natexit\n");  // waited for, as at interpreter exit
  auto wrapped = pool->try_run(python("import sys\nsys.exit(257)"), *policy, nullptr, -1);
  REQUIRE(wrapped.has_value());
  CHECK(wrapped->outcome.exit_code == 1);  // as `python3 main.py` exits: the OS keeps 8 bits
}

TEST_CASE("a warm execution past its wall time ends as a timeout", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(1);
  wait_ready(*pool, 1);
  auto policy = env().lookup("default");
  RunRequest request = python("import time\nprint('started', flush=True)\ntime.sleep(600)");
  request.limits.wall_time = std::chrono::milliseconds(1500);  // the policy's is longer
  REQUIRE(policy->limits.wall_time > *request.limits.wall_time);
  auto result = pool->try_run(request, *policy, nullptr, -1);
  REQUIRE(result.has_value());
  INFO(result->summary << result->stderr_output.text);
  CHECK(result->status_name() == "timeout");
  CHECK(result->outcome.timeout == sandbox::TimeoutKind::wall);
  // A cold run's words, naming the request's limit.
  CHECK(result->outcome.reason == "wall time limit 1.5 s reached");
  CHECK(result->stdout_output.text == "started\n");
  CHECK(result->outcome.usage.wall >= std::chrono::milliseconds(1500));
  CHECK(pool->stats().front().hits == 1);
}

TEST_CASE("a warm python sandbox has the data stack imported and a first chart drawn", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(1);
  wait_ready(*pool, 1);
  REQUIRE(pool->stats().front().forking);
  auto policy = env().lookup("default");
  RunRequest request = python(R"py(
import sys
print(all(m in sys.modules for m in ("numpy", "pandas", "matplotlib.pyplot")))
import matplotlib.pyplot as plt
import pandas as pd
print(plt.get_fignums(), plt.get_backend())  # the warm-up's figure is closed
pd.DataFrame({"x": [1, 2, 3], "y": [3, 1, 2]}).plot(x="x", y="y")
plt.savefig("chart.png")
)py");
  request.output_globs = {"*.png"};
  std::vector<std::string> file_events;
  EventSink sink = [&](const Event& event) {
    if (event.kind == EventKind::file) file_events.push_back(event.file->path);
  };
  auto result = pool->try_run(request, *policy, sink, -1);
  REQUIRE(result.has_value());
  INFO(result->summary << result->stderr_output.text);
  CHECK(result->status_name() == "ok");
  CHECK(result->stdout_output.text == "True\n[] agg\n");  // nothing of the warm-up's output
  CHECK(result->stderr_output.text.empty());
  REQUIRE(result->files.size() == 1);
  CHECK(result->files.front().media_type == "image/png");
  CHECK(result->files.front().content.substr(0, 4) == "\x89PNG");
  CHECK(file_events == std::vector<std::string>{"chart.png"});
  CHECK(pool->stats().front().hits == 1);
}

TEST_CASE("a request stops a forked child's warm-up and finds it cleaned up", "[root]") {
  if (!can_run()) return;
  // A warm-up that, in a forked child (which inherits the zygote's marker), would take far
  // longer than the request's time limit: the request must stop it, after its cleanup() ran.
  RuntimeTable runtimes = env().runtimes;
  runtimes.at("python").warm_up = R"py(
import sys, time
import matplotlib.pyplot as plt
def cleanup():
    plt.close("all")
    sys.warm_up_stage += ", cleaned up"
plt.figure()
if hasattr(sys, "warm_up_stage"):
    sys.warm_up_stage = "stopped while drawing"
    time.sleep(600)
    sys.warm_up_stage = "ran to its end"
else:
    sys.warm_up_stage = "zygote"
)py";
  auto made = WarmPool::create(*env().sandbox, runtimes, env().lookup,
                               {{{"python", "default", 1}}, kDrivers, kForkLibrary});
  REQUIRE(made.ok());
  auto& pool = made.value();
  wait_ready(*pool, 1);  // ready before its warm-up: it says so first
  // Most likely asleep by now; stopped earlier (before the branch), its stage still says
  // "zygote". Either way it was stopped: run to its end, it would outlast the request's limit.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto policy = env().lookup("default");
  auto result = pool->try_run(
      python("import sys\nimport matplotlib.pyplot as plt\n"
             "print(sys.warm_up_stage, plt.get_fignums(), sys.stdout is sys.__stdout__)"),
      *policy, nullptr, -1);
  REQUIRE(result.has_value());
  INFO(result->summary << result->stderr_output.text);
  CHECK(result->status_name() == "ok");
  CHECK_THAT(result->stdout_output.text,
             Catch::Equals("stopped while drawing, cleaned up [] True\n") ||
                 Catch::Equals("zygote, cleaned up, cleaned up [] True\n"));
  CHECK(pool->stats().front().hits == 1);
}

TEST_CASE("code larger than a pipe's buffer reaches a warm sandbox whole", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(1);
  wait_ready(*pool, 1);
  auto policy = env().lookup("default");
  // 300 KB: written partly at once and the rest by the sandbox's monitor, read in many chunks.
  auto result = pool->try_run(
      python("data = '" + std::string(300000, 'a') + "'\nprint(len(data), data.count('a'))"),
      *policy, nullptr, -1);
  REQUIRE(result.has_value());
  INFO(result->stderr_output.text);
  CHECK(result->status_name() == "ok");
  CHECK(result->stdout_output.text == "300000 300000\n");
}

TEST_CASE("a used warm sandbox ends soon after its result, with what it left running", "[root]") {
  if (!can_run()) return;
  auto pool = make_pool(1);
  wait_ready(*pool, 1);
  auto policy = env().lookup("default");
  auto result = pool->try_run(
      python("import subprocess\n"
             "print(subprocess.Popen(['/bin/sleep', '61.4242'], start_new_session=True).pid > 0)"),
      *policy, nullptr, -1);
  REQUIRE(result.has_value());
  REQUIRE(result->stdout_output.text == "True\n");
  auto left_running = [] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream cmdline(entry.path() / "cmdline");
      std::string text((std::istreambuf_iterator<char>(cmdline)), {});
      if (text.find("61.4242") != std::string::npos) return true;
    }
    return false;
  };
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = !left_running();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(gone);
}

TEST_CASE("a warm node execution behaves like `node main.js`", "[root]") {
  if (!can_run()) return;
  // No fork server for node: each ready sandbox is started fresh, runs one program and exits.
  auto made = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                               {{{"node", "default", 1}}, kDrivers, kForkLibrary});
  REQUIRE(made.ok());
  auto& pool = made.value();
  CHECK_FALSE(pool->stats().front().forking);
  auto policy = env().lookup("default");
  auto node = [&](const std::string& code) {
    wait_ready(*pool, 1);
    RunRequest request = python(code);
    request.runtime = "node";
    auto result = pool->try_run(request, *policy, nullptr, -1);
    REQUIRE(result.has_value());
    return std::move(*result);
  };
  auto plain = node(
      "console.log(1, require.main === module, process.argv.length, __filename,\n"
      "  Object.keys(process.env).filter((name) => name.startsWith('AIRLOCK')).length)");
  CHECK(plain.status_name() == "ok");
  CHECK(plain.stdout_output.text == "1 true 2 /work/main.js 0\n");
  // The execution's own CPU is split into user and system time. How small it is depends on the
  // machine: that is a benchmark's to measure, not a test's to assert.
  auto thrown = node("throw new Error('boom')");
  CHECK(thrown.status_name() == "nonzero_exit");
  CHECK(thrown.outcome.exit_code == 1);
  CHECK_THAT(thrown.stderr_output.text, Catch::Contains("Error: boom"));
  CHECK_THAT(thrown.stderr_output.text, Catch::Contains("/work/main.js:1"));
  // Pending work and exit handlers run, as at the end of a script; the exit code is its own.
  auto later = node(
      "process.on('exit', (code) => console.log('exit', code));\n"
      "setTimeout(() => { console.log('later'); process.exitCode = 4; }, 50);");
  CHECK(later.stdout_output.text == "later\nexit 4\n");
  CHECK(later.outcome.exit_code == 4);
  // An exception the program handles is not the end; one it does not handle is node's to report.
  auto handled = node("process.on('uncaughtException', (e) => console.log('handled', e.message));\n"
                      "throw new Error('x');");
  CHECK(handled.status_name() == "ok");
  CHECK(handled.stdout_output.text == "handled x\n");
  auto rejected = node("Promise.reject(new Error('rejected'));");
  CHECK(rejected.outcome.exit_code == 1);
  CHECK_THAT(rejected.stderr_output.text, Catch::Contains("Error: rejected"));
  // The end is node's own exit, with the status the OS keeps: not an 'exit' the program emits
  // itself, and not before a wrapper of process.emit (as signal-exit installs) has run.
  auto wrapped = node("process.exitCode = 256;\n"
                      "process.emit('exit', 0);\n"
                      "const emit = process.emit;\n"
                      "process.emit = function (event, ...args) {\n"
                      "  const result = emit.call(this, event, ...args);\n"
                      "  if (event === 'exit') console.log('after the wrapped emit');\n"
                      "  return result;\n"
                      "};\n"
                      "setTimeout(() => console.log('still running'), 20);");
  CHECK(wrapped.status_name() == "ok");
  CHECK(wrapped.stdout_output.text == "still running\nafter the wrapped emit\n");
  // The driver's frame pipe is closed: the program reads an empty stdin, as a cold run does.
  auto input = node("process.stdin.on('data', (d) => console.log('data', d.length))"
                    ".on('end', () => console.log('end'));");
  CHECK(input.stdout_output.text == "end\n");
  CHECK(pool->stats().front().hits == 7);
}

TEST_CASE("requests a warm sandbox cannot serve, or an empty pool, run cold", "[root]") {
  if (!can_run()) return;
  auto policy = env().lookup("default");
  WarmPoolEntry entry{"python", "default", 1, WarmPoolEntry::Refill::fresh};
  auto made = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                               {{entry}, kDrivers, kForkLibrary});
  REQUIRE(made.ok());
  auto& pool = made.value();
  // Asked before any interpreter could have started, and no fork server to fork from: cold.
  CHECK_FALSE(pool->try_run(python("print(1)"), *policy, nullptr, -1).has_value());
  CHECK(pool->stats().front().misses == 1);
  wait_ready(*pool, 1);
  RunRequest tighter = python("print(1)");
  tighter.limits.memory_max_bytes = 64 * sandbox::kMiB;
  CHECK_FALSE(pool->try_run(tighter, *policy, nullptr, -1).has_value());
  RunRequest with_stdin = python("print(input())");
  with_stdin.stdin_data = "hello\n";
  CHECK_FALSE(pool->try_run(with_stdin, *policy, nullptr, -1).has_value());
  RunRequest other_runtime = python("echo 1");
  other_runtime.runtime = "bash";
  CHECK_FALSE(pool->try_run(other_runtime, *policy, nullptr, -1).has_value());
  auto python_policy = env().lookup("python");
  CHECK_FALSE(pool->try_run(python("print(1)"), *python_policy, nullptr, -1).has_value());
  CHECK(pool->stats().front().ready == 1);  // none of those took the ready sandbox
}

TEST_CASE("a request that finds the pool empty is forked a sandbox at once", "[root]") {
  if (!can_run()) return;
  auto policy = env().lookup("default");
  auto pool = make_pool(1);
  wait_ready(*pool, 1);
  // Two at once: the second finds the pool empty (or just refilled); either way it runs warm.
  for (int i = 0; i < 2; ++i) {
    auto result = pool->try_run(python("print(2 + 2)"), *policy, nullptr, -1);
    REQUIRE(result.has_value());
    CHECK(result->stdout_output.text == "4\n");
  }
  auto stats = pool->stats().front();
  CHECK(stats.forking);
  CHECK(stats.fork_server_starts == 1);
  CHECK(stats.hits + stats.forked_on_request == 2);
  CHECK(stats.fork_server_memory_bytes > 0);
}

TEST_CASE("after a policy reload the pool serves the new version, never the old", "[root]") {
  if (!can_run()) return;
  auto old_policy = env().lookup("default");
  auto reloaded = std::make_shared<policies::Policy>(*old_policy);
  reloaded->environment.push_back({"RELOADED", "yes"});
  reloaded->hash = "sha256:reloaded";
  std::shared_ptr<const policies::Policy> current = old_policy;
  PolicyLookup lookup = [&](const std::string& name) {
    return name == "default" ? current : env().lookup(name);
  };
  auto made = WarmPool::create(*env().sandbox, env().runtimes, lookup,
                               {{{"python", "default", 1}}, kDrivers, kForkLibrary});
  REQUIRE(made.ok());
  auto& pool = made.value();
  wait_ready(*pool, 1);
  CHECK(pool->refresh(lookup) == 0);  // nothing changed
  current = reloaded;
  CHECK(pool->refresh(lookup) == 1);
  CHECK_FALSE(pool->try_run(python("print(1)"), *old_policy, nullptr, -1).has_value());
  wait_ready(*pool, 1);
  auto result = pool->try_run(python("import os\nprint(os.environ.get('RELOADED'))"), *reloaded,
                              nullptr, -1);
  REQUIRE(result.has_value());
  CHECK(result->stdout_output.text == "yes\n");
}

TEST_CASE("a warm pool entry must name a runtime with a driver and a known policy", "[root]") {
  if (!can_run()) return;
  auto bad_runtime = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                                      {{{"perl", "default", 1}}, kDrivers, kForkLibrary});
  REQUIRE_FALSE(bad_runtime.ok());
  CHECK_THAT(bad_runtime.error().message(),
             Catch::Contains("no warm interpreter for runtime 'perl'"));
  // bash has a session driver, but no script mode or ready line: its sandboxes would never serve.
  auto bash = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                               {{{"bash", "bash", 1}}, kDrivers, kForkLibrary});
  REQUIRE_FALSE(bash.ok());
  CHECK_THAT(bash.error().message(), Catch::Contains("no warm interpreter for runtime 'bash'"));
  const WarmPoolEntry node_fork_entry{"node", "default", 1, WarmPoolEntry::Refill::fork};
  auto node_fork = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                                    {{node_fork_entry}, kDrivers, kForkLibrary});
  REQUIRE_FALSE(node_fork.ok());
  CHECK_THAT(node_fork.error().message(), Catch::Contains("refill: fork needs a fork server"));
  auto bad_policy = WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                                     {{{"python", "no-such-policy", 1}}, kDrivers, kForkLibrary});
  REQUIRE_FALSE(bad_policy.ok());
  CHECK_THAT(bad_policy.error().message(), Catch::Contains("no policy named 'no-such-policy'"));
  auto no_library =
      WarmPool::create(*env().sandbox, env().runtimes, env().lookup,
                       {{{"python", "default", 1}}, kDrivers, "/nonexistent/fork.so"});
  REQUIRE_FALSE(no_library.ok());
  CHECK_THAT(no_library.error().message(),
             Catch::Contains("the fork server's library /nonexistent/fork.so is missing"));
}

}  // namespace airlock::runner
