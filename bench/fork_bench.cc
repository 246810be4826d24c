// What a fork server's sandbox costs, step by step: forking one (until the supervisor has it
// running), until its driver says ready, one python print(1) on it, and its end; against starting
// a fresh interpreter sandbox, in interleaved rounds. Prints a Markdown table.
//
// usage: fork_bench [--runs N] [--forked-only]   (the latter: to profile forking alone)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "policies/loader.h"
#include "sandbox/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;
using airlock::sandbox::Spec;
using airlock::sandbox::Stream;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// CPU time the whole machine spent busy so far, in ms (every process and kernel thread: the
// namespace teardown a sandbox leaves to kernel workers counts too).
double machine_busy_ms() {
  std::FILE* stat = std::fopen("/proc/stat", "r");
  if (stat == nullptr) return 0;
  unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
  int n = std::fscanf(stat, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system,
                      &idle, &iowait, &irq, &softirq, &steal);
  std::fclose(stat);
  if (n != 8) return 0;
  return static_cast<double>(user + nice + system + irq + softirq) * 1000.0 /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5)];
}

// The driver's control channel: "ready" once started, "M end ..." after an execution.
struct Driver : airlock::sandbox::OutputHandler {
  std::mutex mutex;
  std::condition_variable changed;
  std::string control;
  bool on_output(Stream stream, std::string_view data) override {
    if (stream != Stream::control_stream) return true;
    {
      std::lock_guard lock(mutex);
      control.append(data);
    }
    changed.notify_all();
    return true;
  }
  bool wait_for(const std::string& text) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(20),
                            [&] { return control.find(text) != std::string::npos; });
  }
};

struct Steps {
  std::vector<double> launched, ready, executed, ended;
  double busy_ms = 0;  // machine CPU over all rounds
  int failures = 0;
};

// One sandbox through its life: started by `start`, then print(1), then killed.
void measure(Steps& steps,
             const std::function<std::unique_ptr<airlock::sandbox::LiveSandbox>(Driver&)>& start) {
  Driver driver;
  const double busy_before = machine_busy_ms();
  struct Account {
    Steps& steps;
    double before;
    ~Account() { steps.busy_ms += machine_busy_ms() - before; }
  } account{steps, busy_before};
  auto began = Clock::now();
  auto live = start(driver);
  if (!live) {
    ++steps.failures;
    return;
  }
  steps.launched.push_back(ms_since(began));
  if (!driver.wait_for("ready\n")) {
    ++steps.failures;
    return;
  }
  steps.ready.push_back(ms_since(began));
  auto sent = Clock::now();
  live->write_stdin("M 8 0\nprint(1)");
  if (!driver.wait_for("M end")) {
    ++steps.failures;
    return;
  }
  steps.executed.push_back(ms_since(sent));
  auto killed = Clock::now();
  live->kill();
  live->wait();
  steps.ended.push_back(ms_since(killed));
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 40;
  bool forked_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--forked-only")) forked_only = true;
  }
  auto sandbox = airlock::sandbox::Sandbox::create({});
  if (!sandbox) {
    std::fprintf(stderr, "fork_bench: %s\n", sandbox.error().message().c_str());
    return 1;
  }
  auto loaded = airlock::policies::load_policy("default", {POLICY_DIR});
  if (!loaded.ok()) {
    std::fprintf(stderr, "fork_bench: policy default did not load\n");
    return 1;
  }
  // As the warm pool sets them up (runner/warm_pool.cc), for python under the default policy.
  Spec fresh;
  fresh.argv = {"/usr/bin/python3", "-u", "/opt/airlock/python_driver.py"};
  for (const auto& [name, value] : loaded.policy->environment) fresh.env.push_back(name + "=" + value);
  fresh.env.push_back("AIRLOCK_DRIVER_MODE=script");
  fresh.env.push_back("AIRLOCK_PRELOAD=json,os,sys,math,re,collections");
  fresh.limits = loaded.policy->limits;
  fresh.filesystem = loaded.policy->filesystem;
  fresh.filesystem.binds.push_back({DRIVERS_DIR, "/opt/airlock", false, false});
  fresh.seccomp = loaded.policy->syscalls;
  fresh.control_channel = true;
  Spec zygote = fresh;
  zygote.control_channel = false;
  zygote.fork_server = true;
  zygote.limits.max_open_files += 16;
  zygote.limits.wall_time = std::chrono::hours(1);
  zygote.limits.cpu_time = std::chrono::hours(1);
  zygote.env[zygote.env.size() - 2] = "AIRLOCK_DRIVER_MODE=zygote";
  zygote.env.push_back("AIRLOCK_FORK_LIBRARY=/opt/airlock-lib/libairlock_fork.so");
  zygote.filesystem.binds.push_back({FORK_LIBRARY, "/opt/airlock-lib/libairlock_fork.so", false, false});

  auto server = (*sandbox)->start_fork_server(zygote);
  if (!server) {
    std::fprintf(stderr, "fork_bench: %s\n", server.error().message().c_str());
    return 1;
  }
  auto forked = [&](Driver& driver) -> std::unique_ptr<airlock::sandbox::LiveSandbox> {
    auto made = (*sandbox)->fork(**server, fresh, driver);
    return made ? std::move(made->live) : nullptr;
  };
  std::vector<std::unique_ptr<airlock::sandbox::Workspace>> workspaces;  // outlive the sandboxes
  auto started = [&](Driver& driver) -> std::unique_ptr<airlock::sandbox::LiveSandbox> {
    auto workspace = (*sandbox)->create_workspace(fresh.limits.workdir_size_bytes);
    if (!workspace) return nullptr;
    Spec spec = fresh;
    spec.host_workdir = (*workspace)->path();
    workspaces.push_back(std::move(workspace.value()));
    auto made = (*sandbox)->start(spec, driver);
    return made ? std::move(made.value()) : nullptr;
  };
  Steps fork_steps, fresh_steps;
  measure(fork_steps, forked);  // warm the caches
  measure(fresh_steps, started);
  fork_steps = {};
  fresh_steps = {};
  for (int round = 0; round < runs; ++round) {
    measure(fork_steps, forked);
    if (!forked_only) measure(fresh_steps, started);
  }
  std::printf("| python sandbox | launched ms | ready ms | print(1) ms | kill to end ms | machine CPU ms | failures |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (auto [name, steps] : {std::pair{"forked from a fork server", &fork_steps},
                             std::pair{"started fresh", &fresh_steps}}) {
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.1f | %d |\n", name,
                percentile(steps->launched, 0.5), percentile(steps->ready, 0.5),
                percentile(steps->executed, 0.5), percentile(steps->ended, 0.5),
                steps->busy_ms / std::max<size_t>(1, steps->ended.size()), steps->failures);
  }
  std::printf("\nMedians of %d interleaved rounds; machine CPU is the mean per sandbox, from "
              "/proc/stat (all cores, all processes). Fork server memory: %.1f MiB.\n", runs,
              static_cast<double>((*server)->memory_usage_bytes()) / (1 << 20));
  return 0;
}
