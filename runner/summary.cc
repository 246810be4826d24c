#include "runner/summary.h"

#include "sandbox/monitor.h"

namespace airlock::runner {

using sandbox::format_bytes;
using sandbox::format_duration;
using sandbox::RunStatus;

std::string hint_for(const RunResult& result, const sandbox::Limits& limits) {
  const sandbox::Outcome& outcome = result.outcome;
  if (result.compile_error) return "fix the compile errors shown in stderr and run again";
  switch (outcome.status) {
    case RunStatus::ok: return "";
    case RunStatus::nonzero_exit: return "the program reported an error: read stderr";
    case RunStatus::signaled: return "the program crashed; look for invalid memory access or abort()";
    case RunStatus::timeout:
      if (outcome.timeout == sandbox::TimeoutKind::cpu) {
        return "the program used more than " + format_duration(limits.cpu_time) +
               " of CPU time: make it do less work, or use a policy with a larger cpu limit";
      }
      return "the program ran longer than " + format_duration(limits.wall_time) +
             ": make it faster, make sure it does not wait for input, or ask for a longer limit";
    case RunStatus::memory_limit:
      return "use less memory (process data in pieces), or use a policy with a larger memory limit";
    case RunStatus::process_limit:
      return "start fewer processes or threads: at most " +
             std::to_string(limits.max_processes) + " may run at once";
    case RunStatus::output_limit: return "print less: summarize instead of dumping data";
    case RunStatus::violation:
      // Calls that software merely probes (new namespaces, io_uring, perf_event_open, keyctl)
      // fail with an errno and do not end the run, so they are not named here.
      return "the program made a system call its policy forbids (named above); remove that "
             "call: there is no network access, and no mounting or tracing";
    case RunStatus::setup_error: return "airlock could not start the program; see the reason";
    case RunStatus::cancelled: return "the run was cancelled before it finished";
  }
  return "";
}

std::string summarize(const RunResult& result, const sandbox::Limits& limits) {
  const sandbox::Outcome& outcome = result.outcome;
  std::string text = "status: " + result.status_name();
  if (result.compile_error) {
    text += " — the compiler rejected the program";
  } else if (outcome.status == RunStatus::memory_limit || outcome.status == RunStatus::timeout ||
             outcome.status == RunStatus::process_limit ||
             outcome.status == RunStatus::output_limit || outcome.status == RunStatus::violation) {
    text += " — killed: " + outcome.reason;
  } else if (!outcome.reason.empty()) {
    text += " — " + outcome.reason;
  }
  text += "\n";
  if (std::string hint = hint_for(result, limits); !hint.empty()) text += "hint: " + hint + "\n";
  if (outcome.exit_code >= 0) {
    text += "exit code: " + std::to_string(outcome.exit_code) + "\n";
  } else if (outcome.signal > 0) {
    text += "signal: " + sandbox::signal_name(outcome.signal) + "\n";
  }
  text += "usage: wall " + format_duration(outcome.usage.wall) + ", cpu " +
          format_duration(outcome.usage.cpu_user + outcome.usage.cpu_system) + ", peak memory " +
          format_bytes(outcome.usage.peak_memory_bytes) + "\n";
  auto describe = [](const char* name, const KeptOutput& kept) {
    std::string line = std::string(name) + " " + format_bytes(kept.total_bytes);
    if (kept.dropped_bytes > 0) {
      line += " (" + format_bytes(kept.dropped_bytes) + " dropped from the middle)";
    }
    return line;
  };
  text += "output: " + describe("stdout", result.stdout_output) + ", " +
          describe("stderr", result.stderr_output) + "\n";
  for (const sandbox::SyscallEvent& blocked : outcome.blocked) {
    text += "blocked: " + blocked.detail + " -> " + blocked.action + " by " + blocked.origin + "\n";
  }
  if (outcome.blocked_dropped > 0) {
    text += "blocked: " + std::to_string(outcome.blocked_dropped) + " more calls not listed\n";
  }
  if (!result.files.empty()) {
    text += "files:";
    for (const OutputFile& file : result.files) {
      text += " " + file.path + " (" + format_bytes(file.size_bytes) + ")";
    }
    text += "\n";
  }
  return text;
}

}  // namespace airlock::runner
