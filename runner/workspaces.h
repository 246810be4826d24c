// Workspaces: live sandboxes kept for minutes or hours, in which any number of processes run, files
// are read and written, and code-interpreter contexts keep their state (E2B's "sandboxes", served
// by api/e2b/). Each workspace is one sandbox of its own, under its owner's policy, with a writable
// home (/home/user) and the policy's read-only view of the host. Its program is the workspace
// agent (runner/drivers/envd_agent.py), which does the work inside; this layer carries the agent's
// requests, replies and events as lines of text and never parses what they say (docs/workspace_agent.md
// describes the protocol). Everything the agent writes is untrusted: code in the workspace runs as
// the same user and can speak on its channel.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policies/audit_log.h"
#include "policies/policy.h"
#include "runner/egress/gateway.h"
#include "runner/runtimes.h"
#include "runner/session_registry.h"
#include "runner/spare_workspaces.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

class GatewayHost;  // runner/gateway_link.h

// Service-wide settings; every value has a default.
struct WorkspaceSettings {
  size_t max_workspaces = 16;           // live workspaces in the whole service; beyond: 429
  size_t max_workspaces_per_owner = 4;  // per API key; beyond: 429
  std::chrono::milliseconds default_timeout{std::chrono::minutes(5)};  // E2B's default
  std::chrono::milliseconds max_timeout{std::chrono::hours(1)};    // a timeout asked for, at most
  std::chrono::milliseconds max_lifetime{std::chrono::hours(24)};  // since creation, whatever
  // CPU a workspace may use over its whole life, all processes together.
  std::chrono::milliseconds cpu_time_budget{std::chrono::minutes(30)};
  uint64_t home_size_bytes = 1024ull * 1024 * 1024;  // the tmpfs behind /home/user
  std::string drivers_dir;  // host directory of the drivers (runner/drivers/); required
  IdMaker ids;              // workspace ids ("sb_...") name the replica (runner/ids.h)
  // How long create() waits for a new workspace's agent to say it is ready.
  std::chrono::milliseconds agent_start_timeout{std::chrono::seconds(10)};
  // Workspaces started ahead of demand for each policy recently created under, which create()
  // hands over instead of starting one (runner/spare_workspaces.h); per_policy 0: none.
  SpareSettings spares;
  // The egress gateway, for workspaces whose policy has egress (Runner::gateway()); without it
  // such workspaces are refused.
  GatewayHost* gateway = nullptr;
  // For the audit log: a "workspace_connection_refused" record (detail "destination: reason")
  // per destination a workspace's code was refused, once it is someone's. Runs on the gateway's
  // thread and must not block. Empty: not recorded.
  std::function<void(const policies::WorkspaceRecord&)> on_record;
  // For /metrics: what a workspace's network carried and was refused, once it has ended, with
  // its policy's name. On the workspace's monitor thread. Empty: not counted.
  std::function<void(const std::string& policy, const egress::Report&)> on_network;
};

struct WorkspaceRequest {
  std::shared_ptr<const policies::Policy> policy;
  std::string owner;                                 // the API key's name
  std::optional<std::chrono::milliseconds> timeout;  // empty: the default
  std::string template_id;                           // reported back; only the base is served
  std::map<std::string, std::string> metadata;       // the client's, reported back
  std::map<std::string, std::string> env;            // for every process and context inside
};

// A workspace as its owner sees it.
struct WorkspaceInfo {
  std::string id;
  std::string owner;
  std::string template_id;
  std::string policy_name;
  std::string policy_hash;
  std::map<std::string, std::string> metadata;
  std::chrono::system_clock::time_point started_at;
  std::chrono::system_clock::time_point ends_at;  // when its timeout ends it, unless extended
  uint32_t cpu_count = 1;
  uint64_t memory_bytes = 0;  // the policy's memory limit
  uint64_t disk_bytes = 0;    // the home's size
  // The secret that sandbox traffic (E2B's envd and interpreter calls) presents instead of an API
  // key: random, made at creation, told only to the owner.
  std::string access_token;
};

// The agent's answer to one request, or why there is none.
struct AgentReply {
  bool delivered = false;  // false: the workspace ended (or the wait ran out) before it answered
  std::string json;        // the reply object, as the agent wrote it (when delivered)
  std::string error;       // why not (when not delivered)
  // Refused at once because too much already waits for the agent (requests in flight, or bytes
  // it has not read): the workspace lives on, and a later request may be taken.
  bool busy = false;
};

// A running workspace. Every method is thread-safe. Callbacks run on the workspace's reader
// thread, one at a time and in the order the agent wrote its lines: they must not block (post
// work elsewhere) and must not call wait-style methods of the same workspace.
class Workspace {
 public:
  virtual ~Workspace() = default;
  virtual const std::string& id() const = 0;
  // The API key's name that created it (empty for a spare nobody has taken yet).
  virtual const std::string& owner() const = 0;
  // Sends one request (a JSON object's text, without the id, which this adds) to the agent.
  // on_reply runs once: with the agent's reply, or undelivered when the workspace ends first.
  // A request refused at once (the workspace has ended, too many requests are in flight, the
  // text is not one line) gets its undelivered reply on the caller's thread, before call returns.
  // It runs before any line the agent writes after the reply is handled, so a subscription made
  // in it misses none of the events the request causes.
  virtual void call(std::string request_json, std::function<void(AgentReply)> on_reply) = 0;
  // call(), waiting at most `timeout` for the reply. For worker threads only.
  virtual AgentReply call_and_wait(std::string request_json, std::chrono::milliseconds timeout) = 0;

  // Dropping it ends the subscription; on_event is not called after the handle is destroyed.
  class Subscription {
   public:
    virtual ~Subscription() = default;
  };
  // Events under `key` ("p:<pid>", "r:<run_id>", "w:<watch_id>") reach on_event (the event
  // object's text) until the subscription is dropped; on_end runs once if the workspace ends
  // first (before subscribe returns, on the caller's thread, when it has already ended). Several
  // subscriptions to one key each get every event. A handle may be dropped in its own callback;
  // dropped elsewhere, its destructor waits for a callback of it that is running.
  virtual std::unique_ptr<Subscription> subscribe(std::string key,
                                                  std::function<void(std::string_view)> on_event,
                                                  std::function<void()> on_end) = 0;
  // True until the workspace is killed, times out or its agent ends.
  virtual bool alive() const = 0;
  // Resource use so far, for E2B's metrics and airlock's /metrics.
  virtual sandbox::Usage usage_so_far() = 0;
  virtual uint64_t memory_usage_bytes() = 0;
};

class WorkspaceManager {
 public:
  WorkspaceManager(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes,
                   WorkspaceSettings settings);
  // Kills every workspace.
  ~WorkspaceManager();
  WorkspaceManager(const WorkspaceManager&) = delete;
  WorkspaceManager& operator=(const WorkspaceManager&) = delete;

  // Starts a workspace and waits until its agent is ready. Refusals: too_many_sessions,
  // too_many_for_owner (429), invalid (a timeout out of range, a policy without python: 400),
  // setup_failed (500), shutting_down (503).
  std::variant<WorkspaceInfo, SessionError> create(const WorkspaceRequest& request);
  // Spare workspaces ready now (runner/spare_workspaces.h).
  size_t spares_ready() const;
  // The owner's workspace, or the refusal (not_found, lost, elsewhere) that says why not.
  std::variant<std::shared_ptr<Workspace>, SessionError> find(const std::string& id,
                                                              const std::string& owner) const;
  // The workspace whose access token this is (compared in constant time), for sandbox traffic,
  // which carries no API key; the refusal says why not (a wrong token answers not_found).
  std::variant<std::shared_ptr<Workspace>, SessionError> find_by_token(
      const std::string& id, std::string_view access_token) const;
  // Whether find_by_token would find it, without taking a reference to the workspace: cheap and
  // safe on an I/O thread (a reference dropped there could be the last, and end the sandbox).
  bool token_matches(const std::string& id, std::string_view access_token) const;
  std::optional<WorkspaceInfo> info(const std::string& id, const std::string& owner) const;
  std::vector<WorkspaceInfo> list(const std::string& owner) const;
  // Ends it now, with everything it held. False when it is not this owner's.
  bool kill(const std::string& id, const std::string& owner);
  // Its timeout ends `timeout` from now (at most max_timeout, and never past max_lifetime).
  std::optional<SessionError> set_timeout(const std::string& id, const std::string& owner,
                                          std::chrono::milliseconds timeout);
  size_t size() const;
  // For a replica told to stop: no new workspaces; the live ones are killed (their ids then
  // answer lost).
  void drain();

 private:
  class Janitor;
  // Starts a workspace under the policy with these envs (a JSON object's text) and waits for its
  // agent; nobody's yet.
  std::variant<StartedWorkspace, SessionError> start(const policies::Policy& policy,
                                                     const std::string& envs_json);
  // A spare with the request's envs sent to it, or none.
  std::optional<StartedWorkspace> take_spare(const WorkspaceRequest& request,
                                             const std::string& envs_json);
  sandbox::Sandbox& sandbox_;
  const RuntimeTable runtimes_;
  const WorkspaceSettings settings_;
  // Removes the workspaces whose agent ended, off the sandbox's thread; stopped first.
  std::shared_ptr<Janitor> janitor_;
  SessionRegistry registry_;
  // Last: its thread starts workspaces with the members above, and is stopped first.
  std::unique_ptr<SpareWorkspaces> spares_;
};

}  // namespace airlock::runner
