// The parts of a warm pool (internal to runner/warm_pool*.cc): what a slot's sandboxes are made
// from, a ready sandbox, and a slot. warm_pool.cc makes the pool and serves requests from it;
// warm_pool_refill.cc keeps it full (fork server, refills) and ends what was used.
#pragma once

#include <chrono>
#include <deque>
#include <memory>

#include "runner/drivers.h"
#include "runner/interpreter.h"
#include "runner/warm_pool.h"

namespace airlock::runner {

// What a slot's sandboxes are made from. Replaced whole when its policy is reloaded; a sandbox
// or fork server made from an older one is never handed out again.
struct WarmPool::Setup {
  std::shared_ptr<const policies::Policy> policy;
  sandbox::Spec spec;              // without host_workdir
  sandbox::Spec fork_server_spec;  // Refill::fork: the zygote's
};

struct WarmPool::Ready {
  std::shared_ptr<const Setup> setup;
  std::chrono::steady_clock::time_point end_after{};  // once retired
  // A forked sandbox lives in its server's pid namespace: the server must outlive it.
  std::shared_ptr<sandbox::ForkServer> server;
  std::unique_ptr<sandbox::Workspace> workspace;
  std::unique_ptr<Interpreter> interpreter;
  ~Ready() {
    interpreter.reset();  // the sandbox goes before the directory it works in
    workspace.reset();
    server.reset();  // and before its server, if it was the last one holding it
  }
};

struct WarmPool::Slot {
  WarmPoolEntry entry;  // its refill resolved
  const Runtime* runtime = nullptr;
  ScriptDriver driver;
  std::shared_ptr<const Setup> setup;
  std::shared_ptr<sandbox::ForkServer> fork_server;  // replaced by the refiller only
  std::shared_ptr<const Setup> fork_server_setup;    // what it was started from
  std::deque<std::unique_ptr<Ready>> ready;
  size_t starting = 0;
  uint64_t hits = 0, misses = 0, start_failures = 0, fork_server_starts = 0, forked_on_request = 0;
  bool forking = false;
  std::chrono::steady_clock::time_point fork_server_retry{};  // refiller only
};

}  // namespace airlock::runner
