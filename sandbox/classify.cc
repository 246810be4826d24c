#include "sandbox/classify.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstring>

#include "sandbox/readable.h"

namespace airlock::sandbox {

namespace {

void from_wait_status(Outcome& outcome, int status) {
  if (WIFEXITED(status)) {
    outcome.exit_code = WEXITSTATUS(status);
    outcome.status = outcome.exit_code == 0 ? RunStatus::ok : RunStatus::nonzero_exit;
    outcome.reason = outcome.exit_code == 0
                         ? "exited normally"
                         : "exited with code " + std::to_string(outcome.exit_code);
  } else {
    outcome.signal = WIFSIGNALED(status) ? WTERMSIG(status) : (status & 0x7f);
    outcome.status = RunStatus::signaled;
    const char* description = sigdescr_np(outcome.signal);
    outcome.reason = "killed by " + signal_name(outcome.signal) +
                     (description ? std::string(" (") + description + ")" : "");
  }
}

}  // namespace

Outcome classify(const MonitorResult& result, const CgroupStats& stats, const Limits& limits) {
  // A run whose setup failed still reports the usage and blocked calls seen until then.
  Outcome outcome = result.setup_failure ? setup_failure(*result.setup_failure) : Outcome{};
  outcome.usage.wall = std::chrono::duration_cast<std::chrono::milliseconds>(result.wall);
  outcome.usage.cpu_user = std::chrono::milliseconds(stats.cpu_user_ns / 1'000'000);
  outcome.usage.cpu_system = std::chrono::milliseconds(stats.cpu_system_ns / 1'000'000);
  outcome.usage.peak_memory_bytes = stats.peak_memory_bytes;
  outcome.usage.peak_processes = static_cast<uint32_t>(stats.peak_processes);
  outcome.blocked = result.blocked;
  outcome.blocked_dropped = result.blocked_dropped;
  outcome.process_limit_hit = stats.pids_max_hits > 0;

  if (result.setup_failure) return outcome;

  // What the program itself ended with; init's own status if it never reported (it was killed).
  from_wait_status(outcome, result.program_status.value_or(result.init_status));
  if (!result.program_status && WIFEXITED(result.init_status)) {
    // init exits 0 after reporting; without a report the program's fate is unknown: killed.
    outcome.exit_code = -1;
    outcome.signal = SIGKILL;
    outcome.status = RunStatus::signaled;
    outcome.reason = "killed by SIGKILL";
  }
  const bool ended_badly = outcome.status != RunStatus::ok;

  switch (result.killed_for) {
    case KilledFor::violation:
      outcome.status = RunStatus::violation;
      outcome.violation = result.violation;
      outcome.exit_code = -1;
      // The tree ends by SIGKILL, but a seccomp kill is reported as the kernel's own is
      // (SECCOMP_RET_KILL_PROCESS): SIGSYS. SIGKILL reads as "out of memory" to operators.
      outcome.signal = SIGSYS;
      if (result.violation) {
        outcome.reason = result.violation->detail + " denied by " + result.violation->origin;
      }
      return outcome;
    case KilledFor::output:
      outcome.status = RunStatus::output_limit;
      outcome.exit_code = -1;
      outcome.signal = SIGKILL;
      outcome.reason = "output limit reached";
      return outcome;
    case KilledFor::cancel:
      outcome.status = RunStatus::cancelled;
      outcome.exit_code = -1;
      outcome.signal = SIGKILL;
      outcome.reason = "cancelled";
      return outcome;
    case KilledFor::wall_time:
    case KilledFor::cpu_time: {
      outcome.status = RunStatus::timeout;
      outcome.exit_code = -1;
      outcome.signal = SIGKILL;
      outcome.timeout = result.killed_for == KilledFor::wall_time ? TimeoutKind::wall
                                                                  : TimeoutKind::cpu;
      // The task's limit when it was the task's that ran out: the one its caller asked for.
      const auto& task = result.task_at_kill;
      outcome.reason =
          outcome.timeout == TimeoutKind::wall
              ? "wall time limit " + format_duration(task ? task->wall_time : limits.wall_time) +
                    " reached"
              : "cpu time limit " + format_duration(task ? task->cpu_time : limits.cpu_time) +
                    " reached";
      break;
    }
    case KilledFor::none:
      if (outcome.status == RunStatus::signaled && outcome.signal == SIGXCPU) {
        outcome.status = RunStatus::timeout;
        outcome.timeout = TimeoutKind::cpu;
        outcome.reason = "cpu time limit " + format_duration(limits.cpu_time) + " reached";
      } else if (outcome.status == RunStatus::signaled && outcome.signal == SIGXFSZ) {
        outcome.reason = "file size limit " + format_bytes(limits.file_size_max_bytes) +
                         " reached (killed by SIGXFSZ)";
      }
      break;
  }
  // A limit the kernel enforced explains a bad ending better than the signal or code it caused.
  if (ended_badly && stats.oom_kills > 0) {
    outcome.status = RunStatus::memory_limit;
    outcome.reason = "memory limit " + format_bytes(limits.memory_max_bytes) + " reached";
  } else if (ended_badly && stats.pids_max_hits > 0) {
    std::string then = outcome.status == RunStatus::timeout ? ", then " + outcome.reason : "";
    outcome.status = RunStatus::process_limit;
    outcome.reason = "process limit " + std::to_string(limits.max_processes) + " reached" + then;
  }
  return outcome;
}

}  // namespace airlock::sandbox
