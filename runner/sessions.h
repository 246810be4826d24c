// Sessions: an interpreter and a working directory kept between executions, for agents that load
// data in one call and use it in the next. Each session is one sandbox of its own (its policy's
// limits cover the whole session), owned by the API key that made it, and removed with everything
// it held when it is closed, sits idle too long, or reaches its maximum lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "policies/policy.h"
#include "runner/runner.h"
#include "runner/runtimes.h"
#include "runner/session_registry.h"
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
  // The egress gateway, for sessions whose policy has egress (Runner::gateway()); without it
  // such sessions are refused.
  GatewayHost* gateway = nullptr;
};

struct SessionRequest {
  std::string runtime;
  std::shared_ptr<const policies::Policy> policy;
  std::string owner;                                      // the API key's name
  std::optional<std::chrono::milliseconds> idle_timeout;  // empty: the default
  std::optional<std::chrono::milliseconds> max_lifetime;  // empty: the default
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
  SessionLease(SessionRegistry::Lease lease, std::shared_ptr<SessionState> state);
  // In this order: state_ goes first, so that lease_ holds the last reference a closed session
  // may have, which the registry's reaper then drops (SessionRegistry::retire).
  SessionRegistry::Lease lease_;         // frees the session when dropped
  std::shared_ptr<SessionState> state_;  // the same session, with what runs in it
};

// A file in a session's working directory.
struct SessionFile {
  std::string path;
  uint64_t size_bytes = 0;
};
struct SessionFileList {
  std::vector<SessionFile> files;
  // Not every file is listed: there are more than kMaxOutputFiles, or the walk stopped after
  // kMaxWalkedEntries directory entries (runner/workdir.h).
  bool truncated = false;
};

// Less CPU than this left of a session's budget cannot start an interpreter worth starting.
inline constexpr std::chrono::milliseconds kLeastCpuForInterpreter{100};

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
  std::variant<SessionFileList, SessionError> list_files(const std::string& id,
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
  // registry_.touch() for what runs in the session.
  std::shared_ptr<SessionState> touch(const std::string& id, const std::string& owner);
  sandbox::Spec spec_for(const SessionState& state) const;
  // The CPU a session may use over its life, across the interpreters it starts; spent when
  // less than kLeastCpuForInterpreter of it is left.
  std::chrono::milliseconds cpu_budget(const SessionState& state) const;
  bool budget_spent(std::chrono::milliseconds spent, const SessionState& state) const;

  sandbox::Sandbox& sandbox_;
  RuntimeTable runtimes_;
  SessionSettings settings_;
  SessionRegistry registry_;
};

}  // namespace airlock::runner
