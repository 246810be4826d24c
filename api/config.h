// The settings of `airlock serve`, read from YAML. Every setting has a default, so the service
// also starts with no file at all; unknown keys are errors, so a typo never silently does nothing.
#pragma once

#include "policies/audit_file.h"
#include "policies/egress.h"
#include "runner/egress/gateway.h"
#include "runner/warm_pool.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace airlock::api {

inline constexpr const char* kDefaultListenAddress = "127.0.0.1";
inline constexpr uint16_t kDefaultListenPort = 8080;
inline constexpr size_t kDefaultMaxQueued = 64;
inline constexpr uint64_t kDefaultMaxBodyBytes = 16ULL * 1024 * 1024;
inline constexpr std::chrono::milliseconds kDefaultHeaderTimeout{10'000};
inline constexpr std::chrono::milliseconds kDefaultIdleTimeout{60'000};
inline constexpr std::chrono::milliseconds kDefaultHeartbeatInterval{10'000};
inline constexpr std::chrono::milliseconds kDefaultShutdownGrace{10'000};
inline constexpr std::chrono::seconds kDefaultRetryAfter{1};
inline constexpr size_t kDefaultRecentResults = 256;
inline constexpr uint64_t kDefaultMaxFileBytes = 1024 * 1024;
inline constexpr size_t kDefaultMaxSessions = 16;
inline constexpr size_t kDefaultMaxSessionsPerKey = 4;
inline constexpr std::chrono::milliseconds kDefaultSessionIdleTimeout{10 * 60'000};
inline constexpr std::chrono::milliseconds kDefaultSessionMaxLifetime{60 * 60'000};
inline constexpr std::chrono::milliseconds kDefaultSessionCpuTime{10 * 60'000};
// What the service holds on behalf of clients (request bodies being read, results kept with their
// files) before it answers 503 with Retry-After instead of taking more.
inline constexpr uint64_t kDefaultMemoryBudgetBytes = 512ULL * 1024 * 1024;
inline constexpr const char* kAuditLogFileName = "audit.jsonl";  // in state_dir by default
inline constexpr const char* kAuditLogOff = "off";
// Without a warm_pool setting the service keeps this many python sandboxes ready, forked from
// a fork server that has the data stack imported (docs/warm_pool.md): the first request of an
// agent is warm. `warm_pool: []` turns it off.
inline constexpr size_t kDefaultWarmPythonSandboxes = 2;

// E2B-compatible workspaces (docs/e2b.md): the control plane under /e2b/api and sandbox traffic
// under /e2b/sandbox, on the service's own listener.
struct E2bConfig {
  bool enabled = true;
  size_t max_workspaces = 16;          // live in the whole service; beyond: 429
  size_t max_workspaces_per_key = 4;   // per API key; beyond: 429
  std::chrono::milliseconds default_timeout{5 * 60'000};  // E2B's default, when none is asked
  std::chrono::milliseconds max_timeout{60 * 60'000};     // a timeout asked for, at most
  std::chrono::milliseconds max_lifetime{24 * 60 * 60'000};  // since creation, whatever
  std::chrono::milliseconds cpu_time{30 * 60'000};           // a workspace's whole life
  uint64_t home_size_bytes = 1024ULL * 1024 * 1024;          // the tmpfs behind /home/user
  // Sandboxes started ahead of demand for each policy recently created under, so a create
  // takes one ready (runner/spare_workspaces.h); 0: every create starts its own.
  size_t spares = 1;
};

// An API key as the config stores it: its sha256, never the key itself.
struct ApiKey {
  std::string name;                   // for logs, e.g. "ci-agent"
  std::string sha256;                 // lowercase hex of sha256(key)
  std::vector<std::string> policies;  // the policies this key may use; "*" for all
  // The egress destinations this key's runs may reach, of those its policy allows (domains or
  // CIDRs as policies write them); absent: whatever the policy allows.
  std::optional<std::vector<std::string>> egress;
};

struct ServeConfig {
  std::string listen_address = kDefaultListenAddress;
  uint16_t listen_port = kDefaultListenPort;  // 0: any free port (tests); the log says which
  // Sandboxes kept ready per runtime and policy (docs/warm_pool.md); empty: every run is cold.
  // The built-in default (warm_pool_is_default) names no policy: it takes default_policy, and a
  // failure to set it up is logged, not fatal (a configured pool's is).
  std::vector<runner::WarmPoolEntry> warm_pool = {
      {"python", "", kDefaultWarmPythonSandboxes, std::nullopt}};
  bool warm_pool_is_default = true;
  std::vector<ApiKey> api_keys;               // empty: no authentication (logged loudly)
  // Host header names the service answers to (DNS rebinding); "*" for any. Empty: the loopback
  // names when listening on a loopback address, any name otherwise.
  std::vector<std::string> allowed_hosts;
  // Browser origins (e.g. "https://console.example.com") whose requests are accepted, besides
  // pages served from a loopback host. Requests without an Origin header (agents, curl) pass.
  std::vector<std::string> allowed_origins;
  // Proxies (addresses or networks) whose X-Forwarded-For names the client in logs and the audit
  // log, e.g. the balancer's; empty: the connection's peer is the client.
  std::vector<policies::Cidr> trusted_proxies;
  uint64_t memory_budget_bytes = kDefaultMemoryBudgetBytes;
  size_t max_concurrent = 0;                  // 0: the number of cores
  size_t max_queued = kDefaultMaxQueued;      // waiting beyond max_concurrent; beyond: 429
  uint64_t max_body_bytes = kDefaultMaxBodyBytes;
  std::chrono::milliseconds header_timeout = kDefaultHeaderTimeout;
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
  std::chrono::milliseconds heartbeat_interval = kDefaultHeartbeatInterval;
  std::chrono::milliseconds shutdown_grace = kDefaultShutdownGrace;
  std::chrono::seconds retry_after = kDefaultRetryAfter;
  size_t recent_results = kDefaultRecentResults;
  uint64_t max_file_bytes = kDefaultMaxFileBytes;  // per returned output file
  std::string default_policy = "default";
  // Empty: airlock's own files, found beside its executable (cli/layout.h).
  std::vector<std::string> policy_dirs;  // empty: $AIRLOCK_POLICY_DIR, then the shipped policies
  std::string runtimes_file;             // empty: $AIRLOCK_RUNTIMES, else the shipped file
  std::string drivers_dir;               // empty: the shipped drivers (sessions, warm pool)
  std::string fork_library;              // empty: the shipped libairlock_fork.so (warm pool)
  // The audit log (docs/api.md "Audit log"): empty means <state_dir>/audit.jsonl; "off" none.
  std::string audit_log;
  uint64_t audit_log_max_bytes = policies::kDefaultAuditMaxBytes;  // then it is rotated
  size_t audit_log_keep = policies::kDefaultAuditKeep;             // rotated files kept
  std::string state_dir = "/run/airlock";
  size_t max_sessions = kDefaultMaxSessions;                // in the whole service; beyond: 429
  size_t max_sessions_per_key = kDefaultMaxSessionsPerKey;  // per API key; beyond: 429
  std::chrono::milliseconds session_idle_timeout = kDefaultSessionIdleTimeout;  // when not asked
  std::chrono::milliseconds session_max_lifetime = kDefaultSessionMaxLifetime;  // when not asked
  std::chrono::milliseconds session_cpu_time = kDefaultSessionCpuTime;  // a session's whole life
  E2bConfig e2b;
  // The egress gateway's side of the deployment: names it resolves itself (pinned upstreams),
  // the secrets policies' injected headers name, and its timeouts. Secret values are read from
  // files or the environment when the config is read, and never printed.
  egress::GatewayConfig egress;
  // This replica's name when several serve one API behind a balancer (deploy/balancer/): session
  // and execution ids carry it, so the balancer routes their requests here. Empty: one replica.
  std::string replica;

  // max_concurrent with 0 resolved to the number of cores.
  size_t effective_max_concurrent() const;
  // The audit log's path: audit_log, or its default under state_dir; "" when it is off.
  std::string effective_audit_log() const;
  // allowed_hosts with its default resolved from the listen address.
  std::vector<std::string> effective_allowed_hosts() const;
};

struct ConfigResult {
  std::optional<ServeConfig> config;
  std::string error;  // "file:line:column: what is wrong" when config is empty
};

// Reads a config file; a missing file is an error (the caller decides whether a file is needed).
ConfigResult load_config_file(const std::string& path);

// True for a loopback host name or address: localhost, 127.x.y.z, ::1 (bracketed or not).
bool is_loopback_name(std::string_view host);

// Parses config text; `origin` names it in errors.
ConfigResult parse_config(const std::string& yaml_text, const std::string& origin);

// Splits "host:port" or "[v6]:port"; nullopt when malformed.
std::optional<std::pair<std::string, uint16_t>> split_host_port(const std::string& text);

}  // namespace airlock::api
