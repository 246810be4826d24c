#include "api/config.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <thread>

#include "api/config_yaml.h"
#include "api/egress_config.h"
#include "runner/ids.h"
#include "sandbox/readable.h"
#include "sandbox/regular_file.h"

namespace airlock::api {
namespace {

using config_yaml::ConfigError;
using config_yaml::duration;
using config_yaml::fail;
using config_yaml::scalar;
using config_yaml::size;
using config_yaml::string_list;
using config_yaml::unknown;
using config_yaml::whole_number;

// Every top-level setting, for the error that names an unknown one.
const std::vector<std::string> kSettings = {
    "listen", "api_keys", "allowed_hosts", "allowed_origins", "memory_budget", "max_concurrent",
    "max_queued", "max_body_size", "header_timeout", "idle_timeout", "heartbeat_interval",
    "shutdown_grace", "retry_after", "recent_results", "max_file_size", "default_policy",
    "policy_dirs", "runtimes_file", "drivers_dir", "fork_library", "audit_log",
    "audit_log_max_size", "audit_log_keep", "state_dir", "max_sessions", "max_sessions_per_key",
    "session_idle_timeout", "session_max_lifetime", "session_cpu_time", "warm_pool", "replica",
    "e2b", "egress", "trusted_proxies"};

// A config is a page of settings; a larger file is a mistake.
constexpr size_t kMaxConfigBytes = 1024 * 1024;

// Below this a rotation would come every few runs.
constexpr uint64_t kMinAuditLogBytes = 64 * 1024;

ApiKey api_key(const YAML::Node& node) {
  if (!node.IsMap()) fail(node, "api_keys item: expected a map with name, sha256, policies");
  ApiKey key;
  for (const auto& entry : node) {
    std::string field = entry.first.as<std::string>();
    if (field == "name") {
      key.name = scalar(entry.second, "api_keys.name");
      if (key.name.empty()) fail(entry.second, "api_keys.name: must not be empty");
    } else if (field == "sha256") {
      key.sha256 = scalar(entry.second, "api_keys.sha256");
      if (key.sha256.size() != 64 ||
          key.sha256.find_first_not_of("0123456789abcdef") != key.sha256.npos) {
        fail(entry.second,
             "api_keys.sha256: expected 64 lowercase hex digits (sha256 of the key, "
             "e.g. from `printf %s KEY | sha256sum`)");
      }
    } else if (field == "policies") {
      key.policies = string_list(entry.second, "api_keys.policies");
    } else if (field == "egress") {
      key.egress = string_list(entry.second, "api_keys.egress");
    } else {
      fail(entry.first,
           "api_keys: " + unknown("field", field, {"name", "sha256", "policies", "egress"}));
    }
  }
  if (key.sha256.empty()) fail(node, "api_keys item: sha256 is required");
  if (key.name.empty()) key.name = key.sha256.substr(0, 8);
  if (key.policies.empty()) fail(node, "api_keys item \"" + key.name + "\": policies is required");
  return key;
}

E2bConfig e2b_config(const YAML::Node& node) {
  if (!node.IsMap()) fail(node, "e2b: expected a map (enabled, max_workspaces, ...)");
  static const std::vector<std::string> kFields = {
      "enabled", "max_workspaces", "max_workspaces_per_key", "default_timeout", "max_timeout",
      "max_lifetime", "cpu_time", "home_size", "spares"};
  E2bConfig e2b;
  for (const auto& field : node) {
    const std::string name = field.first.as<std::string>();
    const YAML::Node& value = field.second;
    const std::string key = "e2b." + name;
    if (name == "enabled") {
      const std::string text = scalar(value, key);
      if (text != "true" && text != "false") {
        fail(value, key + ": expected true or false, got \"" + text + "\"");
      }
      e2b.enabled = text == "true";
    } else if (name == "max_workspaces") {
      e2b.max_workspaces = whole_number(value, key, 100'000);
    } else if (name == "max_workspaces_per_key") {
      e2b.max_workspaces_per_key = whole_number(value, key, 100'000);
    } else if (name == "default_timeout") {
      e2b.default_timeout = duration(value, key);
    } else if (name == "max_timeout") {
      e2b.max_timeout = duration(value, key);
    } else if (name == "max_lifetime") {
      e2b.max_lifetime = duration(value, key);
    } else if (name == "cpu_time") {
      e2b.cpu_time = duration(value, key);
    } else if (name == "home_size") {
      e2b.home_size_bytes = size(value, key);
    } else if (name == "spares") {
      e2b.spares = whole_number(value, key, 16);
    } else {
      fail(field.first, "e2b: " + unknown("field", name, kFields));
    }
  }
  for (auto [timeout, name] : {std::pair{e2b.default_timeout, "default_timeout"},
                               std::pair{e2b.max_timeout, "max_timeout"},
                               std::pair{e2b.max_lifetime, "max_lifetime"},
                               std::pair{e2b.cpu_time, "cpu_time"}}) {
    if (timeout.count() <= 0) fail(node, std::string("e2b.") + name + ": must be more than 0");
  }
  if (e2b.default_timeout > e2b.max_timeout) {
    fail(node, "e2b.default_timeout: must not be more than e2b.max_timeout");
  }
  if (e2b.max_timeout > e2b.max_lifetime) {
    fail(node, "e2b.max_timeout: must not be more than e2b.max_lifetime");
  }
  if (e2b.home_size_bytes < 1024 * 1024) fail(node, "e2b.home_size: at least 1MiB");
  return e2b;
}
runner::WarmPoolEntry warm_pool_entry(const YAML::Node& node) {
  if (!node.IsMap()) fail(node, "warm_pool item: expected a map with runtime, policy, size");
  runner::WarmPoolEntry entry;
  for (const auto& field : node) {
    std::string name = field.first.as<std::string>();
    if (name == "runtime") {
      entry.runtime = scalar(field.second, "warm_pool.runtime");
    } else if (name == "policy") {
      entry.policy = scalar(field.second, "warm_pool.policy");
    } else if (name == "size") {
      entry.size = whole_number(field.second, "warm_pool.size", 64);
    } else if (name == "refill") {
      const std::string refill = scalar(field.second, "warm_pool.refill");
      if (refill == "fork") {
        entry.refill = runner::WarmPoolEntry::Refill::fork;
      } else if (refill == "fresh") {
        entry.refill = runner::WarmPoolEntry::Refill::fresh;
      } else {
        fail(field.second, "warm_pool.refill: expected fork or fresh, got \"" + refill + "\"");
      }
    } else {
      fail(field.first,
           "warm_pool: " + unknown("field", name, {"runtime", "policy", "size", "refill"}));
    }
  }
  if (entry.runtime.empty()) fail(node, "warm_pool item: runtime is required");
  if (entry.policy.empty()) fail(node, "warm_pool item: policy is required");
  if (entry.size == 0) fail(node, "warm_pool item: size must be at least 1");
  return entry;
}

ServeConfig parse_root(const YAML::Node& root) {
  ServeConfig config;
  if (root.IsNull()) return config;  // an empty file: all defaults
  if (!root.IsMap()) fail(root, "expected a map of settings");
  std::set<std::string> seen;
  for (const auto& entry : root) {
    std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (!seen.insert(key).second) fail(entry.first, key + ": given twice");
    if (key == "listen") {
      auto parts = split_host_port(scalar(value, key));
      if (!parts) fail(value, "listen: expected host:port, e.g. 127.0.0.1:8080");
      config.listen_address = parts->first;
      config.listen_port = parts->second;
    } else if (key == "api_keys") {
      if (!value.IsSequence()) fail(value, "api_keys: expected a list");
      for (const auto& item : value) {
        ApiKey key = api_key(item);
        // Ownership of sessions and results goes by key name: two keys must never share one.
        for (const ApiKey& other : config.api_keys) {
          if (other.name == key.name) {
            fail(item, "api_keys: the name \"" + key.name +
                           "\" is given to two keys; each key needs its own name");
          }
          if (other.sha256 == key.sha256) {
            fail(item, "api_keys: keys \"" + other.name + "\" and \"" + key.name +
                           "\" have the same sha256");
          }
        }
        config.api_keys.push_back(std::move(key));
      }
    } else if (key == "allowed_hosts") {
      config.allowed_hosts = string_list(value, key);
    } else if (key == "allowed_origins") {
      config.allowed_origins = string_list(value, key);
      for (const auto& origin : config.allowed_origins) {
        if (!origin.starts_with("http://") && !origin.starts_with("https://")) {
          fail(value, "allowed_origins: \"" + origin +
                          "\" is not an origin; expected scheme://host[:port], e.g. "
                          "https://console.example.com");
        }
      }
    } else if (key == "trusted_proxies") {
      for (const std::string& entry : string_list(value, key)) {
        auto proxy = policies::Cidr::parse(entry);
        if (!proxy) {
          fail(value, "trusted_proxies: \"" + entry +
                          "\" is not an address or network; expected e.g. 10.0.0.7, 10.0.0.0/8 "
                          "or fd00::/8 (host bits zero)");
        }
        config.trusted_proxies.push_back(*proxy);
      }
    } else if (key == "memory_budget") {
      config.memory_budget_bytes = size(value, key);
    } else if (key == "max_concurrent") {
      config.max_concurrent = whole_number(value, key, 4096);
    } else if (key == "max_queued") {
      config.max_queued = whole_number(value, key, 100'000);
    } else if (key == "max_body_size") {
      config.max_body_bytes = size(value, key);
    } else if (key == "header_timeout") {
      config.header_timeout = duration(value, key);
    } else if (key == "idle_timeout") {
      config.idle_timeout = duration(value, key);
    } else if (key == "heartbeat_interval") {
      config.heartbeat_interval = duration(value, key);
    } else if (key == "shutdown_grace") {
      config.shutdown_grace = duration(value, key);
    } else if (key == "retry_after") {
      auto ms = duration(value, key);
      config.retry_after = std::chrono::duration_cast<std::chrono::seconds>(ms);
      if (config.retry_after.count() < 1) config.retry_after = std::chrono::seconds(1);
    } else if (key == "recent_results") {
      config.recent_results = whole_number(value, key, 1'000'000);
    } else if (key == "max_file_size") {
      config.max_file_bytes = size(value, key);
    } else if (key == "default_policy") {
      config.default_policy = scalar(value, key);
    } else if (key == "policy_dirs") {
      config.policy_dirs = string_list(value, key);
    } else if (key == "runtimes_file") {
      config.runtimes_file = scalar(value, key);
    } else if (key == "drivers_dir") {
      config.drivers_dir = scalar(value, key);
    } else if (key == "fork_library") {
      config.fork_library = scalar(value, key);
    } else if (key == "audit_log") {
      config.audit_log = scalar(value, key);
      if (config.audit_log != kAuditLogOff && !config.audit_log.starts_with("/")) {
        fail(value, "audit_log: expected an absolute path or off, got \"" + config.audit_log +
                        "\"");
      }
    } else if (key == "audit_log_max_size") {
      config.audit_log_max_bytes = size(value, key);
      if (config.audit_log_max_bytes < kMinAuditLogBytes) {
        fail(value, "audit_log_max_size: at least 64KiB");
      }
    } else if (key == "audit_log_keep") {
      config.audit_log_keep = whole_number(value, key, 1000);
    } else if (key == "state_dir") {
      config.state_dir = scalar(value, key);
      if (!config.state_dir.starts_with("/")) {
        fail(value, "state_dir: expected an absolute path, got \"" + config.state_dir + "\"");
      }
    } else if (key == "max_sessions") {
      config.max_sessions = whole_number(value, key, 100'000);
    } else if (key == "max_sessions_per_key") {
      config.max_sessions_per_key = whole_number(value, key, 100'000);
    } else if (key == "session_idle_timeout") {
      config.session_idle_timeout = duration(value, key);
    } else if (key == "session_max_lifetime") {
      config.session_max_lifetime = duration(value, key);
    } else if (key == "session_cpu_time") {
      config.session_cpu_time = duration(value, key);
    } else if (key == "replica") {
      config.replica = scalar(value, key);
      if (!runner::is_replica_name(config.replica)) {
        fail(value, "replica: \"" + config.replica +
                        "\" is not a replica name; expected 1 to 32 of a-z, 0-9 and '-', not "
                        "starting with '-' (e.g. r1 or airlock-0)");
      }
    } else if (key == "e2b") {
      config.e2b = e2b_config(value);
    } else if (key == "egress") {
      config.egress = parse_egress_config(value);
    } else if (key == "warm_pool") {
      if (!value.IsSequence()) fail(value, "warm_pool: expected a list of {runtime, policy, size}");
      config.warm_pool.clear();
      config.warm_pool_is_default = false;
      for (const auto& item : value) config.warm_pool.push_back(warm_pool_entry(item));
    } else {
      fail(entry.first, unknown("setting", key, kSettings));
    }
  }
  for (auto [timeout, name] : {std::pair{config.header_timeout, "header_timeout"},
                               std::pair{config.idle_timeout, "idle_timeout"},
                               std::pair{config.heartbeat_interval, "heartbeat_interval"},
                               std::pair{config.session_idle_timeout, "session_idle_timeout"},
                               std::pair{config.session_max_lifetime, "session_max_lifetime"},
                               std::pair{config.session_cpu_time, "session_cpu_time"}}) {
    if (timeout.count() <= 0) fail(root, std::string(name) + ": must be more than 0");
  }
  if (config.max_body_bytes == 0) fail(root, "max_body_size: must be more than 0");
  // Half the budget holds bodies being read: less than one body's worth, and a body of the largest
  // size could never be read.
  if (config.memory_budget_bytes / 2 < config.max_body_bytes) {
    fail(root, "memory_budget: " + sandbox::format_bytes(config.memory_budget_bytes) +
                   " must be at least twice max_body_size (" +
                   sandbox::format_bytes(config.max_body_bytes) +
                   "): half of it holds bodies being read");
  }
  return config;
}

std::string located(const std::string& origin, const YAML::Mark& mark, const std::string& message) {
  if (mark.is_null()) return origin + ": " + message;
  return origin + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
         ": " + message;
}

}  // namespace

bool is_loopback_name(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

std::string ServeConfig::effective_audit_log() const {
  if (audit_log == kAuditLogOff) return "";
  if (!audit_log.empty()) return audit_log;
  std::string dir = state_dir;
  while (dir.size() > 1 && dir.ends_with("/")) dir.pop_back();
  return (dir == "/" ? "" : dir) + "/" + kAuditLogFileName;
}

std::vector<std::string> ServeConfig::effective_allowed_hosts() const {
  if (!allowed_hosts.empty()) return allowed_hosts;
  if (is_loopback_name(listen_address)) return {"localhost", "127.0.0.1", "[::1]"};
  return {"*"};
}

size_t ServeConfig::effective_max_concurrent() const {
  if (max_concurrent > 0) return max_concurrent;
  unsigned cores = std::thread::hardware_concurrency();
  return cores > 0 ? cores : 1;
}

std::optional<std::pair<std::string, uint16_t>> split_host_port(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;  // a bare IPv6 address needs brackets
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  unsigned long number = std::stoul(port);
  if (number > 65535) return std::nullopt;
  return std::make_pair(host, static_cast<uint16_t>(number));
}

ConfigResult parse_config(const std::string& yaml_text, const std::string& origin) {
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    config_yaml::reject_duplicate_keys(root);
    return {parse_root(root), ""};
  } catch (const ConfigError& error) {
    return {std::nullopt, located(origin, error.mark, error.message)};
  } catch (const YAML::Exception& error) {
    return {std::nullopt, located(origin, error.mark, error.msg)};
  }
}

ConfigResult load_config_file(const std::string& path) {
  auto text = sandbox::read_regular_file(path, kMaxConfigBytes);
  if (!text) return {std::nullopt, path + ": cannot read the config: " + text.error().message()};
  return parse_config(text.value(), path);
}

}  // namespace airlock::api
