// The service's counters in Prometheus text format: build info, executions by status and runtime,
// a latency histogram per runtime, executions in flight and queued, violations and blocked calls
// by policy and syscall, policy reloads, live sessions, requests rejected, HTTP responses by code.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <functional>
#include <mutex>
#include <vector>

#include <string>
#include <utility>

#include "runner/egress/gateway.h"
#include "runner/warm_pool.h"
#include "sandbox/outcome.h"

namespace airlock::api {

class Metrics {
 public:
  // Upper bounds of the latency histogram's buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

  // An execution ended with this status; latency is from submission to its result.
  void execution_finished(const std::string& runtime, const std::string& status,
                          std::chrono::duration<double> latency);
  // A request was refused before it could run, e.g. "queue_full", "shutting_down".
  void rejected(const std::string& reason);
  void http_response(int status);
  // What a run's outcome says the program tried: the call that ended it (a violation) and the
  // calls refused or logged on the way.
  void syscalls_stopped(const std::string& policy, const sandbox::Outcome& outcome);
  // What a run's egress gateway allowed, refused and carried (a policy with egress).
  void network_used(const std::string& policy, const egress::Report& report);
  // A SIGHUP reload: `errors` policy files kept their old version (or stayed out).
  void policies_reloaded(size_t errors);

  // Where the number of live sessions comes from, when the service offers them.
  void set_sessions(std::function<size_t()> source) {
    std::lock_guard lock(mutex_);
    sessions_ = std::move(source);
  }

  // Where the numbers of live workspaces (E2B sandboxes) and of spares started ahead of demand
  // (runner/spare_workspaces.h) come from, when the service offers them.
  void set_workspaces(std::function<size_t()> live, std::function<size_t()> spares) {
    std::lock_guard lock(mutex_);
    workspaces_ = std::move(live);
    workspace_spares_ = std::move(spares);
  }
  // A workspace was created or killed through the E2B API ("created", "killed").
  void workspace_event(const std::string& event);

  // Where the warm pool's figures come from, when the service has one.
  void set_warm_pool(std::function<std::vector<runner::WarmPoolStats>()> source) {
    std::lock_guard lock(mutex_);
    warm_pool_ = std::move(source);
  }

  void set_in_flight(size_t count) { in_flight_ = count; }
  void set_queued(size_t count) { queued_ = count; }

  // The Prometheus text exposition (version 0.0.4) of everything above.
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  struct Latency {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  std::map<std::pair<std::string, std::string>, uint64_t> executions_;  // (status, runtime)
  std::map<std::string, Latency> latency_;                              // by runtime
  std::map<std::pair<std::string, std::string>, uint64_t> violations_;  // (policy, syscall)
  std::map<std::pair<std::string, std::string>, uint64_t> blocked_;     // (policy, syscall)
  struct NetworkCounts {
    uint64_t connections = 0, refused = 0, bytes_sent = 0, bytes_received = 0;
  };
  std::map<std::string, NetworkCounts> network_;  // by policy
  uint64_t reloads_ = 0;
  uint64_t reloads_with_errors_ = 0;
  std::function<size_t()> sessions_;
  std::function<size_t()> workspaces_;
  std::function<size_t()> workspace_spares_;
  std::map<std::string, uint64_t> workspace_events_;
  std::map<std::string, uint64_t> rejected_;
  std::map<int, uint64_t> responses_;
  std::atomic<size_t> in_flight_{0};
  std::atomic<size_t> queued_{0};
  std::function<std::vector<runner::WarmPoolStats>()> warm_pool_;
};

}  // namespace airlock::api
