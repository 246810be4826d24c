#include "runner/workspaces.h"

#include <algorithm>
#include <mutex>

#include "policies/audit_log.h"
#include "runner/agent_channel.h"
#include "runner/drivers.h"
#include "runner/live_workspace.h"
#include "runner/workspace_janitor.h"
#include "sandbox/readable.h"

namespace airlock::runner {

using std::chrono::milliseconds;

namespace {

constexpr const char* kHome = "/home/user";
constexpr const char* kAgent = "envd_agent.py";
// AIRLOCK_ENVS is one environment string: the kernel takes at most 128 KiB for one.
constexpr size_t kMaxEnvsJsonBytes = 64 * 1024;

SessionError refuse(SessionRefusal refusal, std::string message, std::string field = {}) {
  return SessionError{refusal, std::move(field), std::move(message)};
}

bool is_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return name.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
         std::string_view::npos;
}

// The workspace's environment as the agent reads it (a JSON object), or why it is refused.
std::variant<std::string, SessionError> envs_json(const std::map<std::string, std::string>& env) {
  std::string json = "{";
  for (const auto& [name, value] : env) {
    if (!is_env_name(name)) {
      return refuse(SessionRefusal::invalid,
                    "environment variable name \"" + name + "\" is not of [A-Za-z_][A-Za-z0-9_]*",
                    "envVars");
    }
    if (value.find('\0') != std::string::npos) {
      return refuse(SessionRefusal::invalid, "environment variable " + name + " holds a NUL byte",
                    "envVars");
    }
    json += (json.size() > 1 ? "," : "") + policies::json_string(name) + ":" +
            policies::json_string(value);
  }
  json += "}";
  if (json.size() > kMaxEnvsJsonBytes) {
    return refuse(
        SessionRefusal::invalid,
        "the environment variables take more than " + std::to_string(kMaxEnvsJsonBytes) + " bytes",
        "envVars");
  }
  return json;
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

void set_env(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::erase_if(env, [&](const std::string& e) { return e.starts_with(name + "="); });
  env.push_back(name + "=" + value);
}

// A workspace's registry entry: the workspace and what its owner is told about it.
struct WorkspaceEntry : SessionEntry {
  std::shared_ptr<LiveWorkspace> workspace;
  WorkspaceInfo info;  // all but the times, which the registry keeps
};

WorkspaceInfo info_of(const WorkspaceEntry& entry, const SessionInfo& kept) {
  WorkspaceInfo info = entry.info;
  info.id = kept.id;
  info.started_at = kept.created_at;
  info.ends_at = std::min(kept.idle_expires_at, kept.lifetime_ends_at);
  return info;
}

}  // namespace

WorkspaceManager::WorkspaceManager(sandbox::Sandbox& sandbox, const RuntimeTable& runtimes,
                                   WorkspaceSettings settings)
    : sandbox_(sandbox),
      runtimes_(runtimes),
      settings_(std::move(settings)),
      janitor_(std::make_shared<Janitor>([this](const std::string& id) {
        if (auto entry = registry_.find_any(id)) registry_.close(id, entry->owner);
      })),
      registry_(settings_.max_workspaces, settings_.max_workspaces_per_owner, settings_.ids,
                {"sb", "sandbox", "sandboxes", "kill one (DELETE /sandboxes/{id}) first"}) {
  if (settings_.spares.per_policy > 0) {
    spares_ = std::make_unique<SpareWorkspaces>(
        settings_.spares, [this](const policies::Policy& policy) { return start(policy, "{}"); });
  }
}

WorkspaceManager::~WorkspaceManager() {
  // Spares first: their thread starts workspaces with the members below.
  if (spares_) spares_->stop();
  // The janitor uses the registry; the registry, destroyed next, kills every workspace.
  janitor_->stop();
}

std::variant<StartedWorkspace, SessionError> WorkspaceManager::start(const policies::Policy& policy,
                                                                     const std::string& envs_json) {
  auto python = runtimes_.find("python");
  if (python == runtimes_.end() || python->second.run.empty()) {
    return refuse(SessionRefusal::setup_failed,
                  "workspaces need the python runtime, which this service does not have");
  }
  if (policy.egress.enabled() && settings_.gateway == nullptr) {
    return refuse(SessionRefusal::setup_failed,
                  "policy \"" + policy.name +
                      "\" has egress, and this service runs sandboxes without an egress gateway");
  }
  auto home = sandbox_.create_workspace(settings_.home_size_bytes);
  if (!home) return refuse(SessionRefusal::setup_failed, home.error().message());

  // -I -S: the agent imports only the standard library, from its own directory; the policy's
  // and the runtime's PYTHON* variables are for the programs it starts, not for it.
  const std::vector<std::string> argv = {python->second.run[0], "-I", "-S",
                                         std::string(kDriversSandboxDir) + "/" + kAgent};
  sandbox::Spec spec = driver_spec(policy, python->second, argv, settings_.drivers_dir);
  // The policy's time limits are for one execution; the workspace lives as long as it may (a
  // spare first waits for its owner), and uses at most its CPU budget over that life.
  spec.limits.wall_time =
      settings_.max_lifetime + settings_.spares.max_age + std::chrono::minutes(1);
  spec.limits.cpu_time = std::min(settings_.max_lifetime, settings_.cpu_time_budget);
  spec.limits.workdir_size_bytes = settings_.home_size_bytes;
  spec.filesystem.workdir = kHome;
  spec.host_workdir = home.value()->path();
  set_env(spec.env, "HOME", kHome);
  set_env(spec.env, "USER", "user");
  spec.user_name = "user";  // E2B's name for the sandbox's user, which its SDKs show and expect
  set_env(spec.env, "AIRLOCK_ENVS", envs_json);

  auto notice = std::make_shared<EndNotice>();
  auto channel = AgentChannel::create({}, [notice, janitor = std::weak_ptr<Janitor>(janitor_)] {
    std::string id;
    {
      std::lock_guard lock(notice->mutex);
      notice->ended = true;
      id = notice->id;
    }
    auto live_janitor = janitor.lock();
    if (live_janitor && !id.empty()) live_janitor->post(id);
  });
  auto link = link_for(
      settings_.gateway, policy.egress,
      [notice, record = settings_.on_record, name = policy.name,
       hash = policy.hash](const egress::Blocked& blocked) {
        policies::WorkspaceRecord refused{"workspace_connection_refused", "", "", name, hash};
        {
          std::lock_guard lock(notice->mutex);
          refused.workspace_id = notice->id;
          refused.key = notice->owner;
        }
        // A spare's own start-up is no one's code.
        if (!record || refused.workspace_id.empty()) return;
        refused.detail = blocked.destination + ": " + blocked.reason;
        record(refused);
      });
  if (link) {
    link->on_finished([count = settings_.on_network, name = policy.name](const egress::Report& r) {
      if (count) count(name, r);
    });
    channel->link_gateway(std::move(link));
  }
  auto live = sandbox_.start(spec, *channel);
  if (!live) return refuse(SessionRefusal::setup_failed, live.error().message());
  auto workspace =
      std::make_shared<LiveWorkspace>(channel, std::move(home.value()), std::move(live.value()));
  if (!channel->wait_ready(settings_.agent_start_timeout)) {
    workspace->kill();
    const bool ended = channel->ended();
    const std::string said = channel->diagnostics();
    return refuse(SessionRefusal::setup_failed,
                  "the workspace's agent " +
                      (ended ? std::string("ended as it started")
                             : "did not start within " +
                                   sandbox::format_duration(settings_.agent_start_timeout)) +
                      (said.empty() ? std::string(" and said nothing") : "; it said: " + said));
  }
  return StartedWorkspace{std::move(workspace), std::move(channel), std::move(notice),
                          std::chrono::steady_clock::now()};
}

std::optional<StartedWorkspace> WorkspaceManager::take_spare(const WorkspaceRequest& request,
                                                             const std::string& envs_json) {
  if (!spares_) return std::nullopt;
  auto spare = spares_->take(request.policy);
  if (!spare || request.env.empty()) return spare;
  AgentReply reply = spare->workspace->call_and_wait(
      "{\"op\":\"env.set\",\"envs\":" + envs_json + "}", settings_.agent_start_timeout);
  // Nobody but this service has spoken to the agent yet: its reply is as it wrote it.
  if (reply.delivered && reply.json.starts_with("{\"ok\":true")) return spare;
  spare->workspace->kill();
  return std::nullopt;  // a fresh one is started instead
}

size_t WorkspaceManager::spares_ready() const {
  return spares_ ? spares_->ready() : 0;
}

std::variant<WorkspaceInfo, SessionError> WorkspaceManager::create(
    const WorkspaceRequest& request) {
  auto python = runtimes_.find("python");
  if (python == runtimes_.end() || python->second.run.empty()) {
    return refuse(SessionRefusal::setup_failed,
                  "workspaces need the python runtime, which this service does not have");
  }
  if (!request.policy->allows_runtime("python")) {
    return refuse(SessionRefusal::invalid,
                  "policy \"" + request.policy->name +
                      "\" does not allow python, which runs a workspace's agent",
                  "policy");
  }
  const milliseconds timeout = request.timeout.value_or(settings_.default_timeout);
  if (timeout <= milliseconds(0) || timeout > settings_.max_timeout) {
    return refuse(
        SessionRefusal::invalid,
        "timeout must be above 0 and at most " + sandbox::format_duration(settings_.max_timeout),
        "timeout");
  }
  auto envs = envs_json(request.env);
  if (auto* refused = std::get_if<SessionError>(&envs)) return std::move(*refused);

  auto reserved = registry_.reserve(request.owner);
  if (auto* refused = std::get_if<SessionError>(&reserved)) return std::move(*refused);
  // Sandbox setup happens outside the registry's lock; the reservation holds the place.
  std::optional<StartedWorkspace> spare = take_spare(request, std::get<std::string>(envs));
  if (!spare) {
    auto fresh = start(*request.policy, std::get<std::string>(envs));
    if (auto* refused = std::get_if<SessionError>(&fresh)) return std::move(*refused);
    spare = std::move(std::get<StartedWorkspace>(fresh));
  }
  const std::shared_ptr<LiveWorkspace> workspace = spare->workspace;
  const std::shared_ptr<AgentChannel> channel = spare->channel;
  const std::shared_ptr<EndNotice> notice = spare->notice;
  spare.reset();

  auto entry = std::make_shared<WorkspaceEntry>();
  entry->owner = request.owner;
  entry->runtime = "python";
  entry->policy_name = request.policy->name;
  entry->policy_hash = request.policy->hash;
  entry->idle_timeout = timeout;
  entry->max_lifetime = settings_.max_lifetime;
  // The registry calls kill only while it holds the entry, which holds the workspace.
  entry->kill = [raw = entry.get()] { raw->workspace->kill(); };
  entry->workspace = workspace;
  WorkspaceInfo& info = entry->info;
  info.owner = request.owner;
  info.template_id = request.template_id;
  info.policy_name = request.policy->name;
  info.policy_hash = request.policy->hash;
  info.metadata = request.metadata;
  const uint32_t millicores = request.policy->limits.cpu_millicores;
  info.cpu_count = millicores == 0 ? 1 : std::max<uint32_t>(1, (millicores + 999) / 1000);
  info.memory_bytes = request.policy->limits.memory_max_bytes;
  info.disk_bytes = settings_.home_size_bytes;
  info.access_token = random_hex(16);

  auto added = registry_.add(std::move(std::get<SessionRegistry::Reservation>(reserved)), entry);
  if (auto* refused = std::get_if<SessionError>(&added)) return std::move(*refused);
  const SessionInfo& kept = std::get<SessionInfo>(added);
  // Nobody knows the id before create returns, so nobody can find the workspace before this.
  workspace->set_id(kept.id, request.owner);
  bool ended_already = false;
  {
    std::lock_guard lock(notice->mutex);
    notice->id = kept.id;
    notice->owner = request.owner;
    ended_already = notice->ended;
  }
  if (ended_already) {
    registry_.close(kept.id, request.owner);
    return refuse(SessionRefusal::setup_failed,
                  "the workspace's agent ended as it started: " + channel->diagnostics());
  }
  return info_of(*entry, kept);
}

std::variant<std::shared_ptr<Workspace>, SessionError> WorkspaceManager::find(
    const std::string& id, const std::string& owner) const {
  auto entry = std::static_pointer_cast<WorkspaceEntry>(registry_.find(id, owner));
  if (!entry) return registry_.missing(id);
  return std::shared_ptr<Workspace>(entry->workspace);
}

std::variant<std::shared_ptr<Workspace>, SessionError> WorkspaceManager::find_by_token(
    const std::string& id, std::string_view access_token) const {
  auto entry = std::static_pointer_cast<WorkspaceEntry>(registry_.find_any(id));
  // A wrong token answers as an unknown id does: it tells nothing of the workspace.
  if (!entry || !same_secret(entry->info.access_token, access_token)) {
    return registry_.missing(id);
  }
  return std::shared_ptr<Workspace>(entry->workspace);
}

bool WorkspaceManager::token_matches(const std::string& id, std::string_view access_token) const {
  return registry_.any_matches(id, [access_token](const SessionEntry& entry) {
    return same_secret(static_cast<const WorkspaceEntry&>(entry).info.access_token, access_token);
  });
}

std::optional<WorkspaceInfo> WorkspaceManager::info(const std::string& id,
                                                    const std::string& owner) const {
  auto entry = std::static_pointer_cast<WorkspaceEntry>(registry_.find(id, owner));
  auto kept = registry_.info(id, owner);
  if (!entry || !kept) return std::nullopt;
  return info_of(*entry, *kept);
}

std::vector<WorkspaceInfo> WorkspaceManager::list(const std::string& owner) const {
  std::vector<WorkspaceInfo> out;
  for (const SessionInfo& kept : registry_.list(owner)) {
    auto entry = std::static_pointer_cast<WorkspaceEntry>(registry_.find(kept.id, owner));
    if (entry) out.push_back(info_of(*entry, kept));  // else: removed meanwhile
  }
  return out;
}

bool WorkspaceManager::kill(const std::string& id, const std::string& owner) {
  return registry_.close(id, owner);
}

std::optional<SessionError> WorkspaceManager::set_timeout(const std::string& id,
                                                          const std::string& owner,
                                                          milliseconds timeout) {
  if (timeout <= milliseconds(0)) {
    return refuse(SessionRefusal::invalid, "timeout must be above 0", "timeout");
  }
  if (!registry_.set_timeout(id, owner, std::min(timeout, settings_.max_timeout))) {
    return registry_.missing(id);
  }
  return std::nullopt;
}

size_t WorkspaceManager::size() const {
  return registry_.size();
}

void WorkspaceManager::drain() {
  if (spares_) spares_->stop();
  registry_.drain();
}

}  // namespace airlock::runner
