#include "runner/warm_pool.h"

#include <algorithm>
#include <filesystem>

#include "runner/session_interpreter.h"
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
constexpr std::chrono::seconds kForkServerRetry{30};
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

std::unique_ptr<WarmPool::Ready> WarmPool::fork_one(Slot& slot,
                                                   const std::shared_ptr<sandbox::ForkServer>& server,
                                                   const std::shared_ptr<const Setup>& setup,
                                                   bool background) {
  sandbox::Spec spec = setup->spec;
  spec.background = background;
  auto forked = Interpreter::fork(sandbox_, *server, spec);
  {
    std::lock_guard lock(mutex_);
    slot.forking = static_cast<bool>(forked);
  }
  if (!forked) return nullptr;
  auto ready = std::make_unique<Ready>();
  ready->setup = setup;
  ready->server = server;
  ready->workspace = std::move(forked->workspace);
  ready->interpreter = std::move(forked->interpreter);
  return ready;
}

std::unique_ptr<WarmPool::Ready> WarmPool::start_one(Slot& slot) {
  std::shared_ptr<const Setup> setup;
  std::shared_ptr<sandbox::ForkServer> server;
  {
    std::lock_guard lock(mutex_);
    setup = slot.setup;
    if (slot.fork_server_setup == setup) server = slot.fork_server;
  }
  if (slot.entry.refill == WarmPoolEntry::Refill::fork) {
    const bool may_start = std::chrono::steady_clock::now() >= slot.fork_server_retry;
    if ((!server || !server->alive()) && may_start) {
      // Only this thread replaces a server; executions forking from the old one keep it alive.
      auto started = sandbox_.start_fork_server(setup->fork_server_spec);
      // One that fails to start (a broken preload, say) is not tried again for a while: each try
      // can take the whole start timeout, and fresh starts serve meanwhile.
      if (!started) slot.fork_server_retry = std::chrono::steady_clock::now() + kForkServerRetry;
      server = started ? std::shared_ptr<sandbox::ForkServer>(std::move(started.value())) : nullptr;
      std::shared_ptr<sandbox::ForkServer> replaced;
      {
        std::lock_guard lock(mutex_);
        replaced = std::move(slot.fork_server);
        slot.fork_server = server;
        slot.fork_server_setup = setup;
        slot.fork_server_starts += server ? 1 : 0;
      }
      replaced.reset();  // stopping it (if nothing else holds it) takes a while: not under mutex_
    }
    if (server) {
      if (auto ready = fork_one(slot, server, setup, true)) return ready;
    }
    // No fork server (it failed to start, or to fork): this one starts fresh.
  }
  auto ready = std::make_unique<Ready>();
  ready->setup = setup;
  auto workspace = sandbox_.create_workspace(setup->policy->limits.workdir_size_bytes);
  if (!workspace) return nullptr;
  ready->workspace = std::move(workspace.value());
  sandbox::Spec spec = setup->spec;
  spec.host_workdir = ready->workspace->path();
  spec.background = true;
  auto interpreter = Interpreter::start(sandbox_, spec);
  if (!interpreter) return nullptr;
  ready->interpreter = std::move(interpreter.value());
  return ready;
}

size_t WarmPool::refresh(const PolicyLookup& lookup) {
  size_t refreshed = 0;
  for (auto& slot : slots_) {
    auto policy = lookup ? lookup(slot->entry.policy) : nullptr;
    {
      std::lock_guard lock(mutex_);
      // A policy that is gone or no longer allows the runtime: the pool keeps what it has,
      // which requests under the new version (a different hash) no longer match.
      if (!policy || policy->hash == slot->setup->policy->hash ||
          !policy->allows_runtime(slot->entry.runtime)) {
        continue;
      }
    }
    auto setup = make_setup(*slot, policy);
    std::lock_guard lock(mutex_);
    slot->setup = setup;
    for (auto& stale : slot->ready) retired_.push_back(std::move(stale));
    slot->ready.clear();
    ++refreshed;
  }
  retired_changed_.notify_all();
  wanted_.notify_all();
  return refreshed;
}

void WarmPool::refill_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    Slot* short_slot = nullptr;
    for (auto& slot : slots_) {
      // Ready sandboxes that died meanwhile (their lifetime ran out) are replaced.
      std::erase_if(slot->ready, [](const auto& r) { return !r->interpreter->alive(); });
      if (slot->ready.size() + slot->starting < slot->entry.size) short_slot = slot.get();
    }
    if (short_slot == nullptr) {
      wanted_.wait_for(lock, std::chrono::seconds(5));
      continue;
    }
    ++short_slot->starting;
    lock.unlock();
    std::unique_ptr<Ready> ready = start_one(*short_slot);
    lock.lock();
    --short_slot->starting;
    if (ready && ready->setup != short_slot->setup) {
      retired_.push_back(std::move(ready));  // made under a policy reloaded meanwhile
      retired_changed_.notify_all();
    } else if (ready) {
      short_slot->ready.push_back(std::move(ready));
    } else {
      ++short_slot->start_failures;
      // Do not spin on a failing start (a full disk, a broken policy): wait for a reason.
      wanted_.wait_for(lock, std::chrono::seconds(1));
    }
  }
}

void WarmPool::end_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (retired_.empty()) {
      if (stopping_) return;
      retired_changed_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    auto first_due = std::chrono::steady_clock::time_point::max();
    std::vector<std::unique_ptr<Ready>> due;
    for (auto& ready : retired_) {
      if (stopping_ || ready->end_after <= now) {
        due.push_back(std::move(ready));
      } else {
        first_due = std::min(first_due, ready->end_after);
      }
    }
    std::erase(retired_, nullptr);
    if (due.empty()) {
      retired_changed_.wait_until(lock, first_due);
      continue;
    }
    lock.unlock();
    for (auto& ready : due) {
      if (ready->interpreter) ready->interpreter->kill();  // all at once, then wait for each
    }
    due.clear();  // each sandbox, then its working dir
    lock.lock();
    wanted_.notify_all();  // their places can be refilled now, with the cores free again
  }
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

  InterpreterExecution execution(request, policy, request.runtime, sink, cancel_fd);
  // A refill warms up in the background (its cgroup at the lowest CPU weight), so that it never
  // takes a core from a running request; serving one, it is a request's sandbox like any other.
  sandbox::Status written = ready->interpreter->to_foreground();
  for (const InputFile& file : request.files) {
    if (written) {
      written = write_workspace_file(*ready->workspace, file.path, file.content, file.executable);
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
    execution.take(ready->interpreter->execute(run));
    execution.result.files = collect_output_files(ready->workspace->path(), request.output_globs,
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
  if (!written) return execution.fail("sandbox setup", written.error().message());
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
