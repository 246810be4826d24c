// `airlock serve`: the execution API. Wires the pieces together (config, sandbox, runtimes,
// policies, audit log, execution service, HTTP server) and runs until SIGTERM.
#include <google/protobuf/stubs/logging.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/config.h"
#include "api/execution_service.h"
#include "api/executor.h"
#include "api/handler.h"
#include "api/log.h"
#include "api/metrics.h"
#include "api/policy_source.h"
#include "api/transport/server.h"
#include "cli/commands.h"
#include "cli/layout.h"
#include "policies/audit_log.h"
#include "policies/errors.h"
#include "policies/loader.h"
#include "policies/registry.h"
#include "runner/runner.h"
#include "runner/runtimes.h"
#include "runner/sessions.h"
#include "sandbox/sandbox.h"

namespace airlock::cli {
namespace {

constexpr int kUsageError = 2;
constexpr int kStartFailed = 1;

constexpr const char* kServeUsage =
    "usage: airlock serve [--config FILE] [--replica NAME] [--check-config]\n"
    "\n"
    "Serves the execution API over HTTP (see docs/api.md). Every setting has a default, so the\n"
    "config file is optional; without API keys every client may use every policy (logged).\n"
    "Policies, runtimes and drivers default to the ones installed beside the binary\n"
    "(<prefix>/etc/airlock, <prefix>/lib/airlock; man airlock).\n"
    "Logs go to stderr, one JSON object a line. SIGTERM or SIGINT: drain (report not ready,\n"
    "take no new work, close idle sessions), let running executions finish within\n"
    "shutdown_grace, then cancel them, close the other sessions and exit; a second SIGTERM or\n"
    "SIGINT cancels them at once. SIGHUP: reload policies and the config's api_keys (other\n"
    "settings take a restart).\n"
    "An audit log is written to <state_dir>/audit.jsonl unless audit_log says otherwise\n"
    "(airlock audit --help).\n"
    "--replica NAME: this replica's name behind a balancer (the config's replica setting;\n"
    "deploy/balancer/): session and execution ids carry it, so the balancer routes to it.\n"
    "--check-config: check the config, the files it names, the policies and the warm pool's\n"
    "entries without starting anything; exit 0 when the service would start, else 1.\n";

api::Logger* protobuf_log_target = nullptr;

// protobuf's own messages (e.g. a string that is not utf-8) would break the one-JSON-object-a-line
// log; they go through the service's logger instead.
void protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
  if (protobuf_log_target == nullptr) return;
  protobuf_log_target->log(
      level >= google::protobuf::LOGLEVEL_ERROR ? api::LogLevel::error : api::LogLevel::warning,
      "protobuf: " + message, {{"file", file}, {"line", static_cast<int64_t>(line)}});
}

// Fills the paths the config leaves unset with airlock's own files (cli/layout.h) and checks
// them; returns one line naming what is missing, or "". The fork library is checked by the warm
// pool, its only user, for the entries that fork.
std::string resolve_files(api::ServeConfig& config) {
  const bool runtimes_installed = config.runtimes_file.empty() && !std::getenv("AIRLOCK_RUNTIMES");
  const bool drivers_installed = config.drivers_dir.empty();
  if (config.runtimes_file.empty()) config.runtimes_file = default_runtimes_file();
  if (config.policy_dirs.empty()) config.policy_dirs = default_policy_dirs();
  if (config.drivers_dir.empty()) config.drivers_dir = own_layout().drivers_dir();
  if (config.fork_library.empty()) config.fork_library = own_layout().fork_library();
  for (const std::string& problem :
       {missing(config.runtimes_file, "runtimes file", "set runtimes_file in the config",
                runtimes_installed),
        missing(config.drivers_dir, "drivers directory", "set drivers_dir in the config",
                drivers_installed),
        missing_all(config.policy_dirs, "policy directory", "set policy_dirs in the config")}) {
    if (!problem.empty()) return problem;
  }
  // Bound into sandboxes, where a symlink would be recreated as one pointing outside.
  auto resolved = [](const std::string& path) {
    std::error_code error;
    const auto real = std::filesystem::canonical(path, error);
    return error ? path : real.string();
  };
  config.drivers_dir = resolved(config.drivers_dir);
  config.fork_library = resolved(config.fork_library);
  return "";
}

// The built-in warm pool names no policy: it runs under default_policy. serve and
// --check-config both read the pool after this.
void give_default_pool_its_policy(api::ServeConfig& config) {
  for (runner::WarmPoolEntry& entry : config.warm_pool) {
    if (entry.policy.empty()) entry.policy = config.default_policy;
  }
}

// `serve --check-config`: every check serve makes before it starts work, without starting any
// (no sandbox, no socket, no audit log). Prints each problem and a verdict; 0 when it would start.
int check_config(const std::string& config_path) {
  const std::string name = config_path.empty() ? "(no config: all defaults)" : config_path;
  api::ServeConfig config;
  if (!config_path.empty()) {
    api::ConfigResult loaded = api::load_config_file(config_path);
    if (!loaded.config) {
      std::fprintf(stderr, "%s\nINVALID %s\n", loaded.error.c_str(), name.c_str());
      return kStartFailed;
    }
    config = std::move(*loaded.config);
  }
  std::vector<std::string> problems;
  const std::string missing_file = resolve_files(config);
  if (!missing_file.empty()) problems.push_back(missing_file);
  struct in6_addr address {};
  if (::inet_pton(AF_INET, config.listen_address.c_str(), &address) != 1 &&
      ::inet_pton(AF_INET6, config.listen_address.c_str(), &address) != 1) {
    problems.push_back("listen: \"" + config.listen_address +
                       "\" is not an IP address (e.g. 127.0.0.1 or [::1])");
  }
  runner::RuntimeTable runtimes;
  if (missing_file.empty()) {
    if (auto loaded = runner::load_runtimes(config.runtimes_file); loaded) {
      runtimes = std::move(loaded.value());
    } else {
      problems.push_back("runtimes: " + loaded.error().message());
    }
    policies::PolicyRegistry registry(config.policy_dirs);
    for (const auto& error : registry.reload()) problems.push_back(error.format());
    if (!registry.get(config.default_policy)) {
      problems.push_back("default_policy: \"" + config.default_policy +
                         "\" is not among the policies loaded" +
                         policies::did_you_mean(config.default_policy, registry.names()));
    }
    give_default_pool_its_policy(config);
    for (const auto& entry : config.warm_pool) {
      if (!runtimes.empty() && !runtimes.contains(entry.runtime)) {
        problems.push_back("warm_pool: no runtime \"" + entry.runtime + "\"");
      }
      if (!registry.get(entry.policy)) {
        problems.push_back("warm_pool: no policy \"" + entry.policy + "\"" +
                           policies::did_you_mean(entry.policy, registry.names()));
      }
    }
  }
  if (const std::string audit = config.effective_audit_log(); !audit.empty()) {
    const std::string dir = audit.substr(0, audit.rfind('/'));
    // The state dir is made at start; any other directory must be there already.
    if (dir != config.state_dir && ::access(dir.empty() ? "/" : dir.c_str(), W_OK) != 0) {
      problems.push_back("audit_log: the directory " + dir + " does not exist or is not writable");
    }
    // serve appends to it: one already there must be a file (not a directory, a FIFO or a device).
    if (struct stat st{}; ::lstat(audit.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      problems.push_back("audit_log: " + audit + " is not a regular file");
    }
  }
  for (const auto& problem : problems) std::fprintf(stderr, "%s\n", problem.c_str());
  if (!problems.empty()) {
    std::fprintf(stdout, "INVALID %s (%zu %s)\n", name.c_str(), problems.size(),
                 problems.size() == 1 ? "problem" : "problems");
    return kStartFailed;
  }
  std::fprintf(stdout, "OK %s\n", name.c_str());
  return 0;
}

// SIGHUP's second half: the config's api_keys, re-read and put in force (a key added, revoked or
// rotated without a restart). An invalid config, or one with no keys where keys were, leaves
// the keys in force as they were. The other settings are not re-read: they take a restart.
void reload_api_keys(const std::string& config_path, api::Authenticator& auth,
                     policies::AuditLog* audit, api::Logger& log) {
  api::ConfigResult loaded = api::load_config_file(config_path);
  const std::vector<std::string> before = auth.names();
  std::string problem = loaded.config ? "" : loaded.error;
  if (loaded.config) {
    if (auto refused = auth.replace(loaded.config->api_keys)) problem = *refused;
  }
  if (!problem.empty()) {
    log.error("api keys not reloaded; the keys in force stay", {{"error", problem}});
  } else {
    log.info("api keys reloaded", {{"count", static_cast<uint64_t>(auth.names().size())}});
  }
  if (audit) audit->record_keys_reload(before, auth.names(), problem);
}

// Every policy in force with its hash (as new_hash).
std::vector<policies::PolicyChange> policy_hashes(const policies::PolicyRegistry& registry) {
  std::vector<policies::PolicyChange> out;
  for (const std::string& name : registry.names()) {
    if (auto policy = registry.get(name)) out.push_back({name, "", policy->hash});
  }
  return out;
}

// The policies whose hash differs between two policy_hashes() lists (both sorted by name):
// changed, added (no old hash) and removed (no new hash).
std::vector<policies::PolicyChange> changed_policies(
    const std::vector<policies::PolicyChange>& before,
    const std::vector<policies::PolicyChange>& after) {
  std::map<std::string, policies::PolicyChange> merged;
  for (const auto& policy : before) merged[policy.name] = {policy.name, policy.new_hash, ""};
  for (const auto& policy : after) {
    merged.try_emplace(policy.name, policies::PolicyChange{policy.name, "", ""});
    merged[policy.name].new_hash = policy.new_hash;
  }
  std::vector<policies::PolicyChange> out;
  for (auto& [name, change] : merged) {
    if (change.old_hash != change.new_hash) out.push_back(std::move(change));
  }
  return out;
}

}  // namespace

// Descriptors serve asks for: connections, their sandboxes' pipes, pidfds and cgroup dirs.
constexpr rlim_t kWantedOpenFiles = 65536;
constexpr int kLargeBufferBytes = 1024 * 1024;

int serve_command(int argc, char** argv) {
  std::string config_path;
  std::optional<std::string> replica;
  bool only_check = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kServeUsage, stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--check-config") == 0) {
      only_check = true;
      continue;
    }
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    if (std::strcmp(argv[i], "--replica") == 0 && i + 1 < argc) {
      replica = argv[++i];
      if (!runner::is_replica_name(*replica)) {
        std::fprintf(stderr,
                     "airlock serve: --replica '%s' is not a replica name; expected 1 to 32 of "
                     "a-z, 0-9 and '-', not starting with '-' (e.g. r1 or airlock-0)\n",
                     replica->c_str());
        return kUsageError;
      }
      continue;
    }
    std::fprintf(stderr, "airlock serve: unexpected argument '%s'\n\n%s", argv[i], kServeUsage);
    return kUsageError;
  }
  if (only_check) return check_config(config_path);

  // A client that goes away must not kill the service through a write to its socket or pipe.
  std::signal(SIGPIPE, SIG_IGN);
  // Room for the connection limit and the sandboxes' pipes: systemd's default soft limit of
  // 1024 descriptors would run out before api::kMaxConnections does.
  if (struct rlimit files {}; ::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, kWantedOpenFiles);
    (void)::setrlimit(RLIMIT_NOFILE, &files);
  }
  // Buffers of a MiB or more (bodies, results with files, their JSON) get pages of their own,
  // given back when freed. Left to glibc, the threshold rises after the first such free and the
  // next ones stay in the heaps of the handler threads: 4 results with files kept 460 MiB.
  (void)::mallopt(M_MMAP_THRESHOLD, kLargeBufferBytes);
  api::Logger log(std::cerr);
  protobuf_log_target = &log;
  google::protobuf::SetLogHandler(&protobuf_log);

  api::ServeConfig config;
  if (!config_path.empty()) {
    api::ConfigResult loaded = api::load_config_file(config_path);
    if (!loaded.config) {
      log.error("invalid config", {{"error", loaded.error}});
      return kStartFailed;
    }
    config = std::move(*loaded.config);
  }
  if (replica) config.replica = *replica;

  if (std::string problem = resolve_files(config); !problem.empty()) {
    log.error("missing file", {{"error", problem}});
    return kStartFailed;
  }
  std::string policy_dirs;
  for (const std::string& dir : config.policy_dirs) {
    policy_dirs += (policy_dirs.empty() ? "" : ":") + dir;
  }
  log.info("files", {{"runtimes_file", config.runtimes_file},
                     {"policy_dirs", policy_dirs},
                     {"drivers_dir", config.drivers_dir},
                     {"fork_library", config.fork_library}});
  auto runtimes = runner::load_runtimes(config.runtimes_file);
  if (!runtimes) {
    log.error("cannot load runtimes", {{"error", runtimes.error().message()}});
    return kStartFailed;
  }

  policies::PolicyRegistry registry(config.policy_dirs);
  std::vector<policies::PolicyError> policy_errors = registry.reload();
  for (const auto& error : policy_errors) log.error("policy error", {{"error", error.format()}});
  log.info("policies loaded", {{"count", static_cast<uint64_t>(registry.names().size())}});
  if (!registry.get(config.default_policy)) {
    log.warning("the default policy is not loaded; requests must name a policy",
                {{"default_policy", config.default_policy}});
  }

  sandbox::SandboxConfig sandbox_config;
  sandbox_config.state_dir = config.state_dir;
  auto sandbox = sandbox::Sandbox::create(sandbox_config);
  if (!sandbox) {
    log.error("cannot set up the sandbox", {{"error", sandbox.error().message()}});
    return kStartFailed;
  }

  // Opened once the sandbox has made state_dir, where it lives by default.
  std::unique_ptr<policies::AuditLog> audit;
  if (const std::string path = config.effective_audit_log(); !path.empty()) {
    policies::AuditFileOptions options;
    options.max_bytes = config.audit_log_max_bytes;
    options.keep = config.audit_log_keep;
    options.on_error = [&log](const std::string& problem) {
      log.error("audit log write failed", {{"error", problem}});
    };
    auto opened = policies::AuditLog::open(path, std::move(options));
    if (!opened) {
      log.error("cannot open the audit log (set audit_log to another path, or to off)",
                {{"error", opened.error().message()}});
      return kStartFailed;
    }
    audit = std::move(opened.value());
    log.info("audit log", {{"path", path}});
    audit->record_start(AIRLOCK_VERSION, policy_hashes(registry));
    audit->record_policy_errors(policy_errors);
  } else {
    log.warning("the audit log is off (audit_log: off)");
  }
  runner::Runner runner(**sandbox, std::move(runtimes.value()),
                        [&registry](const std::string& name) { return registry.get(name); },
                        config.drivers_dir);
  runner.gateway().configure(config.egress);
  // Declared before the executor and the execution service: it outlives every run using it.
  std::unique_ptr<runner::WarmPool> warm_pool;
  give_default_pool_its_policy(config);
  if (!config.warm_pool.empty()) {
    auto pool = runner::WarmPool::create(
        **sandbox, runner.runtimes(),
        [&registry](const std::string& name) { return registry.get(name); },
        {config.warm_pool, config.drivers_dir, config.fork_library, &runner.gateway()});
    if (pool) {
      warm_pool = std::move(pool.value());
    } else if (config.warm_pool_is_default) {
      // Not asked for: the service still serves, every run cold.
      log.warning("no default warm pool; every run starts cold",
                  {{"error", pool.error().message()}});
    } else {
      log.error("cannot set up the warm pool", {{"error", pool.error().message()}});
      return kStartFailed;
    }
  }
  api::RunnerExecutor executor(runner, warm_pool.get());
  api::RegistryPolicySource policy_source(registry);

  api::Authenticator auth(config.api_keys);
  if (auth.open()) {
    log.warning(
        "NO API KEYS CONFIGURED: every client that can reach this address may run code under "
        "every policy; add api_keys to the config before exposing the service",
        {{"address", config.listen_address}});
  }

  api::Metrics metrics;
  if (warm_pool) metrics.set_warm_pool([pool = warm_pool.get()] { return pool->stats(); });
  api::AuditHook audit_hook;
  if (audit) {
    audit_hook = [&audit](const std::string& id, const api::Job& job,
                          const runner::RunResult& run) {
      policies::RunRecord record{id, job.owner, job.request.runtime, job.session_id, job.client};
      if (run.network_used) {
        const egress::Usage& used = run.network.usage;
        record.network = {true, used.connections, used.refused, used.bytes_sent,
                          used.bytes_received, {}};
        for (const egress::Blocked& refused : run.network.blocked) {
          record.network.refused_destinations.emplace_back(refused.destination, refused.reason);
        }
      }
      audit->record_run(record, *job.policy, run.outcome);
    };
  }
  // Before the execution service, so it outlives the session leases queued jobs hold.
  runner::SessionSettings session_settings;
  session_settings.max_sessions = config.max_sessions;
  session_settings.max_sessions_per_owner = config.max_sessions_per_key;
  session_settings.default_idle_timeout = config.session_idle_timeout;
  session_settings.default_max_lifetime = config.session_max_lifetime;
  session_settings.cpu_time_budget = config.session_cpu_time;
  session_settings.drivers_dir = config.drivers_dir;
  session_settings.gateway = &runner.gateway();
  // One maker for both kinds of id: they share the process's incarnation (runner/ids.h).
  const runner::IdMaker ids(config.replica);
  session_settings.ids = ids;
  session_settings.max_idle_timeout =
      std::max(session_settings.max_idle_timeout, config.session_idle_timeout);
  session_settings.max_lifetime_ceiling =
      std::max(session_settings.max_lifetime_ceiling, config.session_max_lifetime);
  runner::SessionManager sessions(**sandbox, runner.runtimes(), session_settings);
  metrics.set_sessions([&sessions] { return sessions.size(); });
  // E2B-compatible workspaces (api/e2b/, docs/e2b.md), unless e2b.enabled is false.
  std::unique_ptr<runner::WorkspaceManager> workspaces;
  if (config.e2b.enabled) {
    runner::WorkspaceSettings workspace_settings;
    workspace_settings.max_workspaces = config.e2b.max_workspaces;
    workspace_settings.max_workspaces_per_owner = config.e2b.max_workspaces_per_key;
    workspace_settings.default_timeout = config.e2b.default_timeout;
    workspace_settings.max_timeout = config.e2b.max_timeout;
    workspace_settings.max_lifetime = config.e2b.max_lifetime;
    workspace_settings.cpu_time_budget = config.e2b.cpu_time;
    workspace_settings.home_size_bytes = config.e2b.home_size_bytes;
    workspace_settings.drivers_dir = config.drivers_dir;
    workspace_settings.gateway = &runner.gateway();
    if (audit) {
      workspace_settings.on_record = [&audit](const policies::WorkspaceRecord& record) {
        audit->record_workspace(record);
      };
    }
    workspace_settings.on_network = [&metrics](const std::string& policy,
                                               const egress::Report& report) {
      metrics.network_used(policy, report);
    };
    workspace_settings.ids = ids;
    workspace_settings.spares.per_policy = config.e2b.spares;
    workspace_settings.spares.warn = [&log](const std::string& message) { log.warning(message); };
    workspaces = std::make_unique<runner::WorkspaceManager>(**sandbox, runner.runtimes(),
                                                            workspace_settings);
    metrics.set_workspaces([&workspaces] { return workspaces->size(); },
                           [&workspaces] { return workspaces->spares_ready(); });
  }
  // The memory budget is split: half for results kept for lookups, half for request bodies, so
  // that neither can starve the other.
  api::MemoryBudget results_budget(config.memory_budget_bytes / 2);
  api::ExecutionService executions(executor,
                                   {config.effective_max_concurrent(), config.max_queued,
                                    config.recent_results, &results_budget, ids},
                                   metrics, log, audit_hook);
  api::ApiContext context{config, executor, policy_source, executions, auth, metrics, &sessions,
                          workspaces.get()};
  if (audit) {
    context.on_refused = [&audit](const policies::RefusalRecord& refusal) {
      audit->record_refusal(refusal);
    };
    context.on_workspace = [&audit](const policies::WorkspaceRecord& workspace) {
      audit->record_workspace(workspace);
    };
  }
  api::Api api(context);
  api::Server server(
      api, executions, metrics, log,
      {config.listen_address, config.listen_port, config.max_body_bytes, config.header_timeout,
       config.idle_timeout, config.heartbeat_interval, config.shutdown_grace,
       config.memory_budget_bytes / 2, config.trusted_proxies});
  if (!server.listen()) return kStartFailed;
  log.info("serving", {{"max_concurrent", static_cast<uint64_t>(config.effective_max_concurrent())},
                       {"max_queued", static_cast<uint64_t>(config.max_queued)},
                       {"cgroup", std::string((*sandbox)->cgroup_backend_name())},
                       {"replica", config.replica}});

  server.run([&] {
    const std::vector<policies::PolicyChange> before = policy_hashes(registry);
    std::vector<policies::PolicyError> errors = registry.reload();
    for (const auto& error : errors) {
      log.error("policy reload error; the previous version stays in force",
                {{"error", error.format()}});
    }
    metrics.policies_reloaded(errors.size());
    if (audit) {
      audit->record_policy_errors(errors);
      audit->record_reload(changed_policies(before, policy_hashes(registry)),
                           registry.names().size(), errors.size());
    }
    if (!config_path.empty()) reload_api_keys(config_path, auth, audit.get(), log);
    log.info("policies reloaded", {{"count", static_cast<uint64_t>(registry.names().size())},
                                   {"errors", static_cast<uint64_t>(errors.size())}});
    if (warm_pool) {
      const size_t refreshed =
          warm_pool->refresh([&registry](const std::string& name) { return registry.get(name); });
      if (refreshed > 0) {
        log.info("warm pool refilling under the reloaded policies",
                 {{"entries", static_cast<uint64_t>(refreshed)}});
      }
    }
  },
  [&sessions, &workspaces] {
    sessions.drain();
    if (workspaces) workspaces->drain();
  });
  google::protobuf::SetLogHandler(nullptr);
  protobuf_log_target = nullptr;
  return 0;
}

}  // namespace airlock::cli
