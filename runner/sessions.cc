#include "runner/sessions.h"

#include <filesystem>

#include "runner/drivers.h"
#include "runner/execution.h"
#include "runner/interpreter.h"
#include "runner/summary.h"
#include "runner/workdir.h"
#include "sandbox/readable.h"

namespace airlock::runner {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct SessionState {
  std::string id;
  std::string owner;
  std::string runtime;
  std::shared_ptr<const policies::Policy> policy;
  milliseconds idle_timeout{0};
  milliseconds max_lifetime{0};
  Clock::time_point created;
  SystemClock::time_point created_wall;
  Clock::time_point last_used;
  bool busy = false;
  bool closed = false;  // removed from the manager; an execution still running ends
  uint64_t executions = 0;
  uint64_t restarts = 0;

  // Used only by the lease holder, except kill() which anyone may call through `interpreter`.
  std::unique_ptr<sandbox::Workspace> workspace;
  std::mutex interpreter_mutex;
  std::unique_ptr<Interpreter> interpreter;
  std::string lost_because;  // why the last interpreter ended, until a fresh one reports it

  Clock::time_point idle_deadline() const { return last_used + idle_timeout; }
  Clock::time_point lifetime_deadline() const { return created + max_lifetime; }

  void kill_interpreter() {
    std::lock_guard lock(interpreter_mutex);
    if (interpreter) interpreter->kill();
  }
};

namespace {

SessionError refuse(SessionRefusal refusal, std::string message, std::string field = {}) {
  return SessionError{refusal, std::move(field), std::move(message)};
}

}  // namespace

SessionError SessionManager::missing(const std::string& id) const {
  const std::string& replica = settings_.ids.replica();
  const std::string here = replica.empty() ? "this service" : "replica " + replica;
  switch (settings_.ids.origin("se", id)) {
    case IdOrigin::other_replica: {
      const std::string_view owner = IdMaker::replica_of("se", id);
      return refuse(SessionRefusal::elsewhere,
                    "session \"" + id + "\" lives on " +
                        (owner.empty() ? std::string("a service without a replica name")
                                       : "replica " + std::string(owner)) +
                        ", not on " + here +
                        "; send its requests through the balancer, which routes them by the id");
    }
    case IdOrigin::earlier_run:
      return refuse(SessionRefusal::lost,
                    "session \"" + id + "\" is lost: " + here +
                        " restarted since it was created, and its variables and files went "
                        "with it; create a new session");
    case IdOrigin::this_run:
    case IdOrigin::not_an_id:
      break;
  }
  if (draining_) {
    return refuse(SessionRefusal::lost,
                  "session \"" + id + "\" is lost: " + here +
                      " is shutting down and has closed its sessions; create a new session");
  }
  return refuse(SessionRefusal::not_found,
                "no session \"" + id + "\" (it may have been closed or have expired)");
}

void SessionManager::drain() {
  std::vector<std::shared_ptr<SessionState>> idle;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->busy) {
        ++it;
        continue;
      }
      it->second->closed = true;
      idle.push_back(it->second);
      it = sessions_.erase(it);
    }
  }
  changed_.notify_all();
  for (auto& state : idle) state->kill_interpreter();
}

SessionLease::SessionLease(SessionManager& manager, std::shared_ptr<SessionState> state)
    : manager_(manager), state_(std::move(state)) {}

SessionLease::~SessionLease() {
  manager_.release(*state_);
}

const std::string& SessionLease::session_id() const {
  return state_->id;
}

SessionManager::SessionManager(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes,
                               SessionSettings settings)
    : sandbox_(sandbox), runtimes_(runtimes), settings_(std::move(settings)) {
  reaper_ = std::thread([this] { reap(); });
}

SessionManager::~SessionManager() {
  std::map<std::string, std::shared_ptr<SessionState>> sessions;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    sessions.swap(sessions_);
    for (auto& [id, state] : sessions) state->closed = true;
  }
  changed_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (auto& [id, state] : sessions) state->kill_interpreter();
}

std::vector<std::string> SessionManager::runtimes() const {
  std::vector<std::string> names;
  for (const auto& [name, runtime] : runtimes_) {
    if (!runtime.run.empty() && driver_argv(name, runtime.run[0])) names.push_back(name);
  }
  return names;
}

sandbox::Spec SessionManager::spec_for(const SessionState& state) const {
  sandbox::Spec spec =
      driver_spec(*state.policy, runtimes_.at(state.runtime),
                  *driver_argv(state.runtime, runtimes_.at(state.runtime).run[0]),
                  settings_.drivers_dir);
  // The policy's time limits apply to each execution (enforced by the interpreter); the sandbox
  // as a whole lives as long as the session may, and uses at most the session CPU budget (not
  // its lifetime, which the client chooses: up to 12 h of CPU).
  spec.limits.wall_time = state.max_lifetime + std::chrono::minutes(1);
  spec.limits.cpu_time = std::min(state.max_lifetime, settings_.cpu_time_budget);
  spec.host_workdir = state.workspace->path();
  return spec;
}

std::variant<SessionInfo, SessionError> SessionManager::create(const SessionRequest& request) {
  auto runtime = runtimes_.find(request.runtime);
  if (runtime == runtimes_.end() || runtime->second.run.empty() ||
      !driver_argv(request.runtime, runtime->second.run[0])) {
    std::string names;
    for (const auto& name : runtimes()) names += (names.empty() ? "" : ", ") + name;
    return refuse(
        SessionRefusal::invalid,
        "sessions do not support runtime \"" + request.runtime + "\"; they support: " + names,
        "runtime");
  }
  if (!request.policy->allows_runtime(request.runtime)) {
    return refuse(SessionRefusal::invalid,
                  "policy \"" + request.policy->name + "\" does not allow runtime \"" +
                      request.runtime + "\"",
                  "runtime");
  }
  auto state = std::make_shared<SessionState>();
  state->idle_timeout = request.idle_timeout.value_or(settings_.default_idle_timeout);
  state->max_lifetime = request.max_lifetime.value_or(settings_.default_max_lifetime);
  if (state->idle_timeout <= milliseconds(0) || state->idle_timeout > settings_.max_idle_timeout) {
    return refuse(SessionRefusal::invalid,
                  "idle_timeout must be above 0 and at most " +
                      sandbox::format_duration(settings_.max_idle_timeout),
                  "idle_timeout");
  }
  if (state->max_lifetime <= milliseconds(0) ||
      state->max_lifetime > settings_.max_lifetime_ceiling) {
    return refuse(SessionRefusal::invalid,
                  "max_lifetime must be above 0 and at most " +
                      sandbox::format_duration(settings_.max_lifetime_ceiling),
                  "max_lifetime");
  }
  state->id = settings_.ids.make("se");
  state->owner = request.owner;
  state->runtime = request.runtime;
  state->policy = request.policy;

  {
    std::lock_guard lock(mutex_);
    size_t owned = reserved_by_owner_[request.owner];
    for (const auto& [id, other] : sessions_) owned += other->owner == request.owner ? 1 : 0;
    if (draining_) {
      return refuse(SessionRefusal::shutting_down,
                    "this replica is shutting down and takes no new sessions; retry (a balancer "
                    "places it on another replica)");
    }
    if (sessions_.size() + reserved_ >= settings_.max_sessions) {
      return refuse(SessionRefusal::too_many_sessions, "the service already has its maximum of " +
                                                           std::to_string(settings_.max_sessions) +
                                                           " sessions; close one or retry later");
    }
    if (owned >= settings_.max_sessions_per_owner) {
      return refuse(SessionRefusal::too_many_for_owner,
                    "this API key already has its maximum of " +
                        std::to_string(settings_.max_sessions_per_owner) +
                        " sessions; close one (DELETE /v1/sessions/{id}) first");
    }
    ++reserved_;
    ++reserved_by_owner_[request.owner];
  }
  // Sandbox setup happens outside the lock; the reservation holds the place.
  std::optional<SessionError> failure;
  auto workspace = sandbox_.create_workspace(request.policy->limits.workdir_size_bytes);
  if (!workspace) {
    failure = refuse(SessionRefusal::setup_failed, workspace.error().message());
  } else {
    state->workspace = std::move(workspace.value());
    auto interpreter = Interpreter::start(sandbox_, spec_for(*state));
    if (!interpreter) {
      failure = refuse(SessionRefusal::setup_failed, interpreter.error().message());
    } else {
      state->interpreter = std::move(interpreter.value());
    }
  }
  std::lock_guard lock(mutex_);
  --reserved_;
  if (--reserved_by_owner_[request.owner] == 0) reserved_by_owner_.erase(request.owner);
  if (failure) return *failure;
  if (stopping_ || draining_) {
    return refuse(SessionRefusal::shutting_down,
                  "this replica is shutting down and takes no new sessions; retry (a balancer "
                  "places it on another replica)");
  }
  state->created = state->last_used = Clock::now();
  state->created_wall = SystemClock::now();
  sessions_[state->id] = state;
  changed_.notify_all();  // a new deadline for the reaper
  return info_of(*state);
}

SessionInfo SessionManager::info_of(const SessionState& state) const {
  SessionInfo info;
  info.id = state.id;
  info.runtime = state.runtime;
  info.policy_name = state.policy->name;
  info.policy_hash = state.policy->hash;
  info.idle_timeout = state.idle_timeout;
  info.max_lifetime = state.max_lifetime;
  const auto to_wall = [&](Clock::time_point t) {
    return state.created_wall +
           std::chrono::duration_cast<SystemClock::duration>(t - state.created);
  };
  info.created_at = state.created_wall;
  info.last_used_at = to_wall(state.last_used);
  info.idle_expires_at = to_wall(state.idle_deadline());
  info.lifetime_ends_at = to_wall(state.lifetime_deadline());
  info.busy = state.busy;
  info.executions = state.executions;
  info.interpreter_restarts = state.restarts;
  return info;
}

std::shared_ptr<SessionState> SessionManager::find(const std::string& id,
                                                   const std::string& owner) const {
  auto found = sessions_.find(id);
  if (found == sessions_.end() || found->second->owner != owner) return nullptr;
  return found->second;
}

std::shared_ptr<SessionState> SessionManager::touch(const std::string& id,
                                                    const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto state = find(id, owner);
  if (state && !state->busy) state->last_used = Clock::now();
  return state;
}

std::optional<SessionInfo> SessionManager::info(const std::string& id,
                                                const std::string& owner) const {
  std::lock_guard lock(mutex_);
  auto state = find(id, owner);
  if (!state) return std::nullopt;
  return info_of(*state);
}

std::vector<SessionInfo> SessionManager::list(const std::string& owner) const {
  std::lock_guard lock(mutex_);
  std::vector<SessionInfo> out;
  for (const auto& [id, state] : sessions_) {
    if (state->owner == owner) out.push_back(info_of(*state));
  }
  return out;
}

size_t SessionManager::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

bool SessionManager::close(const std::string& id, const std::string& owner) {
  std::shared_ptr<SessionState> state;
  {
    std::lock_guard lock(mutex_);
    state = find(id, owner);
    if (!state) return false;
    state->closed = true;
    sessions_.erase(id);
  }
  changed_.notify_all();
  state->kill_interpreter();
  // The sandbox and workspace go when the last holder (this, or a running execution) lets go.
  return true;
}

std::variant<std::shared_ptr<SessionLease>, SessionError> SessionManager::acquire(
    const std::string& id, const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto state = find(id, owner);
  if (!state) return missing(id);
  if (state->busy) {
    return refuse(SessionRefusal::busy,
                  "session \"" + id +
                      "\" is already running an execution; a session runs one at a time, so "
                      "wait for it to finish (or cancel it) and send this again");
  }
  state->busy = true;
  return std::shared_ptr<SessionLease>(new SessionLease(*this, state));
}

void SessionManager::release(SessionState& state) {
  bool close_now = false;
  {
    std::lock_guard lock(mutex_);
    state.busy = false;
    state.last_used = Clock::now();
    // A drain closes a busy session once its execution ends.
    if (draining_ && !state.closed) {
      state.closed = close_now = true;
      sessions_.erase(state.id);
    }
  }
  changed_.notify_all();  // the idle clock starts now
  if (close_now) state.kill_interpreter();
}

std::shared_ptr<const policies::Policy> SessionManager::policy_of(const SessionLease& lease) const {
  return lease.state_->policy;
}

RunResult SessionManager::execute(SessionLease& lease, const RunRequest& request,
                                  const EventSink& sink, int cancel_fd) {
  SessionState& state = *lease.state_;
  Execution execution(request, *state.policy, state.runtime, sink,
                      interpreter_limits(*state.policy, request.limits), cancel_fd);
  RunResult& result = execution.result();
  std::string note;
  {
    std::lock_guard lock(mutex_);
    if (state.closed) return execution.fail("session setup", {"the session was closed", 0});
    ++state.executions;
  }
  for (size_t i = 0; i < request.files.size(); ++i) {
    const InputFile& file = request.files[i];
    if (auto s = write_workspace_file(*state.workspace, file.path, file.content, file.executable);
        !s) {
      if (auto refused =
              refused_input_file(i, file, s.error(), "the session's working directory")) {
        execution.reject(*refused);
      }
      return execution.fail("session setup", s.error());
    }
  }

  Interpreter* interpreter = nullptr;
  {
    std::lock_guard lock(state.interpreter_mutex);
    if (!state.interpreter || !state.interpreter->alive()) {
      if (state.interpreter) {
        state.lost_because =
            state.lost_because.empty() ? "the interpreter ended" : state.lost_because;
        state.interpreter.reset();
      }
      auto fresh = Interpreter::start(sandbox_, spec_for(state));
      if (!fresh) return execution.fail("session setup", fresh.error());
      state.interpreter = std::move(fresh.value());
      ++state.restarts;
      note = "note: " + state.lost_because +
             ", so its state (variables, imports, definitions) was lost; the files in the "
             "working directory were kept, and this ran in a fresh interpreter.";
      state.lost_because.clear();
    }
    interpreter = state.interpreter.get();
  }
  {
    std::lock_guard lock(mutex_);
    // Closed while starting: the close could not reach the fresh interpreter.
    if (state.closed) interpreter->kill();
  }

  InterpreterResult ran = interpreter->execute(execution.interpreter_request());
  const bool ended = ran.interpreter_ended;
  execution.take(std::move(ran));
  if (ended) {
    bool closed;
    {
      std::lock_guard lock(mutex_);
      closed = state.closed;
    }
    const std::string why = closed ? "the session was closed or expired"
                                   : std::string(sandbox::to_string(result.outcome.status));
    state.lost_because = "the interpreter was ended by execution " + result.id + " (" + why + ")";
    result.outcome.reason +=
        closed ? "; the session is gone"
               : "; the interpreter was stopped and its state is lost (files in the working "
                 "directory are kept); the next execution starts a fresh interpreter";
  }
  result.files =
      collect_output_files(state.workspace->path(), request.output_globs, request.max_file_bytes);
  return execution.finish(note);
}

std::variant<std::vector<SessionFile>, SessionError> SessionManager::list_files(
    const std::string& id, const std::string& owner) {
  std::shared_ptr<SessionState> state = touch(id, owner);
  if (!state) return missing(id);
  std::vector<SessionFile> files;
  // fnmatch without FNM_PATHNAME: "*" matches across '/', so this is every regular file.
  for (const OutputFile& file : collect_output_files(state->workspace->path(), {"*"}, 0)) {
    files.push_back({file.path, file.size_bytes});
  }
  return files;
}

std::variant<OutputFile, SessionError> SessionManager::read_file(const std::string& id,
                                                                 const std::string& owner,
                                                                 const std::string& path,
                                                                 uint64_t max_bytes) {
  if (auto problem = check_relative_path(path)) {
    return refuse(SessionRefusal::invalid, "path '" + path + "' " + *problem, "path");
  }
  std::shared_ptr<SessionState> state = touch(id, owner);
  if (!state) return missing(id);
  auto found = read_workspace_file(state->workspace->path(), path, max_bytes);
  if (!found) {
    return refuse(SessionRefusal::not_found,
                  "no regular file '" + path + "' in the session's working directory");
  }
  return std::move(*found);
}

std::optional<SessionError> SessionManager::write_file(const std::string& id,
                                                       const std::string& owner,
                                                       const std::string& path,
                                                       std::string_view content) {
  if (auto problem = check_relative_path(path)) {
    return refuse(SessionRefusal::invalid, "path '" + path + "' " + *problem, "path");
  }
  std::shared_ptr<SessionState> state = touch(id, owner);
  if (!state) return missing(id);
  if (auto s = write_workspace_file(*state->workspace, path, content, false); !s) {
    // A full working directory, or a path through something that is not a directory.
    return refuse(SessionRefusal::invalid, s.error().message(), "path");
  }
  return std::nullopt;
}

void SessionManager::reap() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    std::vector<std::shared_ptr<SessionState>> expired;
    Clock::time_point next = now + std::chrono::hours(1);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      SessionState& state = *it->second;
      // Idle means no execution runs: a long execution never counts as idle time.
      Clock::time_point deadline = state.lifetime_deadline();
      if (!state.busy) deadline = std::min(deadline, state.idle_deadline());
      if (deadline <= now) {
        state.closed = true;
        expired.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        next = std::min(next, deadline);
        ++it;
      }
    }
    if (!expired.empty()) {
      lock.unlock();
      // Killing and cleaning up (cgroup, workspace) takes time; nothing else waits for it.
      for (auto& state : expired) state->kill_interpreter();
      expired.clear();
      lock.lock();
      continue;
    }
    changed_.wait_until(lock, next);
  }
}

}  // namespace airlock::runner
