// Warm capacity: sandboxes set up ahead of time, each with its runtime's interpreter started and
// waiting for code, used for exactly one execution and then destroyed. A request that fits one
// (same runtime and policy, limits the sandbox already has) skips sandbox setup and interpreter
// start-up; any other request, or one that finds the pool empty, runs cold as before.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/runner.h"

namespace airlock::runner {

class Interpreter;

struct WarmPoolEntry {
  std::string runtime;  // one with a script driver (script_driver): python, node
  std::string policy;   // the policy its sandboxes are set up under
  size_t size = 0;      // sandboxes kept ready
  // How ready sandboxes are made: forked from a fork server (an interpreter started once, its
  // imports done), or each started fresh. Fork falls back to fresh while no server runs.
  // Unset: fork where the runtime's driver can (python), fresh otherwise (node).
  enum class Refill { fork, fresh };
  std::optional<Refill> refill;
};

struct WarmPoolSettings {
  std::vector<WarmPoolEntry> entries;
  std::string drivers_dir;   // host directory of the drivers (runner/drivers/), bound read-only
  std::string fork_library;  // host path of libairlock_fork.so; needed by refill: fork only
  // The egress gateway, for entries whose policy has egress (Runner::gateway()); without it
  // such entries are refused.
  GatewayHost* gateway = nullptr;
};

struct WarmPoolStats {
  std::string runtime, policy;
  size_t capacity = 0;
  size_t ready = 0;     // started and initialised, waiting for code
  uint64_t hits = 0;    // executions served warm
  uint64_t misses = 0;  // fitting requests that found the pool empty
  uint64_t start_failures = 0;
  bool forking = false;            // ready sandboxes come from a running fork server
  uint64_t fork_server_starts = 0;  // 1 normally; more if a server died and was replaced
  uint64_t forked_on_request = 0;   // misses served by a fork at request time, not cold
  uint64_t ready_memory_bytes = 0;  // charged to the ready sandboxes' cgroups, all together
  uint64_t fork_server_memory_bytes = 0;
};

class WarmPool {
 public:
  // Checks the entries (known runtime with a driver, policy found, policy allows the runtime)
  // and starts filling in the background.
  static sandbox::Expected<std::unique_ptr<WarmPool>> create(sandbox::Sandbox& sandbox,
                                                             const RuntimeTable& runtimes,
                                                             const PolicyLookup& lookup,
                                                             WarmPoolSettings settings);
  ~WarmPool();

  // Runs the request on a ready sandbox when one fits; nullopt when none does (run it cold).
  // The request must have been validated against the policy.
  std::optional<RunResult> try_run(const RunRequest& request, const policies::Policy& policy,
                                   const EventSink& sink, int cancel_fd);

  std::vector<WarmPoolStats> stats() const;

  // After a policy reload: entries whose policy changed drop their ready sandboxes and fork
  // server and refill under the new version. Returns how many entries changed.
  size_t refresh(const PolicyLookup& lookup);

 private:
  struct Setup;
  struct Ready;
  struct Slot;
  std::shared_ptr<const Setup> make_setup(const Slot& slot,
                                          std::shared_ptr<const policies::Policy> policy) const;
  WarmPool(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes, WarmPoolSettings settings);
  void refill_loop();
  void end_loop();
  std::unique_ptr<Ready> start_one(Slot& slot);
  // background: a refill (Spec::background) rather than a request's fork-on-miss.
  std::unique_ptr<Ready> fork_one(Slot& slot, const std::shared_ptr<sandbox::ForkServer>& server,
                                  const std::shared_ptr<const Setup>& setup, bool background);

  sandbox::Sandbox& sandbox_;
  const RuntimeTable& runtimes_;
  WarmPoolSettings settings_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::unique_ptr<Ready>> retired_;  // used once or stale, ended by the ender
  mutable std::mutex mutex_;
  std::condition_variable wanted_;   // a sandbox was ended or died, or the pool is stopping
  std::condition_variable retired_changed_;  // one more to end, or the pool is stopping
  bool stopping_ = false;
  std::thread refiller_, ender_;
};

}  // namespace airlock::runner
