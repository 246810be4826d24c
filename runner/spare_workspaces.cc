#include "runner/spare_workspaces.h"

#include <algorithm>

#include "runner/live_workspace.h"

namespace airlock::runner {

using Clock = std::chrono::steady_clock;

namespace {

bool same_policy(const policies::Policy& a, const policies::Policy& b) {
  return a.name == b.name && a.hash == b.hash;
}

// Ends a workspace nobody holds and waits for its teardown (cgroup, mounts, home).
void end_spare(StartedWorkspace& spare) {
  spare.workspace->kill();
  spare = {};
}

}  // namespace

SpareWorkspaces::SpareWorkspaces(SpareSettings settings, Start start)
    : settings_(settings), start_(std::move(start)), thread_([this] { work(); }) {}

SpareWorkspaces::~SpareWorkspaces() {
  stop();
  if (thread_.joinable()) thread_.join();
}

std::optional<StartedWorkspace> SpareWorkspaces::take(
    const std::shared_ptr<const policies::Policy>& policy) {
  std::optional<StartedWorkspace> taken;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || settings_.per_policy == 0) return std::nullopt;
    auto kept = std::find_if(kept_.begin(), kept_.end(),
                             [&](const Kept& k) { return same_policy(*k.policy, *policy); });
    if (kept == kept_.end()) {
      kept_.push_front(Kept{policy, {}, {}, Clock::now()});
      // The least recently used policy beyond the bound loses its spares.
      if (kept_.size() > settings_.max_policies) {
        for (StartedWorkspace& spare : kept_.back().spares) retired_.push_back(std::move(spare));
        kept_.pop_back();
      }
    } else {
      kept_.splice(kept_.begin(), kept_, kept);
      kept_.front().used_at = Clock::now();
      auto& spares = kept_.front().spares;
      while (!spares.empty() && !taken) {
        StartedWorkspace spare = std::move(spares.front());
        spares.pop_front();
        // One whose agent ended since (out of memory, say) goes to the thread to be torn down.
        if (spare.workspace->alive()) {
          taken = std::move(spare);
        } else {
          retired_.push_back(std::move(spare));
        }
      }
    }
  }
  changed_.notify_one();
  return taken;
}

void SpareWorkspaces::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (Kept& kept : kept_) {
      for (StartedWorkspace& spare : kept.spares) retired_.push_back(std::move(spare));
    }
    kept_.clear();
  }
  changed_.notify_one();
  // The thread tears down what was retired, then ends; wait for it, so nothing outlives stop().
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

size_t SpareWorkspaces::ready() const {
  std::lock_guard lock(mutex_);
  size_t count = 0;
  for (const Kept& kept : kept_) count += kept.spares.size();
  return count;
}

void SpareWorkspaces::retire_stale(Clock::time_point now) {
  // Most recently used first: the unused ones are at the end.
  while (!kept_.empty() && now - kept_.back().used_at >= settings_.unused_after) {
    for (StartedWorkspace& spare : kept_.back().spares) retired_.push_back(std::move(spare));
    kept_.pop_back();
  }
  for (Kept& kept : kept_) {
    for (auto spare = kept.spares.begin(); spare != kept.spares.end();) {
      if (now - spare->ready_at >= settings_.max_age || !spare->workspace->alive()) {
        retired_.push_back(std::move(*spare));
        spare = kept.spares.erase(spare);
      } else {
        ++spare;
      }
    }
  }
}

SpareWorkspaces::Kept* SpareWorkspaces::short_of_spares(
    Clock::time_point now, std::optional<Clock::time_point>& next_look) {
  Kept* chosen = nullptr;
  for (Kept& kept : kept_) {
    const Clock::time_point unused = kept.used_at + settings_.unused_after;
    next_look = next_look ? std::min(*next_look, unused) : unused;
    for (const StartedWorkspace& spare : kept.spares) {
      const Clock::time_point ages_out = spare.ready_at + settings_.max_age;
      next_look = next_look ? std::min(*next_look, ages_out) : ages_out;
    }
    if (kept.spares.size() >= settings_.per_policy) continue;
    if (kept.retry_at > now) {
      next_look = next_look ? std::min(*next_look, kept.retry_at) : kept.retry_at;
    } else if (!chosen) {
      chosen = &kept;  // the most recently used first
    }
  }
  return chosen;
}

void SpareWorkspaces::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    const Clock::time_point now = Clock::now();
    if (!stopping_) retire_stale(now);
    if (!retired_.empty()) {
      std::vector<StartedWorkspace> ending = std::move(retired_);
      retired_.clear();
      lock.unlock();
      for (StartedWorkspace& spare : ending) end_spare(spare);
      lock.lock();
      continue;
    }
    if (stopping_) return;
    std::optional<Clock::time_point> next_look;
    Kept* kept = short_of_spares(now, next_look);
    if (!kept) {
      // Also looks every few seconds for a spare whose agent ended (its sandbox is then reaped).
      const Clock::time_point soon = now + std::chrono::seconds(5);
      changed_.wait_until(lock, next_look ? std::min(*next_look, soon) : soon);
      continue;
    }
    const std::shared_ptr<const policies::Policy> policy = kept->policy;
    lock.unlock();
    auto started = start_(*policy);
    lock.lock();
    if (auto* refused = std::get_if<SessionError>(&started)) {
      if (settings_.warn) {
        settings_.warn("a spare workspace for policy \"" + policy->name +
                       "\" did not start: " + refused->message);
      }
      for (Kept& k : kept_) {
        if (k.policy == policy) k.retry_at = Clock::now() + settings_.retry_after;
      }
      continue;
    }
    StartedWorkspace spare = std::move(std::get<StartedWorkspace>(started));
    // The policy may have fallen out of use (or the pool stopped) while the spare started.
    auto still =
        std::find_if(kept_.begin(), kept_.end(), [&](const Kept& k) { return k.policy == policy; });
    if (stopping_ || still == kept_.end()) {
      retired_.push_back(std::move(spare));
    } else {
      still->spares.push_back(std::move(spare));
    }
  }
}

}  // namespace airlock::runner
