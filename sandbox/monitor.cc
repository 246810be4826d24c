#include "sandbox/monitor.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "sandbox/fd_passing.h"
#include "sandbox/seccomp_notify.h"

namespace airlock::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;
constexpr auto kDrainAfterExit = std::chrono::seconds(2);

enum Tag : uint64_t {
  kStdout, kStderr, kControlChannel, kStdin, kStdinWake, kControl, kPidfd, kTimer, kCancel,
  kTaskWake, kTaskCancel, kListener0
};

class Monitor {
 public:
  explicit Monitor(MonitorInputs& in) : in_(in) {}

  MonitorResult run() {
    start_ = Clock::now();
    clocks_.emplace(start_, in_.limits.wall_time, in_.limits.cpu_time, in_.limits.cpu_millicores);
    auto epoll = make_epoll();
    auto timer = make_timerfd();
    if (!epoll || !timer) {
      in_.child.kill();
      result_.setup_failure = !epoll ? epoll.error() : timer.error();
    } else {
      epoll_ = std::move(epoll.value());
      timer_ = std::move(timer.value());
      loop();
    }
    stdin_queue_closed();  // the fd is the launch's, closed after we return
    result_.wall = Clock::now() - start_;
    if (auto cpu = in_.cgroup.cpu_usage_ns()) result_.cpu_ns_at_end = cpu.value();
    return std::move(result_);
  }

 private:
  static bool readable(int fd) {
    struct pollfd poll_fd {fd, POLLIN, 0};
    return ::poll(&poll_fd, 1, 0) == 1;
  }

  void watch(int fd, uint32_t events, uint64_t tag) {
    struct epoll_event event {};
    event.events = events;
    event.data.u64 = tag;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event);
  }
  void unwatch(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

  void loop() {
    watch(in_.stdout_read.get(), EPOLLIN, kStdout);
    watch(in_.stderr_read.get(), EPOLLIN, kStderr);
    channel_open_ = in_.control_channel_read.valid();
    if (channel_open_) watch(in_.control_channel_read.get(), EPOLLIN, kControlChannel);
    watch(in_.control.get(), EPOLLIN, kControl);
    watch(in_.child.pidfd(), EPOLLIN, kPidfd);
    watch(timer_.get(), EPOLLIN, kTimer);
    if (in_.options.cancel_fd >= 0) watch(in_.options.cancel_fd, EPOLLIN, kCancel);
    if (in_.task_queue != nullptr) {
      watch(in_.task_queue->wake.get(), EPOLLIN, kTaskWake);
      take_task();  // one begun before the loop
    }
    stdin_pending_ = in_.options.stdin_data;
    if (in_.stdin_queue != nullptr) {
      watch(in_.stdin_queue->wake.get(), EPOLLIN, kStdinWake);
      take_queued_stdin();  // anything written before the loop began; opens the direct way
    } else if (in_.stdin_write.valid()) {
      if (stdin_pending_.empty()) {
        in_.stdin_write.reset();
      } else {
        watch(in_.stdin_write.get(), EPOLLOUT, kStdin);
      }
    }
    arm_timer();
    while (!(reaped_ && !stdout_open_ && !stderr_open_ && !channel_open_)) {
      struct epoll_event events[16];
      int timeout_ms = -1;
      if (reaped_) {
        auto left = drain_deadline_ - Clock::now();
        if (left <= Clock::duration::zero()) break;  // a stray writer: stop waiting for EOF
        timeout_ms = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(left).count() + 1);
      }
      int count = ::epoll_wait(epoll_.get(), events, 16, timeout_ms);
      if (count < 0 && errno != EINTR) break;
      for (int i = 0; i < count; ++i) dispatch(events[i]);
    }
  }

  void dispatch(const epoll_event& event) {
    switch (event.data.u64) {
      case kStdout: read_output(in_.stdout_read, Stream::stdout_stream, stdout_open_); break;
      case kStderr: read_output(in_.stderr_read, Stream::stderr_stream, stderr_open_); break;
      case kControlChannel:
        read_output(in_.control_channel_read, Stream::control_stream, channel_open_);
        break;
      case kStdinWake: take_queued_stdin(); break;
      case kStdin: write_stdin(); break;
      case kControl: read_control(); break;
      case kPidfd: reap(); break;
      case kTimer: check_clocks(); break;
      case kTaskWake: take_task(); break;
      case kCancel:
        kill(KilledFor::cancel);
        // The fd stays readable (it is the caller's to reset): watched on, it would wake this
        // loop without pause until the tree is gone, a core's worth of spinning per kill.
        unwatch(in_.options.cancel_fd);
        break;
      case kTaskCancel:
        take_task();  // the fd that fired may be of a task that has ended since
        if (task_cancel_.valid() && readable(task_cancel_.get())) {
          kill(KilledFor::cancel, &*task_);
          unwatch(task_cancel_.get());  // readable until its owner resets it, as above
          task_cancel_.reset();
        }
        break;
      default: {
        size_t index = event.data.u64 - kListener0;
        if (index < 2 && listeners_[index].valid()) {
          if (event.events & EPOLLIN) handle_notification(listeners_[index].get());
          if ((event.events & EPOLLHUP) && !(event.events & EPOLLIN)) {
            unwatch(listeners_[index].get());
            listeners_[index].reset();
          }
        }
      }
    }
  }

  // `task`: the task whose limit this is, when it is not one of the spec's.
  void kill(KilledFor reason, const TaskLimits* task = nullptr) {
    if (result_.killed_for == KilledFor::none && !reaped_) {
      result_.killed_for = reason;
      if (task != nullptr) result_.task_at_kill = *task;
    }
    in_.child.kill();
  }

  // Starts the clocks of a task begun since we last looked, or stops those of one ended.
  void take_task() {
    if (in_.task_queue == nullptr) return;
    uint64_t wakeups;
    while (::read(in_.task_queue->wake.get(), &wakeups, sizeof wakeups) > 0) {
    }
    {
      std::lock_guard lock(in_.task_queue->mutex);
      if (!in_.task_queue->changed) return;
      in_.task_queue->changed = false;
      task_ = in_.task_queue->limits;
      if (task_cancel_.valid()) unwatch(task_cancel_.get());
      task_cancel_ = std::move(in_.task_queue->cancel);
    }
    task_clocks_.reset();
    if (task_) {
      auto cpu = in_.cgroup.cpu_usage_ns();
      task_clocks_.emplace(Clock::now(), task_->wall_time, task_->cpu_time,
                           in_.limits.cpu_millicores, cpu ? cpu.value() : 0);
      if (task_cancel_.valid()) watch(task_cancel_.get(), EPOLLIN, kTaskCancel);
    }
    arm_timer();
  }

  void read_output(UniqueFd& fd, Stream stream, bool& open) {
    char buffer[kReadChunk];
    // A few reads per wake-up, so that one flooding stream cannot starve the other events.
    for (int round = 0; round < 4 && open; ++round) {
      ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
      }
      if (n <= 0) {
        unwatch(fd.get());
        fd.reset();
        open = false;
        return;
      }
      // Once the handler has said "enough", what still drains from the pipe is not its to see.
      if (result_.killed_for == KilledFor::output) continue;
      if (!in_.output.on_output(stream, std::string_view(buffer, static_cast<size_t>(n)))) {
        kill(KilledFor::output);
      }
    }
  }

  void write_stdin() {
    ssize_t n = ::write(in_.stdin_write.get(), stdin_pending_.data(), stdin_pending_.size());
    if (n > 0) stdin_pending_.remove_prefix(static_cast<size_t>(n));
    const bool failed = n < 0 && errno != EAGAIN && errno != EINTR;
    if (in_.stdin_queue != nullptr && !failed) {
      if (!stdin_pending_.empty()) return;
      live_stdin_.clear();
      stdin_pending_ = {};
      unwatch(in_.stdin_write.get());
      stdin_watched_ = false;
      take_queued_stdin();  // more may have come, or a close
      return;
    }
    if (failed || stdin_pending_.empty()) close_stdin();
  }

  void close_stdin() {
    if (!in_.stdin_write.valid()) return;
    unwatch(in_.stdin_write.get());
    stdin_queue_closed();  // before the fd goes: no writer may still use its number
    in_.stdin_write.reset();  // EOF for the program (or it closed its end: EPIPE)
  }

  void stdin_queue_closed() {
    if (in_.stdin_queue == nullptr) return;
    std::lock_guard lock(in_.stdin_queue->mutex);
    in_.stdin_queue->closed = true;
    in_.stdin_queue->direct_fd = -1;
    // Nothing will read what still waits: let it go.
    std::string().swap(in_.stdin_queue->pending);
    in_.stdin_queue->in_flight = 0;
  }

  // A live sandbox's writer queued bytes (or asked to close): move them into our buffer.
  void take_queued_stdin() {
    uint64_t wakeups;
    while (::read(in_.stdin_queue->wake.get(), &wakeups, sizeof wakeups) > 0) {
    }
    if (!in_.stdin_write.valid() || stdin_watched_) return;
    bool close_requested = false;
    {
      std::lock_guard lock(in_.stdin_queue->mutex);
      live_stdin_.swap(in_.stdin_queue->pending);
      in_.stdin_queue->in_flight = live_stdin_.size();
      close_requested = in_.stdin_queue->close_requested;
      // Writers queue behind bytes of ours still in flight; with none, they write themselves
      // (never again once the program has ended).
      in_.stdin_queue->direct_fd =
          live_stdin_.empty() && !in_.stdin_queue->closed ? in_.stdin_write.get() : -1;
    }
    if (!live_stdin_.empty()) {
      stdin_pending_ = live_stdin_;
      watch(in_.stdin_write.get(), EPOLLOUT, kStdin);
      stdin_watched_ = true;
    } else if (close_requested) {
      close_stdin();
    }
  }

  void read_control() {
    for (;;) {
      ControlMessage message;
      struct iovec io {&message, sizeof message};
      int fds[kMaxGatewayFds];
      const Received received =
          receive_with_fds(in_.control.get(), &io, 1, fds, kMaxGatewayFds, MSG_DONTWAIT);
      if (received.bytes <= 0) {
        if (received.bytes == 0 || errno != EAGAIN) unwatch(in_.control.get());
        return;
      }
      UniqueFd passed[kMaxGatewayFds];  // closed at the end of the turn unless kept
      for (int i = 0; i < received.fd_count; ++i) passed[i] = UniqueFd::adopt(fds[i]);
      if (static_cast<size_t>(received.bytes) != sizeof message) continue;
      std::optional<GatewaySockets> sockets;
      if (message.kind == ControlMessage::gateway_sockets &&
          (sockets = take_gateway_sockets(passed, received.fd_count))) {
        in_.output.on_gateway_sockets(std::move(*sockets));
      } else if (message.kind == ControlMessage::listeners) {
        receive_listeners(passed);
        result_.started = true;
        in_.output.on_started();
      } else if (message.kind == ControlMessage::program_status) {
        result_.program_status = message.wait_status;
      } else if (message.kind == ControlMessage::setup_failed && !result_.setup_failure) {
        message.text[sizeof message.text - 1] = '\0';
        result_.setup_failure = SetupError{message.text, message.error_number};
      }
    }
  }

  void receive_listeners(UniqueFd (&passed)[kMaxGatewayFds]) {
    for (size_t i = 0; i < 2; ++i) {
      if (!passed[i].valid()) continue;
      const int fd = passed[i].get();
      listeners_[i] = std::move(passed[i]);
      watch(fd, EPOLLIN, kListener0 + i);
    }
  }

  void handle_notification(int listener) {
    std::optional<NotifiedCall> call = answer_notification(listener, in_.filters);
    if (!call) return;  // its caller is gone
    if (call->action == SyscallAction::kill) {
      if (!result_.violation) result_.violation = std::move(call->event);
      kill(KilledFor::violation);  // the call stays unanswered until the kill reaches it
    } else if (call->action != SyscallAction::allow) {
      record_blocked(std::move(call->event));
    }
  }

  void record_blocked(SyscallEvent event) {
    in_.output.on_blocked(event);
    if (result_.blocked.size() < kMaxBlockedListed) {
      result_.blocked.push_back(std::move(event));
    } else {
      ++result_.blocked_dropped;
    }
  }

  void reap() {
    int status = 0;
    if (!in_.child.try_reap(&status)) return;
    reaped_ = true;
    result_.init_status = status;
    stdin_queue_closed();
    drain_deadline_ = Clock::now() + kDrainAfterExit;
    unwatch(in_.child.pidfd());
    read_control();  // init reported the program's status before it exited
  }

  void check_clocks() {
    uint64_t expirations;
    while (::read(timer_.get(), &expirations, sizeof expirations) > 0) {
    }
    auto now = Clock::now();
    if (clocks_->wall_expired(now)) {
      kill(KilledFor::wall_time);
      return;
    }
    take_task();  // a task ended before its deadline is not held to it
    if (task_clocks_ && task_clocks_->wall_expired(now)) {
      kill(KilledFor::wall_time, &*task_);
      return;
    }
    if (clocks_->cpu_check_due(now) || (task_clocks_ && task_clocks_->cpu_check_due(now))) {
      auto used = in_.cgroup.cpu_usage_ns();
      auto cpu = used ? std::optional(used.value()) : std::nullopt;
      if (clocks_->cpu_check_due(now) && clocks_->cpu_expired(now, cpu)) {
        kill(KilledFor::cpu_time);
        return;
      }
      if (task_clocks_ && task_clocks_->cpu_check_due(now) && task_clocks_->cpu_expired(now, cpu)) {
        kill(KilledFor::cpu_time, &*task_);
        return;
      }
    }
    arm_timer();
  }

  void arm_timer() {
    auto when = clocks_->next_wake();
    if (task_clocks_) when = std::min(when, task_clocks_->next_wake());
    auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch());
    struct itimerspec spec {};
    spec.it_value.tv_sec = since_epoch.count() / 1'000'000'000;
    spec.it_value.tv_nsec = since_epoch.count() % 1'000'000'000;
    ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  MonitorInputs& in_;
  MonitorResult result_;
  UniqueFd epoll_, timer_;
  UniqueFd listeners_[2];
  std::string_view stdin_pending_;
  std::string live_stdin_;  // what stdin_pending_ points into, for a live sandbox
  bool stdin_watched_ = false;
  bool stdout_open_ = true, stderr_open_ = true, channel_open_ = false, reaped_ = false;
  Clock::time_point start_, drain_deadline_;
  std::optional<Deadlines> clocks_;  // from start_
  std::optional<TaskLimits> task_;   // a live sandbox's current task
  std::optional<Deadlines> task_clocks_;
  UniqueFd task_cancel_;
};

}  // namespace

MonitorResult monitor(MonitorInputs& inputs) { return Monitor(inputs).run(); }

}  // namespace airlock::sandbox
