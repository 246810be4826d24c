// Sessions: an interpreter and a working directory kept between executions, for agents that load
// data in one call and use it in the next. Each session is one sandbox of its own (its policy's
// limits cover the whole session), owned by the API key that made it, and removed with everything
// it held when it is closed, sits idle too long, or reaches its maximum lifetime.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "policies/policy.h"
#include "runner/runner.h"
#include "runner/runtimes.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

// Service-wide settings; every value has a default.
struct SessionSettings {
  size_t max_sessions = 16;           // live sessions in the whole service; beyond: refused
  size_t max_sessions_per_owner = 4;  // live sessions per API key; beyond: refused
  std::chrono::milliseconds default_idle_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds max_idle_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds default_max_lifetime{std::chrono::hours(1)};
  std::chrono::milliseconds max_lifetime_ceiling{std::chrono::hours(12)};
  // CPU a session may use over its whole life, all executions together; each execution is
  // bounded by its policy's cpu_time as well.
  std::chrono::milliseconds cpu_time_budget{std::chrono::minutes(10)};
  std::string drivers_dir;  // host directory of the drivers (runner/drivers/); required
  IdMaker ids;              // session ids name the replica (runner/ids.h)
};

struct SessionRequest {
  std::string runtime;
  std::shared_ptr<const policies::Policy> policy;
  std::string owner;                                      // the API key's name
  std::optional<std::chrono::milliseconds> idle_timeout;  // empty: the default
  std::optional<std::chrono::milliseconds> max_lifetime;  // empty: the default
};

// A session as its owner sees it. Times are wall-clock, for reporting.
struct SessionInfo {
  std::string id;  // "se_" [replica "_"] 24 hex digits (runner/ids.h)
  std::string runtime;
  std::string policy_name;
  std::string policy_hash;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds max_lifetime{0};
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point last_used_at;     // end of the last use (creation at first)
  std::chrono::system_clock::time_point idle_expires_at;  // if not used again before
  std::chrono::system_clock::time_point lifetime_ends_at;  // whatever happens
  bool busy = false;  // an execution runs or waits in the queue
  uint64_t executions = 0;
  uint64_t interpreter_restarts = 0;  // times state was lost and a fresh interpreter started
};

enum class SessionRefusal {
  too_many_sessions,   // the service's cap (429)
  too_many_for_owner,  // the API key's cap (429)
  invalid,             // runtime without session support, a timeout out of range (400)
  setup_failed,        // the sandbox could not be made (500)
  not_found,           // no such session for this owner (404)
  busy,                // an execution already runs in it (409)
  lost,                // it was here, and is gone with its state: a restart or a drain (410)
  elsewhere,           // its id names another replica: a balancer sent it to the wrong one (421)
  shutting_down,       // the replica is draining and takes no new sessions (503)
};

struct SessionError {
  SessionRefusal refusal;
  std::string field;  // with invalid: the request field at fault
  std::string message;
};

class SessionManager;
struct SessionState;

// The right to run one execution in a session: at most one exists per session at a time.
// Dropping it (run or not) frees the session and starts its idle clock.
class SessionLease {
 public:
  ~SessionLease();
  SessionLease(const SessionLease&) = delete;
  SessionLease& operator=(const SessionLease&) = delete;
  const std::string& session_id() const;

 private:
  friend class SessionManager;
  SessionLease(SessionManager& manager, std::shared_ptr<SessionState> state);
  SessionManager& manager_;
  std::shared_ptr<SessionState> state_;
};

// A file in a session's working directory.
struct SessionFile {
  std::string path;
  uint64_t size_bytes = 0;
};

class SessionManager {
 public:
  SessionManager(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes, SessionSettings settings);
  // Removes every session (killing their sandboxes).
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  // Runtimes that sessions support (of those in the table).
  std::vector<std::string> runtimes() const;

  std::variant<SessionInfo, SessionError> create(const SessionRequest& request);
  std::optional<SessionInfo> info(const std::string& id, const std::string& owner) const;
  std::vector<SessionInfo> list(const std::string& owner) const;
  // Removes the session now, killing a running execution. False when it is not this owner's.
  bool close(const std::string& id, const std::string& owner);

  // Takes the session for one execution; busy when another holds it.
  std::variant<std::shared_ptr<SessionLease>, SessionError> acquire(const std::string& id,
                                                                    const std::string& owner);
  // The session's policy (to name the result and validate requests against).
  std::shared_ptr<const policies::Policy> policy_of(const SessionLease& lease) const;

  // Runs request.code in the session's interpreter (request.runtime is ignored). Writes
  // request.files first and collects request.output_globs after. When an earlier execution ended
  // the interpreter, says so in the result's summary and starts a fresh one; files are kept.
  RunResult execute(SessionLease& lease, const RunRequest& request, const EventSink& sink,
                    int cancel_fd);

  // Files of the working directory (at most kMaxOutputFiles), one file, or a file written.
  // Each counts as use of the session.
  std::variant<std::vector<SessionFile>, SessionError> list_files(const std::string& id,
                                                                  const std::string& owner);
  std::variant<OutputFile, SessionError> read_file(const std::string& id, const std::string& owner,
                                                   const std::string& path, uint64_t max_bytes);
  std::optional<SessionError> write_file(const std::string& id, const std::string& owner,
                                         const std::string& path, std::string_view content);

  size_t size() const;

  // Why a session id that find() misses is missing: not_found (closed, expired, never made),
  // lost (made by this replica before it restarted, or closed by a drain) or elsewhere (another
  // replica's). The error's message says what the client can do.
  SessionError missing(const std::string& id) const;

  // For a replica told to stop: takes no new sessions (shutting_down), closes the idle ones now
  // and each busy one when its execution ends. Their ids then answer lost.
  void drain();

 private:
  friend class SessionLease;
  void release(SessionState& state);
  std::shared_ptr<SessionState> find(const std::string& id, const std::string& owner) const;  // with mutex_ held
  // find() under mutex_; an idle session's use counts as activity (its idle deadline moves).
  std::shared_ptr<SessionState> touch(const std::string& id, const std::string& owner);
  SessionInfo info_of(const SessionState& state) const;  // with mutex_ held
  void reap();                                           // the expiry thread
  sandbox::Spec spec_for(const SessionState& state) const;

  sandbox::Sandbox& sandbox_;
  RuntimeTable runtimes_;
  SessionSettings settings_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<SessionState>> sessions_;
  size_t reserved_ = 0;  // being created, counted against the service's cap
  std::map<std::string, size_t> reserved_by_owner_;
  bool stopping_ = false;
  std::atomic<bool> draining_{false};  // read by missing() with or without mutex_
  std::thread reaper_;
};

}  // namespace airlock::runner
