// Sandbox::start: a sandbox that keeps running, its monitor on a thread of its own.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <thread>

#include "sandbox/supervisor.h"

namespace airlock::sandbox {
namespace {

void wake(const UniqueFd& eventfd) {
  uint64_t one = 1;
  (void)::write(eventfd.get(), &one, sizeof one);
}

class Live final : public LiveSandbox {
 public:
  Live(Supervisor& supervisor, Spec spec, OutputHandler& output, UniqueFd stdin_wake,
       UniqueFd task_wake, UniqueFd cancel, Launcher launcher)
      : supervisor_(supervisor),
        spec_(std::move(spec)),
        output_(output),
        cancel_(std::move(cancel)),
        launcher_(std::move(launcher)) {
    queue_.wake = std::move(stdin_wake);
    tasks_.wake = std::move(task_wake);
    options_.cancel_fd = cancel_.get();
  }

  ~Live() override {
    kill();
    if (thread_.joinable()) thread_.join();
  }

  // Launches on a new thread (the child's parent for its whole life) and waits for the launch.
  Status begin() {
    auto ready = launched_.get_future();
    thread_ = std::thread([this] { body(); });
    return ready.get();
  }

  bool write_stdin(std::string_view data) override {
    return write_stdin_bounded(data, SIZE_MAX) == StdinWrite::queued;
  }

  StdinWrite write_stdin_bounded(std::string_view data, size_t max_waiting_bytes) override {
    {
      std::lock_guard lock(queue_.mutex);
      if (queue_.closed || queue_.close_requested) return StdinWrite::closed;
      const size_t waiting = queue_.pending.size() + queue_.in_flight;
      if (waiting > 0 && data.size() > max_waiting_bytes - std::min(waiting, max_waiting_bytes)) {
        return StdinWrite::full;
      }
      if (queue_.pending.empty() && queue_.direct_fd >= 0) {
        // An error (EPIPE) is the monitor's to meet when it writes the rest: it closes stdin.
        ssize_t written = ::write(queue_.direct_fd, data.data(), data.size());
        if (written > 0) data.remove_prefix(static_cast<size_t>(written));
        if (data.empty()) return StdinWrite::queued;
      }
      queue_.pending.append(data);
    }
    wake(queue_.wake);
    return StdinWrite::queued;
  }

  void close_stdin() override {
    {
      std::lock_guard lock(queue_.mutex);
      queue_.close_requested = true;
    }
    wake(queue_.wake);
  }

  void kill() override { wake(cancel_); }

  Status begin_task(const TaskLimits& limits) override {
    UniqueFd cancel;
    if (limits.cancel_fd >= 0) {
      // A copy of our own: the caller may close its fd once the task ends, before the monitor
      // has stopped watching it.
      auto copy = duplicate_fd(limits.cancel_fd);
      if (!copy) return copy.error();
      cancel = std::move(copy.value());
    }
    TaskStart start{std::chrono::steady_clock::now(), usage_so_far(), memory_usage_bytes()};
    {
      std::lock_guard lock(mutex_);
      task_start_ = start;
    }
    set_task(limits, std::move(cancel));
    return {};
  }

  Usage end_task() override {
    set_task(std::nullopt, UniqueFd());
    TaskStart start;
    {
      std::lock_guard lock(mutex_);
      start = task_start_;
    }
    using std::chrono::milliseconds;
    const Usage now = usage_so_far();
    auto grown = [](milliseconds after, milliseconds before) {
      return after > before ? after - before : milliseconds{0};
    };
    Usage used;
    used.wall =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start.at);
    // The cgroup's counters cover the tree's whole life: the task's share is what they grew by.
    used.cpu_user = grown(now.cpu_user, start.usage.cpu_user);
    used.cpu_system = grown(now.cpu_system, start.usage.cpu_system);
    used.peak_memory_bytes = now.peak_memory_bytes > start.usage.peak_memory_bytes
                                 ? now.peak_memory_bytes
                                 : std::max(start.memory_bytes, memory_usage_bytes());
    used.peak_processes = now.peak_processes;
    return used;
  }

  bool ended() const override {
    std::lock_guard lock(mutex_);
    return ended_;
  }

  const Outcome& wait() override {
    std::unique_lock lock(mutex_);
    ended_changed_.wait(lock, [this] { return ended_; });
    return outcome_;
  }

  uint64_t cpu_usage_ns() override {
    std::lock_guard lock(mutex_);
    if (ended_ || cgroup_ == nullptr) {
      return static_cast<uint64_t>(
          std::chrono::nanoseconds(outcome_.usage.cpu_user + outcome_.usage.cpu_system).count());
    }
    auto used = cgroup_->cpu_usage_ns();
    return used ? used.value() : 0;
  }

  Usage usage_so_far() override {
    std::lock_guard lock(mutex_);
    if (ended_ || cgroup_ == nullptr) return outcome_.usage;
    Usage usage;
    if (auto stats = cgroup_->stats()) {
      using std::chrono::duration_cast;
      using std::chrono::milliseconds;
      using std::chrono::nanoseconds;
      usage.cpu_user = duration_cast<milliseconds>(nanoseconds(stats.value().cpu_user_ns));
      usage.cpu_system = duration_cast<milliseconds>(nanoseconds(stats.value().cpu_system_ns));
      usage.peak_memory_bytes = stats.value().peak_memory_bytes;
      usage.peak_processes = static_cast<uint32_t>(stats.value().peak_processes);
    }
    return usage;
  }

  uint64_t memory_usage_bytes() override {
    std::lock_guard lock(mutex_);
    if (ended_ || cgroup_ == nullptr) return 0;
    auto used = cgroup_->memory_usage_bytes();
    return used ? used.value() : 0;
  }

  Status to_foreground() override {
    std::lock_guard lock(mutex_);
    if (ended_ || cgroup_ == nullptr) return {};
    return cgroup_->set_cpu_share(CpuShare::normal);
  }

 private:
  void body() {
    auto launch = launcher_(spec_);
    if (!launch) {
      end(setup_failure(launch.error()));
      launched_.set_value(launch.error());
      return;
    }
    Launch& running = *launch.value();
    {
      std::lock_guard lock(mutex_);
      cgroup_ = running.cgroup.get();
    }
    launched_.set_value(Status{});
    MonitorInputs inputs = monitor_inputs(running, output_, spec_.limits, options_, &queue_);
    inputs.task_queue = &tasks_;
    MonitorResult result = monitor(inputs);
    Outcome outcome = supervisor_.finish(running, result, spec_.limits);
    {
      std::lock_guard lock(mutex_);
      cgroup_ = nullptr;
    }
    end(std::move(outcome));
  }

  // What end_task measures the task's usage against.
  struct TaskStart {
    std::chrono::steady_clock::time_point at;
    Usage usage;
    uint64_t memory_bytes = 0;
  };

  void set_task(std::optional<TaskLimits> limits, UniqueFd cancel) {
    {
      std::lock_guard lock(tasks_.mutex);
      tasks_.limits = limits;
      tasks_.cancel = std::move(cancel);
      tasks_.changed = true;
    }
    wake(tasks_.wake);
  }

  void end(Outcome outcome) {
    {
      std::lock_guard lock(mutex_);
      outcome_ = std::move(outcome);
      ended_ = true;
    }
    ended_changed_.notify_all();
    output_.on_ended();
  }

  Supervisor& supervisor_;
  const Spec spec_;
  OutputHandler& output_;
  UniqueFd cancel_;
  const Launcher launcher_;
  RunOptions options_;
  StdinQueue queue_;
  TaskQueue tasks_;
  std::promise<Status> launched_;  // a member: set_value may still run as begin() returns
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable ended_changed_;
  bool ended_ = false;
  Outcome outcome_;
  Cgroup* cgroup_ = nullptr;  // while the monitor runs
  TaskStart task_start_;
};

}  // namespace

Expected<std::unique_ptr<LiveSandbox>> start_live(Supervisor& supervisor, const Spec& spec,
                                                  OutputHandler& output, Launcher launcher) {
  auto stdin_wake = make_eventfd();
  if (!stdin_wake) return stdin_wake.error();
  auto task_wake = make_eventfd();
  if (!task_wake) return task_wake.error();
  auto cancel = make_eventfd();
  if (!cancel) return cancel.error();
  auto live = std::make_unique<Live>(supervisor, spec, output, std::move(stdin_wake.value()),
                                     std::move(task_wake.value()), std::move(cancel.value()),
                                     std::move(launcher));
  if (Status s = live->begin(); !s) return s.error();
  return std::unique_ptr<LiveSandbox>(std::move(live));
}

Expected<std::unique_ptr<LiveSandbox>> Supervisor::start(const Spec& spec, OutputHandler& output) {
  return start_live(*this, spec, output,
                    [this](const Spec& running) { return launch(running, false); });
}

}  // namespace airlock::sandbox
