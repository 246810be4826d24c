// Runs executions on a worker pool sized by the concurrency limit, never on the I/O threads: a
// bounded queue in front (beyond it, submissions are refused), cancellation through the runner's
// eventfd, a bounded store of recent results, and a graceful shutdown.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/airlock.pb.h"
#include "api/executor.h"
#include "api/log.h"
#include "api/memory_budget.h"
#include "api/metrics.h"
#include "policies/policy.h"
#include "runner/runner.h"
#include "sandbox/outcome.h"

namespace airlock::api {

// One validated request, ready to run.
struct Job {
  runner::RunRequest request;
  std::shared_ptr<const policies::Policy> policy;
  std::string owner;  // the API key's name; only the owner may look it up or cancel it
  std::string client;      // "address:port" of the connection that asked, for the audit log
  std::string session_id;  // the session it runs in, if any
  // When set, runs the job instead of the executor: an execution inside a session, which has its
  // own sandbox. Same contract as Executor::run; the policy above still names the result. It
  // gets `request` as submitted, with the execution id the client sees.
  std::function<runner::RunResult(const runner::RunRequest&, const runner::EventSink&,
                                  int cancel_fd)>
      run;
  // Released when the job is done with (run or never run): a session's one-at-a-time lease.
  std::shared_ptr<void> hold;
};

// Receives the events of one execution: started first, the final exit or error last. Called on a
// worker thread, or on the thread that cancelled a queued execution. Must not block or throw.
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void on_event(const v1::Event& event) = 0;
};

struct ServiceOptions {
  size_t max_concurrent = 1;
  size_t max_queued = 0;
  size_t recent_results = 256;
  // Results kept for lookups take their size from this budget (when set); past it, the oldest
  // are let go first, and a result too large for what is left is kept without its files.
  MemoryBudget* memory_budget = nullptr;
  runner::IdMaker ids;  // execution ids name the replica, for lookups through a balancer
};

// Called once per run that reached the runner, on its worker thread, for the audit log.
using AuditHook = std::function<void(const std::string& execution_id, const Job& job,
                                     const runner::RunResult&)>;

class ExecutionService {
 public:
  // key_share: the submitting key already holds all the places one key may (key_share_limit).
  enum class Rejection { queue_full, key_share, shutting_down, no_resources };
  enum class CancelOutcome { cancelled, already_finished, not_found };

  ExecutionService(Executor& executor, ServiceOptions options, Metrics& metrics, Logger& log,
                   AuditHook audit = {});
  // Cancels whatever still runs and waits for it.
  ~ExecutionService();
  ExecutionService(const ExecutionService&) = delete;
  ExecutionService& operator=(const ExecutionService&) = delete;

  struct Submitted {
    std::string id;                      // set when accepted
    std::optional<Rejection> rejection;  // set when refused; the observer is then never called
  };
  Submitted submit(Job job, std::shared_ptr<ExecutionObserver> observer);

  // Cancels a queued or running execution of this owner. A queued one ends at once; a running one
  // ends as soon as the runner notices its eventfd.
  CancelOutcome cancel(const std::string& id, const std::string& owner);

  // A finished execution's result, or a result with status "queued"/"running" for a live one.
  std::optional<v1::ExecutionResult> find(const std::string& id, const std::string& owner) const;

  // Stops taking work and cancels queued executions; running ones go on.
  void stop_accepting();

  // Stops taking work, cancels queued executions, lets running ones finish for up to `grace`, then
  // cancels them and waits until every worker has stopped. Safe to call more than once.
  void shutdown(std::chrono::milliseconds grace);
  // Ends shutdown's grace period now (an operator's second stop signal): what still runs is
  // cancelled at once. Before shutdown, the grace of a later one is zero.
  void end_grace();

  // Whether an execution id is one this process made (runner/ids.h).
  runner::IdOrigin id_origin(std::string_view id) const { return options_.ids.origin("ex", id); }
  // The service's id maker (its replica name and incarnation), for ids of other kinds.
  const runner::IdMaker& ids() const { return options_.ids; }

  bool accepting() const;
  size_t in_flight() const;
  size_t queued() const;
  // The most places (running and queued) one key may hold: all of them but a quarter of the
  // queue, which stays for other keys, so that one key cannot have every other refused.
  size_t key_share_limit() const;

 private:
  struct Entry;

  void work();
  void execute(Entry& entry);
  // Ends an execution that never reached the runner (cancelled while queued).
  void finish_unstarted(Entry& entry, const std::string& reason);
  // Stores the result and updates counters; the caller then sends the final event.
  void record(Entry& entry, const v1::ExecutionResult& result);
  void update_gauges();  // with mutex_ held

  Executor& executor_;
  ServiceOptions options_;
  Metrics& metrics_;
  Logger& log_;
  AuditHook audit_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<std::shared_ptr<Entry>> queue_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> live_;  // queued and running
  size_t running_ = 0;
  std::unordered_map<std::string, size_t> running_by_owner_;  // keys with executions running
  bool accepting_ = true;
  bool workers_stop_ = false;
  bool grace_ended_ = false;
  struct Stored {
    std::string owner;
    v1::ExecutionResult result;
    BudgetShare share;
  };
  // Takes room for `bytes` of a kept result from the budget, letting the oldest results go;
  // with mutex_ held. An empty share when there is no budget; nullopt when it does not fit.
  std::optional<BudgetShare> room_for_result(uint64_t bytes);
  std::unordered_map<std::string, Stored> recent_;
  std::deque<std::string> recent_order_;  // oldest first, for eviction
  std::vector<std::thread> workers_;
};

}  // namespace airlock::api
