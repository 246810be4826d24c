#include "runner/warm_pool.h"

#include <algorithm>
#include <filesystem>

#include "runner/drivers.h"
#include "runner/execution.h"
#include "runner/interpreter.h"
#include "runner/warm_pool_parts.h"
#include "runner/workdir.h"

namespace airlock::runner {
namespace {

// A ready sandbox waits in the pool: its whole life is bounded, and a fresh one replaces it.
constexpr std::chrono::minutes kReadyLifetime{30};
// Interpreter start-up runs under the sandbox's cpu limit besides the execution's own.
constexpr std::chrono::seconds kStartupCpu{30};
// A fork server lives until the pool ends; its cpu time is its own start and the first steps
// of every child (the children's own time is counted in their cgroups).
constexpr std::chrono::hours kForkServerLifetime{24 * 365};
// A used sandbox is ended this long after its result is handed back, not at once: ending a
// process tree (its page tables, its namespaces) keeps a core busy for a millisecond or more,
// which sending the result needs first. Its execution is over; nothing it still does is kept.
constexpr std::chrono::milliseconds kEndDelay{5};
constexpr const char* kForkLibrarySandboxPath = "/opt/airlock-lib/libairlock_fork.so";

std::string join(const std::vector<std::string>& items, char separator) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : std::string(1, separator)) + item;
  return text;
}

}  // namespace

std::shared_ptr<const WarmPool::Setup> WarmPool::make_setup(const Slot& slot,
                                                           std::shared_ptr<const policies::Policy> policy) const {
  auto setup = std::make_shared<Setup>();
  sandbox::Spec& spec = setup->spec;
  spec = driver_spec(*policy, *slot.runtime, slot.driver.argv, settings_.drivers_dir);
  // Read (and removed from the environment) by the driver before any code runs, as is its mode.
  spec.env.push_back("AIRLOCK_PRELOAD=" + join(slot.runtime->preload, ','));
  if (!slot.runtime->warm_up.empty()) {
    spec.env.push_back("AIRLOCK_WARM_UP=" + slot.runtime->warm_up);
  }
  spec.limits.wall_time = kReadyLifetime + policy->limits.wall_time;
  spec.limits.cpu_time = kStartupCpu + policy->limits.cpu_time;
  if (slot.entry.refill == WarmPoolEntry::Refill::fork) {
    sandbox::Spec& zygote = setup->fork_server_spec;
    zygote = spec;
    zygote.control_channel = false;
    zygote.fork_server = true;
    zygote.limits.wall_time = kForkServerLifetime;
    zygote.limits.cpu_time = kForkServerLifetime;
    // Each child keeps its control socket at its own fd limit, which must be open to it.
    zygote.limits.max_open_files += 16;
    zygote.env.push_back("AIRLOCK_DRIVER_MODE=zygote");
    zygote.env.push_back(std::string("AIRLOCK_FORK_LIBRARY=") + kForkLibrarySandboxPath);
    zygote.filesystem.binds.push_back({settings_.fork_library, kForkLibrarySandboxPath, false, false, true});
  }
  spec.env.push_back("AIRLOCK_DRIVER_MODE=script");
  setup->policy = std::move(policy);
  return setup;
}

sandbox::Expected<std::unique_ptr<WarmPool>> WarmPool::create(sandbox::Sandbox& sandbox,
                                                               const RuntimeTable& runtimes,
                                                               const PolicyLookup& lookup,
                                                               WarmPoolSettings settings) {
  if (settings.drivers_dir.empty() && !settings.entries.empty()) {
    return sandbox::SetupError{"warm pool: no drivers directory given (drivers_dir)", EINVAL};
  }
  std::unique_ptr<WarmPool> pool(new WarmPool(sandbox, runtimes, settings));
  for (const WarmPoolEntry& entry : pool->settings_.entries) {
    const std::string where = "warm pool entry " + entry.runtime + "/" + entry.policy + ": ";
    auto runtime = runtimes.find(entry.runtime);
    // A warm sandbox needs a driver with a script mode and a ready line: python's and node's.
    // bash's session driver has neither, so its sandboxes would never be ready.
    std::optional<ScriptDriver> driver;
    if (runtime != runtimes.end() && !runtime->second.run.empty()) {
      driver = script_driver(entry.runtime, runtime->second.run[0]);
    }
    if (!driver) {
      return sandbox::SetupError{where + "no warm interpreter for runtime '" + entry.runtime +
                                     "' (python and node have one)",
                                 0};
    }
    const auto refill = entry.refill.value_or(driver->forks ? WarmPoolEntry::Refill::fork
                                                            : WarmPoolEntry::Refill::fresh);
    if (refill == WarmPoolEntry::Refill::fork && !driver->forks) {
      return sandbox::SetupError{where + "refill: fork needs a fork server, and " +
                                     entry.runtime + "'s driver has none (use refill: fresh)",
                                 0};
    }
    if (refill == WarmPoolEntry::Refill::fork &&
        !std::filesystem::is_regular_file(settings.fork_library)) {
      return sandbox::SetupError{where + "the fork server's library " + settings.fork_library +
                                     " is missing (set fork_library, or use refill: fresh)",
                                 ENOENT};
    }
    auto policy = lookup ? lookup(entry.policy) : nullptr;
    if (!policy) return sandbox::SetupError{where + "no policy named '" + entry.policy + "'", 0};
    if (!policy->allows_runtime(entry.runtime)) {
      return sandbox::SetupError{where + "policy does not allow the runtime", 0};
    }
    if (policy->egress.enabled() && settings.gateway == nullptr) {
      return sandbox::SetupError{where + "policy '" + entry.policy +
                                     "' has egress, and the pool has no egress gateway",
                                 0};
    }
    auto slot = std::make_unique<Slot>();
    slot->entry = entry;
    slot->entry.refill = refill;
    slot->runtime = &runtime->second;
    slot->driver = std::move(*driver);
    slot->setup = pool->make_setup(*slot, policy);
    pool->slots_.push_back(std::move(slot));
  }
  pool->refiller_ = std::thread([raw = pool.get()] { raw->refill_loop(); });
  pool->ender_ = std::thread([raw = pool.get()] { raw->end_loop(); });
  return pool;
}

WarmPool::WarmPool(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes,
                   WarmPoolSettings settings)
    : sandbox_(sandbox), runtimes_(runtimes), settings_(std::move(settings)) {}

WarmPool::~WarmPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wanted_.notify_all();
  retired_changed_.notify_all();
  if (refiller_.joinable()) refiller_.join();
  if (ender_.joinable()) ender_.join();  // it ends what is retired, without waiting
  retired_.clear();
  slots_.clear();  // kills every ready sandbox and removes its working dir
}

std::optional<RunResult> WarmPool::try_run(const RunRequest& request,
                                           const policies::Policy& policy, const EventSink& sink,
                                           int cancel_fd) {
  // A warm sandbox has the policy's memory and process limits and runs `main.py` without args,
  // with nothing on its fd 0: anything else needs a sandbox of its own.
  if (request.runtime.empty() || !request.argv.empty() || request.stdin_fd >= 0 ||
      !request.stdin_data.empty() || request.limits.memory_max_bytes ||
      request.limits.max_processes) {
    return std::nullopt;
  }
  std::unique_ptr<Ready> ready;
  Slot* used = nullptr;
  std::shared_ptr<const Setup> setup;  // the slot's, as it matched the request's policy
  std::shared_ptr<sandbox::ForkServer> server;
  {
    std::lock_guard lock(mutex_);
    for (auto& slot : slots_) {
      if (slot->entry.runtime != request.runtime || slot->setup->policy->hash != policy.hash) {
        continue;
      }
      used = slot.get();
      // The first whose interpreter has finished starting; those still starting stay.
      for (auto it = slot->ready.begin(); it != slot->ready.end(); ++it) {
        if ((*it)->interpreter->ready()) {
          ready = std::move(*it);
          slot->ready.erase(it);
          break;
        }
      }
      ready ? ++slot->hits : ++slot->misses;
      // Only a miss forks. Taken on a hit, the server could be the last reference to one the
      // refiller has replaced, and stopping it would then fall to this request.
      if (!ready) {
        setup = slot->setup;
        if (slot->fork_server_setup == setup) server = slot->fork_server;
      }
      break;
    }
  }
  if (!used) return std::nullopt;
  if (!ready) {
    wanted_.notify_all();
    // None ready: a fork costs a fraction of a cold start, when there is a server to fork from
    // (one started from the setup that matched this request's policy, never a newer one).
    if (server && server->alive()) ready = fork_one(*used, server, setup, false);
    if (!ready) return std::nullopt;
    std::lock_guard lock(mutex_);
    ++used->forked_on_request;
  }
  // The refill starts once this sandbox has ended (end_loop), not now: forking the next one
  // would take one of the two cores the waiting request needs.

  Execution execution(request, policy, request.runtime, sink,
                      interpreter_limits(policy, request.limits), cancel_fd);
  // A refill warms up in the background (its cgroup at the lowest CPU weight), so that it never
  // takes a core from a running request; serving one, it is a request's sandbox like any other.
  sandbox::Status written = ready->interpreter->to_foreground();
  for (size_t i = 0; written && i < request.files.size(); ++i) {
    const InputFile& file = request.files[i];
    written = write_workspace_file(*ready->workspace, file.path, file.content, file.executable);
    if (written) continue;
    if (auto refused = refused_input_file(i, file, written.error(), "the working directory")) {
      execution.reject(*refused);
    }
  }
  // The source sits where a cold run has it, so tracebacks can show its lines.
  if (written) {
    written = write_workspace_file(*ready->workspace, used->runtime->source_file, request.code,
                                   false);
  }
  if (written) {
    InterpreterRequest run = execution.interpreter_request();
    run.close_stdin_after_frame = used->driver.close_stdin_after_frame;
    execution.take(ready->interpreter->execute(run), ready->interpreter->gateway());
    execution.result().files = collect_output_files(ready->workspace->path(), request.output_globs,
                                                    request.max_file_bytes);
  }
  // Used once: its processes end (whatever the code left behind), its files go, and a fresh one
  // takes its place, all on other threads and after the result is on its way (kEndDelay).
  ready->end_after = std::chrono::steady_clock::now() + kEndDelay;
  {
    std::lock_guard lock(mutex_);
    retired_.push_back(std::move(ready));
  }
  retired_changed_.notify_all();
  if (!written) return execution.fail("sandbox setup", written.error());
  return execution.finish();
}

std::vector<WarmPoolStats> WarmPool::stats() const {
  std::lock_guard lock(mutex_);
  std::vector<WarmPoolStats> all;
  for (const auto& slot : slots_) {
    size_t initialised = 0;
    uint64_t memory = 0;
    for (const auto& item : slot->ready) {
      if (!item->interpreter->ready()) continue;
      ++initialised;
      memory += item->interpreter->memory_usage_bytes();
    }
    all.push_back({slot->entry.runtime, slot->entry.policy, slot->entry.size, initialised,
                   slot->hits, slot->misses, slot->start_failures, slot->forking,
                   slot->fork_server_starts, slot->forked_on_request, memory,
                   slot->fork_server ? slot->fork_server->memory_usage_bytes() : 0});
  }
  return all;
}

}  // namespace airlock::runner
