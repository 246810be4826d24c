#include "api/execution_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "api/event_stream.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"
#include "sandbox/unique_fd.h"

namespace airlock::api {

struct ExecutionService::Entry {
  std::string id;
  Job job;
  std::shared_ptr<ExecutionObserver> observer;
  sandbox::UniqueFd cancel_fd;  // an eventfd the runner watches
  bool running = false;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();

  void raise_cancel() const {
    uint64_t one = 1;
    // A full counter (it cannot be, at 1 per cancel) would still leave the fd readable.
    [[maybe_unused]] ssize_t written = ::write(cancel_fd.get(), &one, sizeof one);
  }
  v1::PolicyRef policy_ref() const {
    v1::PolicyRef ref;
    ref.set_name(job.policy->name);
    ref.set_hash(job.policy->hash);
    return ref;
  }
};

ExecutionService::ExecutionService(Executor& executor, ServiceOptions options, Metrics& metrics,
                                   Logger& log, AuditHook audit)
    : executor_(executor),
      options_(options),
      metrics_(metrics),
      log_(log),
      audit_(std::move(audit)) {
  if (options_.max_concurrent == 0) options_.max_concurrent = 1;
  for (size_t i = 0; i < options_.max_concurrent; ++i) workers_.emplace_back([this] { work(); });
}

ExecutionService::~ExecutionService() {
  shutdown(std::chrono::milliseconds(0));
}

ExecutionService::Submitted ExecutionService::submit(Job job,
                                                     std::shared_ptr<ExecutionObserver> observer) {
  auto entry = std::make_shared<Entry>();
  entry->id = options_.ids.make("ex");
  entry->job = std::move(job);
  entry->job.request.id = entry->id;  // the runner's logs and result use the same id
  entry->observer = std::move(observer);
  std::unique_lock lock(mutex_);
  std::optional<Rejection> rejection;
  if (!accepting_) {
    rejection = Rejection::shutting_down;
  } else if (queue_.size() + running_ >= options_.max_concurrent + options_.max_queued) {
    rejection = Rejection::queue_full;
  } else if (std::count_if(live_.begin(), live_.end(), [&](const auto& live) {
               return live.second->job.owner == entry->job.owner;
             }) >= static_cast<std::ptrdiff_t>(key_share_limit())) {
    rejection = Rejection::key_share;
  } else if (auto fd = sandbox::make_eventfd(); !fd) {
    log_.error("cannot create a cancel eventfd", {{"error", fd.error().message()}});
    rejection = Rejection::no_resources;
  } else {
    entry->cancel_fd = std::move(fd.value());
  }
  if (rejection) {
    lock.unlock();
    metrics_.rejected(*rejection == Rejection::queue_full      ? "queue_full"
                      : *rejection == Rejection::key_share     ? "key_share"
                      : *rejection == Rejection::shutting_down ? "shutting_down"
                                                               : "no_resources");
    return {"", rejection};
  }
  queue_.push_back(entry);
  live_[entry->id] = entry;
  update_gauges();
  lock.unlock();
  work_ready_.notify_one();
  return {entry->id, std::nullopt};
}

ExecutionService::CancelOutcome ExecutionService::cancel(const std::string& id,
                                                         const std::string& owner) {
  std::unique_lock lock(mutex_);
  auto live = live_.find(id);
  if (live == live_.end() || live->second->job.owner != owner) {
    auto stored = recent_.find(id);
    if (stored != recent_.end() && stored->second.owner == owner) {
      return CancelOutcome::already_finished;
    }
    return CancelOutcome::not_found;
  }
  std::shared_ptr<Entry> entry = live->second;
  if (entry->running) {
    entry->raise_cancel();
    return CancelOutcome::cancelled;
  }
  std::erase(queue_, entry);
  update_gauges();
  lock.unlock();
  finish_unstarted(*entry, "cancelled before it started");
  return CancelOutcome::cancelled;
}

std::optional<v1::ExecutionResult> ExecutionService::find(const std::string& id,
                                                          const std::string& owner) const {
  std::lock_guard lock(mutex_);
  if (auto live = live_.find(id); live != live_.end() && live->second->job.owner == owner) {
    v1::ExecutionResult result;
    result.set_id(id);
    result.set_status(live->second->running ? "running" : "queued");
    result.set_exit_code(-1);
    result.set_runtime(live->second->job.request.runtime);
    *result.mutable_policy() = live->second->policy_ref();
    return result;
  }
  if (auto stored = recent_.find(id); stored != recent_.end() && stored->second.owner == owner) {
    return stored->second.result;
  }
  return std::nullopt;
}

void ExecutionService::stop_accepting() {
  std::unique_lock lock(mutex_);
  accepting_ = false;
  std::deque<std::shared_ptr<Entry>> never_started;
  never_started.swap(queue_);
  update_gauges();
  lock.unlock();
  for (auto& entry : never_started) finish_unstarted(*entry, "the service is shutting down");
}

void ExecutionService::shutdown(std::chrono::milliseconds grace) {
  stop_accepting();
  std::unique_lock lock(mutex_);
  work_done_.wait_for(lock, grace, [this] { return running_ == 0 || grace_ended_; });
  if (running_ > 0) {
    log_.warning(grace_ended_ ? "grace period ended early; cancelling running executions"
                              : "grace period over; cancelling running executions",
                 {{"running", static_cast<uint64_t>(running_)}});
    for (auto& [id, entry] : live_) {
      if (entry->running) entry->raise_cancel();
    }
    work_done_.wait(lock, [this] { return running_ == 0; });
  }
  workers_stop_ = true;
  lock.unlock();
  work_ready_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void ExecutionService::end_grace() {
  {
    std::lock_guard lock(mutex_);
    grace_ended_ = true;
  }
  work_done_.notify_all();
}

bool ExecutionService::accepting() const {
  std::lock_guard lock(mutex_);
  return accepting_;
}

size_t ExecutionService::in_flight() const {
  std::lock_guard lock(mutex_);
  return running_;
}

size_t ExecutionService::key_share_limit() const {
  return options_.max_concurrent + options_.max_queued - options_.max_queued / 4;
}

size_t ExecutionService::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void ExecutionService::update_gauges() {
  metrics_.set_in_flight(running_);
  metrics_.set_queued(queue_.size());
}

void ExecutionService::work() {
  for (;;) {
    std::unique_lock lock(mutex_);
    work_ready_.wait(lock, [this] { return workers_stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    // The first queued execution of the key with the fewest running: a key that queued many
    // does not make every other key wait behind all of them.
    auto next = queue_.begin();
    size_t fewest = SIZE_MAX;
    for (auto it = queue_.begin(); it != queue_.end() && fewest > 0; ++it) {
      const auto running = running_by_owner_.find((*it)->job.owner);
      const size_t count = running == running_by_owner_.end() ? 0 : running->second;
      if (count < fewest) {
        fewest = count;
        next = it;
      }
    }
    std::shared_ptr<Entry> entry = *next;
    queue_.erase(next);
    entry->running = true;
    ++running_;
    ++running_by_owner_[entry->job.owner];
    update_gauges();
    lock.unlock();

    execute(*entry);

    lock.lock();
    --running_;
    if (auto owner = running_by_owner_.find(entry->job.owner); --owner->second == 0) {
      running_by_owner_.erase(owner);
    }
    update_gauges();
    lock.unlock();
    work_done_.notify_all();
  }
}

void ExecutionService::execute(Entry& entry) {
  const Job& job = entry.job;
  ExecutionObserver& observer = *entry.observer;
  EventTranslator events(entry.id, job.request.runtime, entry.policy_ref(),
                         [&observer](const v1::Event& event) { observer.on_event(event); });
  log_.info("execution started", {{"execution_id", entry.id},
                                  {"runtime", job.request.runtime},
                                  {"policy", job.policy->name},
                                  {"key", job.owner}});
  try {
    runner::EventSink sink = [&events](const runner::Event& event) {
      events.on_runner_event(event);
    };
    runner::RunResult run =
        job.run ? job.run(job.request, sink, entry.cancel_fd.get())
                : executor_.run(job.request, *job.policy, sink, entry.cancel_fd.get());
    v1::ExecutionResult result = to_result(run, entry.id);
    // The runner names policy and runtime; fall back to what the API chose if it did not.
    if (result.policy().name().empty()) *result.mutable_policy() = entry.policy_ref();
    if (result.runtime().empty()) result.set_runtime(job.request.runtime);
    metrics_.syscalls_stopped(job.policy->name, run.outcome);
    if (run.network_used) metrics_.network_used(job.policy->name, run.network);
    if (audit_) {
      try {
        audit_(entry.id, job, run);
      } catch (const std::exception& error) {
        log_.error("audit log write failed", {{"execution_id", entry.id}, {"error", error.what()}});
      }
    }
    record(entry, result);
    if (run.rejected) {
      // Only running it showed the request at fault (a file that does not fit): a request
      // error naming the field, as when validation catches it before the run.
      const runner::RequestError& rejected = *run.rejected;
      events.finish_error(make_error("invalid_request",
                                     to_valid_utf8(rejected.field + ": " + rejected.message),
                                     rejected.field));
      return;
    }
    events.finish_exit(result);
  } catch (const std::exception& error) {
    // The runner reports what programs do as results; an exception is airlock's own failure.
    log_.error("execution failed", {{"execution_id", entry.id}, {"error", error.what()}});
    v1::ExecutionResult result;
    result.set_id(entry.id);
    result.set_status("setup_error");
    result.set_exit_code(-1);
    result.set_runtime(job.request.runtime);
    *result.mutable_policy() = entry.policy_ref();
    result.set_reason("airlock failed to run the program: " + to_valid_utf8(error.what()));
    result.set_summary("setup_error: " + result.reason());
    record(entry, result);
    events.finish_error(make_error("internal", result.reason()));
  }
}

void ExecutionService::finish_unstarted(Entry& entry, const std::string& reason) {
  v1::ExecutionResult result;
  result.set_id(entry.id);
  result.set_status("cancelled");
  result.set_exit_code(-1);
  result.set_runtime(entry.job.request.runtime);
  *result.mutable_policy() = entry.policy_ref();
  result.set_reason(reason);
  result.set_summary("cancelled: " + reason + "; the program did not run");
  record(entry, result);
  ExecutionObserver& observer = *entry.observer;
  EventTranslator events(entry.id, entry.job.request.runtime, entry.policy_ref(),
                         [&observer](const v1::Event& event) { observer.on_event(event); });
  events.finish_exit(result);
}

void ExecutionService::record(Entry& entry, const v1::ExecutionResult& result) {
  // Before the final event goes out: a client that reads it may at once use the session again.
  entry.job.hold.reset();
  auto latency = std::chrono::steady_clock::now() - entry.submitted;
  metrics_.execution_finished(entry.job.request.runtime, result.status(), latency);
  log_.info("execution finished",
            {{"execution_id", entry.id},
             {"status", result.status()},
             {"exit_code", result.exit_code()},
             {"wall_ms", result.usage().wall_time_ms()},
             {"latency_ms",
              static_cast<int64_t>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(latency).count())}});
  std::lock_guard lock(mutex_);
  live_.erase(entry.id);
  if (options_.recent_results == 0) return;
  while (recent_order_.size() >= options_.recent_results) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  auto share = room_for_result(result.ByteSizeLong());
  if (share) {
    recent_[entry.id] = Stored{entry.job.owner, result, std::move(*share)};
  } else {
    // Kept without the files' content, which is what makes a result large; the listing stays.
    v1::ExecutionResult slim = result;
    for (auto& file : *slim.mutable_files()) {
      file.clear_content();
      file.set_truncated(true);
    }
    share = room_for_result(slim.ByteSizeLong());
    if (!share) return;
    recent_[entry.id] = Stored{entry.job.owner, std::move(slim), std::move(*share)};
  }
  recent_order_.push_back(entry.id);
}

std::optional<BudgetShare> ExecutionService::room_for_result(uint64_t bytes) {
  if (options_.memory_budget == nullptr) return BudgetShare();
  while (!options_.memory_budget->try_take(bytes)) {
    if (recent_order_.empty()) return std::nullopt;
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  return BudgetShare(*options_.memory_budget, bytes);
}

}  // namespace airlock::api
