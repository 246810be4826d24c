// Keeping a warm pool full: a fork server per slot (replaced when it dies, retried after a
// failed start), one refill at a time in the background, and the end of every sandbox that was
// used or went stale, a little after its result is on its way.
#include <algorithm>

#include "runner/warm_pool.h"
#include "runner/warm_pool_parts.h"

namespace airlock::runner {
namespace {

// How long after a failed start a fork server is tried again (start_one).
constexpr std::chrono::seconds kForkServerRetry{30};

}  // namespace

std::unique_ptr<WarmPool::Ready> WarmPool::fork_one(
    Slot& slot, const std::shared_ptr<sandbox::ForkServer>& server,
    const std::shared_ptr<const Setup>& setup, bool background) {
  sandbox::Spec spec = setup->spec;
  spec.background = background;
  auto forked = Interpreter::fork(sandbox_, *server, spec,
                                  link_for(settings_.gateway, setup->policy->egress));
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
  auto interpreter =
      Interpreter::start(sandbox_, spec, link_for(settings_.gateway, setup->policy->egress));
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

}  // namespace airlock::runner
