#include "api/metrics.h"

#include <cstdio>

namespace airlock::api {
namespace {

// Label values are ours (status names, runtime names from config), but escape them anyway.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}

}  // namespace

void Metrics::execution_finished(const std::string& runtime, const std::string& status,
                                 std::chrono::duration<double> latency) {
  std::lock_guard lock(mutex_);
  ++executions_[{status, runtime}];
  Latency& histogram = latency_[runtime];
  double seconds = latency.count();
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++histogram.buckets[i];
      break;
    }
  }
  ++histogram.count;
  histogram.sum_seconds += seconds;
}

void Metrics::syscalls_stopped(const std::string& policy, const sandbox::Outcome& outcome) {
  std::lock_guard lock(mutex_);
  if (outcome.violation) ++violations_[{policy, outcome.violation->syscall}];
  for (const auto& event : outcome.blocked) ++blocked_[{policy, event.syscall}];
}

void Metrics::network_used(const std::string& policy, const egress::Report& report) {
  std::lock_guard lock(mutex_);
  NetworkCounts& counts = network_[policy];
  counts.connections += report.usage.connections;
  counts.refused += report.usage.refused;
  counts.bytes_sent += report.usage.bytes_sent;
  counts.bytes_received += report.usage.bytes_received;
}

void Metrics::policies_reloaded(size_t errors) {
  std::lock_guard lock(mutex_);
  ++reloads_;
  if (errors > 0) ++reloads_with_errors_;
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++rejected_[reason];
}

void Metrics::workspace_event(const std::string& event) {
  std::lock_guard lock(mutex_);
  ++workspace_events_[event];
}

void Metrics::http_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_[status];
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP airlock_build_info The running airlock's version; always 1.\n";
  out += "# TYPE airlock_build_info gauge\n";
  out += "airlock_build_info{version=\"" + label(AIRLOCK_VERSION) + "\"} 1\n";
  out += "# HELP airlock_executions_total Executions finished, by status and runtime.\n";
  out += "# TYPE airlock_executions_total counter\n";
  for (const auto& [key, count] : executions_) {
    out += "airlock_executions_total{status=\"" + label(key.first) + "\",runtime=\"" +
           label(key.second) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP airlock_execution_duration_seconds Time from submission to result, by runtime.\n";
  out += "# TYPE airlock_execution_duration_seconds histogram\n";
  for (const auto& [runtime, histogram] : latency_) {
    const std::string runtime_label = "runtime=\"" + label(runtime) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += histogram.buckets[i];
      out += "airlock_execution_duration_seconds_bucket{" + runtime_label + ",le=\"" +
             number(kLatencyBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "airlock_execution_duration_seconds_bucket{" + runtime_label + ",le=\"+Inf\"} " +
           std::to_string(histogram.count) + "\n";
    out += "airlock_execution_duration_seconds_sum{" + runtime_label + "} " +
           number(histogram.sum_seconds) + "\n";
    out += "airlock_execution_duration_seconds_count{" + runtime_label + "} " +
           std::to_string(histogram.count) + "\n";
  }
  auto by_policy_and_syscall = [&](const char* name, const char* help, const auto& counts) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
    for (const auto& [key, count] : counts) {
      out += std::string(name) + "{policy=\"" + label(key.first) + "\",syscall=\"" +
             label(key.second) + "\"} " + std::to_string(count) + "\n";
    }
  };
  by_policy_and_syscall("airlock_violations_total",
                        "Runs ended by a forbidden syscall, by policy and syscall.", violations_);
  by_policy_and_syscall("airlock_blocked_calls_total",
                        "Syscalls refused (or logged) without ending the run, by policy and syscall.",
                        blocked_);
  out += "# HELP airlock_egress_connections_total Connections from sandboxes through the egress "
         "gateway, by policy and result.\n";
  out += "# TYPE airlock_egress_connections_total counter\n";
  for (const auto& [policy, counts] : network_) {
    const std::string policy_label = "policy=\"" + label(policy) + "\"";
    out += "airlock_egress_connections_total{" + policy_label + ",result=\"allowed\"} " +
           std::to_string(counts.connections) + "\n";
    out += "airlock_egress_connections_total{" + policy_label + ",result=\"refused\"} " +
           std::to_string(counts.refused) + "\n";
  }
  out += "# HELP airlock_egress_bytes_total Bytes the egress gateway carried, by policy and "
         "direction (sent: from sandboxes).\n";
  out += "# TYPE airlock_egress_bytes_total counter\n";
  for (const auto& [policy, counts] : network_) {
    const std::string policy_label = "policy=\"" + label(policy) + "\"";
    out += "airlock_egress_bytes_total{" + policy_label + ",direction=\"sent\"} " +
           std::to_string(counts.bytes_sent) + "\n";
    out += "airlock_egress_bytes_total{" + policy_label + ",direction=\"received\"} " +
           std::to_string(counts.bytes_received) + "\n";
  }
  out += "# HELP airlock_policy_reloads_total Policy reloads (SIGHUP), by result.\n";
  out += "# TYPE airlock_policy_reloads_total counter\n";
  out += "airlock_policy_reloads_total{result=\"ok\"} " +
         std::to_string(reloads_ - reloads_with_errors_) + "\n";
  out += "airlock_policy_reloads_total{result=\"errors\"} " +
         std::to_string(reloads_with_errors_) + "\n";
  if (sessions_) {
    out += "# HELP airlock_sessions_active Interpreter sessions open now.\n";
    out += "# TYPE airlock_sessions_active gauge\n";
    out += "airlock_sessions_active " + std::to_string(sessions_()) + "\n";
  }
  if (workspaces_) {
    out += "# HELP airlock_workspaces_active E2B workspaces (sandboxes) live now.\n";
    out += "# TYPE airlock_workspaces_active gauge\n";
    out += "airlock_workspaces_active " + std::to_string(workspaces_()) + "\n";
  }
  if (workspace_spares_) {
    out += "# HELP airlock_workspace_spares_ready E2B sandboxes started ahead of demand, ready to "
           "hand over.\n";
    out += "# TYPE airlock_workspace_spares_ready gauge\n";
    out += "airlock_workspace_spares_ready " + std::to_string(workspace_spares_()) + "\n";
  }
  out += "# HELP airlock_workspace_events_total E2B workspaces created and killed by clients.\n";
  out += "# TYPE airlock_workspace_events_total counter\n";
  for (const auto& [event, count] : workspace_events_) {
    out += "airlock_workspace_events_total{event=\"" + event + "\"} " + std::to_string(count) +
           "\n";
  }
  out += "# HELP airlock_executions_in_flight Executions running now.\n";
  out += "# TYPE airlock_executions_in_flight gauge\n";
  out += "airlock_executions_in_flight " + std::to_string(in_flight_.load()) + "\n";
  out += "# HELP airlock_executions_queued Executions waiting for a free slot.\n";
  out += "# TYPE airlock_executions_queued gauge\n";
  out += "airlock_executions_queued " + std::to_string(queued_.load()) + "\n";
  out += "# HELP airlock_executions_rejected_total Executions refused before running, by reason.\n";
  out += "# TYPE airlock_executions_rejected_total counter\n";
  for (const auto& [reason, count] : rejected_) {
    out += "airlock_executions_rejected_total{reason=\"" + label(reason) + "\"} " +
           std::to_string(count) + "\n";
  }
  out += "# HELP airlock_http_responses_total HTTP responses sent, by status code.\n";
  out += "# TYPE airlock_http_responses_total counter\n";
  for (const auto& [code, count] : responses_) {
    out += "airlock_http_responses_total{code=\"" + std::to_string(code) + "\"} " +
           std::to_string(count) + "\n";
  }
  if (warm_pool_) {
    const auto pools = warm_pool_();
    auto gauge = [&](const char* name, const char* help, const char* type, auto field) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      for (const runner::WarmPoolStats& pool : pools) {
        out += std::string(name) + "{runtime=\"" + label(pool.runtime) + "\",policy=\"" +
               label(pool.policy) + "\"} " + std::to_string(field(pool)) + "\n";
      }
    };
    gauge("airlock_warm_pool_capacity", "Sandboxes the warm pool keeps ready.", "gauge",
          [](const auto& p) { return p.capacity; });
    gauge("airlock_warm_pool_ready", "Sandboxes ready now.", "gauge",
          [](const auto& p) { return p.ready; });
    gauge("airlock_warm_pool_hits_total", "Executions served by a ready sandbox.", "counter",
          [](const auto& p) { return p.hits; });
    gauge("airlock_warm_pool_misses_total", "Fitting executions that found none ready.",
          "counter", [](const auto& p) { return p.misses; });
    gauge("airlock_warm_pool_forked_on_request_total",
          "Misses served by forking a sandbox at request time (the others ran cold).", "counter",
          [](const auto& p) { return p.forked_on_request; });
    gauge("airlock_warm_pool_fork_server_up", "1 while ready sandboxes are forked from a server.",
          "gauge", [](const auto& p) { return p.forking ? 1 : 0; });
    gauge("airlock_warm_pool_fork_server_starts_total", "Fork servers started (more than 1: one died).",
          "counter", [](const auto& p) { return p.fork_server_starts; });
    gauge("airlock_warm_pool_fork_server_memory_bytes",
          "Memory charged to the fork server's cgroup: its interpreter, shared by every child.",
          "gauge", [](const auto& p) { return p.fork_server_memory_bytes; });
    gauge("airlock_warm_pool_memory_per_sandbox_bytes",
          "Memory charged to a ready sandbox's own cgroup, on average: what each one adds.",
          "gauge", [](const auto& p) { return p.ready == 0 ? 0 : p.ready_memory_bytes / p.ready; });
    gauge("airlock_warm_pool_memory_bytes",
          "Memory the pool holds: its fork server's and every ready sandbox's cgroup together.",
          "gauge", [](const auto& p) { return p.fork_server_memory_bytes + p.ready_memory_bytes; });
    gauge("airlock_warm_pool_start_failures_total", "Ready sandboxes that failed to start.",
          "counter", [](const auto& p) { return p.start_failures; });
  }
  return out;
}

}  // namespace airlock::api
