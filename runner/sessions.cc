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

// A session's registry entry with what runs in it. The registry knows it only as a SessionEntry
// whose kill() ends the interpreter.
struct SessionState : SessionEntry {
  std::shared_ptr<const policies::Policy> policy;

  // Used only by the lease holder, except kill() which anyone may call through `interpreter`.
  std::unique_ptr<sandbox::Workspace> workspace;
  std::mutex interpreter_mutex;
  std::unique_ptr<Interpreter> interpreter;
  std::string lost_because;  // why the last interpreter ended, until a fresh one reports it
  // CPU the session's ended interpreters used: a fresh one gets what is left of the budget, so
  // that ending the interpreter (on purpose or not) never renews it.
  std::chrono::milliseconds cpu_spent{0};

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

SessionLease::SessionLease(SessionRegistry::Lease lease, std::shared_ptr<SessionState> state)
    : lease_(std::move(lease)), state_(std::move(state)) {}

SessionLease::~SessionLease() = default;

const std::string& SessionLease::session_id() const {
  return state_->id;
}

SessionManager::SessionManager(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes,
                               SessionSettings settings)
    : sandbox_(sandbox),
      runtimes_(runtimes),
      settings_(std::move(settings)),
      registry_(settings_.max_sessions, settings_.max_sessions_per_owner, settings_.ids) {}

// The registry, destroyed first, kills every session.
SessionManager::~SessionManager() = default;

std::vector<std::string> SessionManager::runtimes() const {
  std::vector<std::string> names;
  for (const auto& [name, runtime] : runtimes_) {
    if (!runtime.run.empty() && driver_argv(name, runtime.run[0])) names.push_back(name);
  }
  return names;
}

std::chrono::milliseconds SessionManager::cpu_budget(const SessionState& state) const {
  return std::min(state.max_lifetime, settings_.cpu_time_budget);
}

bool SessionManager::budget_spent(std::chrono::milliseconds spent,
                                  const SessionState& state) const {
  // What is left after the monitor ended an interpreter at the budget is a rounding (usage is
  // counted in whole milliseconds): too little to start another, which would die starting.
  return spent + kLeastCpuForInterpreter >= cpu_budget(state);
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
  spec.limits.cpu_time = cpu_budget(state) - state.cpu_spent;
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
  if (request.policy->egress.enabled() && settings_.gateway == nullptr) {
    return refuse(SessionRefusal::setup_failed,
                  "policy \"" + request.policy->name +
                      "\" has egress, and this service runs sessions without an egress gateway");
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
  state->owner = request.owner;
  state->runtime = request.runtime;
  state->policy = request.policy;
  state->policy_name = request.policy->name;
  state->policy_hash = request.policy->hash;
  // The registry calls kill only while it holds the entry, so a plain pointer is safe (a shared
  // one would keep the entry alive for ever).
  state->kill = [raw = state.get()] { raw->kill_interpreter(); };

  auto reserved = registry_.reserve(request.owner);
  if (auto* refused = std::get_if<SessionError>(&reserved)) return std::move(*refused);
  // Sandbox setup happens outside the registry's lock; the reservation holds the place.
  auto workspace = sandbox_.create_workspace(request.policy->limits.workdir_size_bytes);
  if (!workspace) return refuse(SessionRefusal::setup_failed, workspace.error().message());
  state->workspace = std::move(workspace.value());
  auto interpreter = Interpreter::start(sandbox_, spec_for(*state),
                                        link_for(settings_.gateway, state->policy->egress));
  if (!interpreter) return refuse(SessionRefusal::setup_failed, interpreter.error().message());
  state->interpreter = std::move(interpreter.value());
  return registry_.add(std::move(std::get<SessionRegistry::Reservation>(reserved)), state);
}

std::shared_ptr<SessionState> SessionManager::touch(const std::string& id,
                                                    const std::string& owner) {
  return std::static_pointer_cast<SessionState>(registry_.touch(id, owner));
}

std::optional<SessionInfo> SessionManager::info(const std::string& id,
                                                const std::string& owner) const {
  return registry_.info(id, owner);
}

std::vector<SessionInfo> SessionManager::list(const std::string& owner) const {
  return registry_.list(owner);
}

size_t SessionManager::size() const {
  return registry_.size();
}

bool SessionManager::close(const std::string& id, const std::string& owner) {
  return registry_.close(id, owner);
}

SessionError SessionManager::missing(const std::string& id) const {
  return registry_.missing(id);
}

void SessionManager::drain() {
  registry_.drain();
}

std::variant<std::shared_ptr<SessionLease>, SessionError> SessionManager::acquire(
    const std::string& id, const std::string& owner) {
  auto acquired = registry_.acquire(id, owner);
  if (auto* refused = std::get_if<SessionError>(&acquired)) return std::move(*refused);
  auto& lease = std::get<SessionRegistry::Lease>(acquired);
  auto state = std::static_pointer_cast<SessionState>(lease.entry());
  return std::shared_ptr<SessionLease>(new SessionLease(std::move(lease), std::move(state)));
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
  if (!registry_.begin_execution(state)) {
    return execution.fail("session setup", {"the session was closed", 0});
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
        state.cpu_spent += state.interpreter->cpu_used();
        state.interpreter.reset();
      }
      if (budget_spent(state.cpu_spent, state)) {
        return execution.fail(
            "session setup",
            {"the session has used its CPU budget (" + sandbox::format_duration(cpu_budget(state)) +
                 " over its life), so no fresh interpreter can start; its files can still be "
                 "read. Create a new session to run more code",
             0});
      }
      auto fresh = Interpreter::start(sandbox_, spec_for(state),
                                      link_for(settings_.gateway, state.policy->egress));
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
  // Closed while starting: the close could not reach the fresh interpreter.
  if (registry_.closed(state)) interpreter->kill();

  InterpreterResult ran = interpreter->execute(execution.interpreter_request());
  const bool ended = ran.interpreter_ended;
  execution.take(std::move(ran), interpreter->gateway());
  if (ended) {
    const bool closed = registry_.closed(state);
    const std::string why = closed ? "the session was closed or expired"
                                   : std::string(sandbox::to_string(result.outcome.status));
    state.lost_because = "the interpreter was ended by execution " + result.id + " (" + why + ")";
    const bool spent = budget_spent(state.cpu_spent + interpreter->cpu_used(), state);
    result.outcome.reason +=
        closed  ? "; the session is gone"
        : spent ? "; the interpreter was stopped: the session has used its CPU budget, so no "
                  "fresh interpreter can start (files in the working directory can still be "
                  "read)"
                : "; the interpreter was stopped and its state is lost (files in the working "
                  "directory are kept); the next execution starts a fresh interpreter";
  }
  result.files =
      collect_output_files(state.workspace->path(), request.output_globs, request.max_file_bytes);
  return execution.finish(note);
}

std::variant<SessionFileList, SessionError> SessionManager::list_files(const std::string& id,
                                                                       const std::string& owner) {
  std::shared_ptr<SessionState> state = touch(id, owner);
  if (!state) return missing(id);
  SessionFileList list;
  bool cut = false;
  // fnmatch without FNM_PATHNAME: "*" matches across '/', so this is every regular file.
  for (const OutputFile& file :
       collect_output_files(state->workspace->path(), {"*"}, 0, kMaxOutputFilesTotalBytes, &cut)) {
    list.files.push_back({file.path, file.size_bytes});
  }
  list.truncated = cut || list.files.size() >= kMaxOutputFiles;
  return list;
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

}  // namespace airlock::runner
