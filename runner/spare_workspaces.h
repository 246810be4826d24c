// Spare workspaces: started ahead of demand, so that WorkspaceManager::create() hands over one
// whose agent is already ready instead of starting a sandbox and python (E2B's Sandbox.create()
// then costs milliseconds). Spares are kept for the policies most recently asked for, from the
// first create under each; a spare is nobody's until taken: its home is empty, its agent has
// answered no request, and the envs its owner asks for are sent at hand-over (the agent's
// env.set). Spares are extra to the workspace caps: at most per_policy x max_policies of them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "policies/policy.h"
#include "runner/session_registry.h"

namespace airlock::runner {

class AgentChannel;   // runner/agent_channel.h
class LiveWorkspace;  // runner/live_workspace.h

// Tells the manager which workspace's agent ended, once its id is known (never, for a spare).
struct EndNotice {
  std::mutex mutex;
  bool ended = false;
  std::string id;
  std::string owner;  // set with id
};

// A workspace whose agent is ready, not yet anyone's.
struct StartedWorkspace {
  std::shared_ptr<LiveWorkspace> workspace;
  std::shared_ptr<AgentChannel> channel;
  std::shared_ptr<EndNotice> notice;
  std::chrono::steady_clock::time_point ready_at;  // when its agent said it was ready
};

struct SpareSettings {
  size_t per_policy = 1;    // spares kept ready for each policy in use; 0: no spares at all
  size_t max_policies = 4;  // how many of the most recently used policies have spares
  // A spare ready for longer than this is replaced, so a hand-over never gives a workspace near
  // its end (the sandbox's wall-time limit allows for it).
  std::chrono::milliseconds max_age{std::chrono::minutes(10)};
  // A policy nobody created under for this long loses its spares (one replaced by a new version
  // of itself, say, which spares are then made for instead).
  std::chrono::milliseconds unused_after{std::chrono::hours(1)};
  // After a spare fails to start, the next try for that policy waits this long.
  std::chrono::milliseconds retry_after{std::chrono::seconds(5)};
  // Told why a spare did not start (the service's log); may be empty.
  std::function<void(const std::string&)> warn;
};

class SpareWorkspaces {
 public:
  // Starts one workspace under the policy, without envs; runs on the spares' own thread.
  using Start =
      std::function<std::variant<StartedWorkspace, SessionError>(const policies::Policy&)>;

  SpareWorkspaces(SpareSettings settings, Start start);
  // stop(), then joins the thread.
  ~SpareWorkspaces();
  SpareWorkspaces(const SpareWorkspaces&) = delete;
  SpareWorkspaces& operator=(const SpareWorkspaces&) = delete;

  // A ready spare started under this policy (the same name and hash), or none. Either way the
  // policy becomes the most recently used, so a spare is (re)made for it.
  std::optional<StartedWorkspace> take(const std::shared_ptr<const policies::Policy>& policy);
  // Kills every spare and makes no more (a draining replica, the service's stop). Waits for a
  // start under way.
  void stop();
  // Spares ready now.
  size_t ready() const;

 private:
  struct Kept {  // one policy in use and its spares, oldest first
    std::shared_ptr<const policies::Policy> policy;
    std::list<StartedWorkspace> spares;
    std::chrono::steady_clock::time_point retry_at;  // after a failed start
    std::chrono::steady_clock::time_point used_at;   // its last take
  };

  void work();
  // Under the lock: the policy whose spares run short and may be started now, else null; and the
  // time the thread must look again (a spare's end of age, a retry), if any.
  Kept* short_of_spares(std::chrono::steady_clock::time_point now,
                        std::optional<std::chrono::steady_clock::time_point>& next_look);
  // Under the lock: moves spares past their age, or whose agent ended, to retired_, and drops the
  // policies unused for settings_.unused_after.
  void retire_stale(std::chrono::steady_clock::time_point now);

  const SpareSettings settings_;
  const Start start_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::list<Kept> kept_;                   // most recently used first
  std::vector<StartedWorkspace> retired_;  // killed and torn down by the thread, off the lock
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is made
};

}  // namespace airlock::runner
