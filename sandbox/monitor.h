// The supervisor's watch over one running sandbox: output pipes, stdin, seccomp notifications,
// the wall and cpu clocks, cancellation, and init's exit. Everything on one thread, one epoll.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/deadlines.h"
#include "sandbox/outcome.h"
#include "sandbox/process.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

namespace airlock::sandbox {

// Bytes for a live sandbox's stdin, handed from any thread to the monitor's.
struct StdinQueue {
  std::mutex mutex;
  std::string pending;
  // Bytes the monitor took from pending and has not yet written in full (what LiveSandbox's
  // bounded writes count besides pending); set by the monitor.
  size_t in_flight = 0;
  bool close_requested = false;
  bool closed = false;  // set by the monitor: the program's stdin is gone
  // The program's stdin (non-blocking) while the monitor has no bytes of its own in flight: a
  // writer with nothing queued ahead writes there itself, sparing a wake-up of the monitor's
  // thread on every frame. -1 otherwise; the monitor changes it only under the mutex.
  int direct_fd = -1;
  UniqueFd wake;  // eventfd the monitor watches
};

// A live sandbox's current task, handed from any thread to the monitor's.
struct TaskQueue {
  std::mutex mutex;
  bool changed = false;              // since the monitor last looked
  std::optional<TaskLimits> limits;  // none: no task; its cancel_fd is not used
  UniqueFd cancel;                   // the task's cancel fd, duplicated for the monitor
  UniqueFd wake;                     // eventfd the monitor watches
};

struct MonitorInputs {
  ChildProcess& child;
  Cgroup& cgroup;
  const SeccompFilters& filters;
  OutputHandler& output;
  const Limits& limits;
  const RunOptions& options;
  UniqueFd stdout_read;
  UniqueFd stderr_read;
  UniqueFd stdin_write;  // closed by the monitor after stdin_data, or handed to a copier
  UniqueFd control;
  UniqueFd control_channel_read;  // the program's fd 3, when Spec::control_channel
  StdinQueue* stdin_queue = nullptr;  // a live sandbox's stdin, instead of options.stdin_data
  TaskQueue* task_queue = nullptr;    // a live sandbox's tasks
};

enum class KilledFor { none, violation, output, wall_time, cpu_time, cancel };

struct MonitorResult {
  KilledFor killed_for = KilledFor::none;
  std::optional<SyscallEvent> violation;
  std::vector<SyscallEvent> blocked;
  uint64_t blocked_dropped = 0;
  std::optional<int> program_status;  // wait status of the program (pid 2), from init
  int init_status = 0;                // wait status of init
  std::optional<SetupError> setup_failure;
  bool started = false;
  std::chrono::steady_clock::duration wall{};
  uint64_t cpu_ns_at_end = 0;
  std::optional<TaskLimits> task_at_kill;  // the task whose limit ended the tree
};

// Runs until init has been reaped and both output pipes are at end of file.
MonitorResult monitor(MonitorInputs& inputs);

}  // namespace airlock::sandbox
