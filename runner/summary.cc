#include "runner/summary.h"

#include <cctype>
#include <vector>

#include "sandbox/outcome.h"
#include "sandbox/readable.h"

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

namespace {

constexpr size_t kMaxErrorLine = 200;
constexpr size_t kRefusalsSummarized = 5;  // destinations the gateway refused, in the summary

std::string_view trim(std::string_view line) {
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

// "ValueError: ...", "java.lang.IllegalStateException: ...", "Exception in thread ...": a
// name ending in Error or Exception, at the start of the line.
bool is_exception_line(std::string_view line) {
  if (line.starts_with("Exception in thread ")) return true;
  size_t end = 0;
  while (end < line.size() && (std::isalnum(static_cast<unsigned char>(line[end])) ||
                               line[end] == '_' || line[end] == '.' || line[end] == '$')) {
    ++end;
  }
  std::string_view name = line.substr(0, end);
  if (name.empty() || (end < line.size() && line[end] != ':')) return false;
  return name.ends_with("Error") || name.ends_with("Exception") || name.ends_with("Interrupt") ||
         name.ends_with("Exit");
}

bool is_stack_frame(std::string_view line) {
  return line.starts_with("at ") || line.starts_with("File \"") || line.starts_with("^") ||
         line.starts_with("Traceback ") || line.starts_with("Node.js v") ||
         line.starts_with("[...") || line == "}";
}

// Cut at a character boundary, never inside a UTF-8 sequence.
std::string shortened(std::string_view line) {
  if (line.size() <= kMaxErrorLine) return std::string(line);
  size_t cut = kMaxErrorLine;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return std::string(line.substr(0, cut)) + "…";
}

}  // namespace

std::string error_line(std::string_view stderr_text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < stderr_text.size();) {
    size_t end = stderr_text.find('\n', start);
    if (end == std::string_view::npos) end = stderr_text.size();
    std::string_view line = trim(stderr_text.substr(start, end - start));
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (is_exception_line(*it)) return shortened(*it);
  }
  for (std::string_view line : lines) {
    if (line.find(": error:") != std::string_view::npos ||
        line.find(": fatal error:") != std::string_view::npos) {
      return shortened(line);
    }
  }
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (!is_stack_frame(*it)) return shortened(*it);
  }
  return "";
}

void quote_error_line(RunResult& result) {
  sandbox::Outcome& outcome = result.outcome;
  if (!result.compile_error && outcome.status != RunStatus::nonzero_exit) return;
  // The sandbox's own words for a nonzero exit; the exit code is in the summary anyway.
  if (!outcome.reason.empty() && !outcome.reason.starts_with("exited with code ")) return;
  if (std::string line = error_line(result.stderr_output.text); !line.empty()) {
    outcome.reason = std::move(line);
  }
}

std::string summarize(const RunResult& result, const sandbox::Limits& limits) {
  const sandbox::Outcome& outcome = result.outcome;
  std::string text = "status: " + result.status_name();
  if (result.compile_error) {
    text += " — the compiler rejected the program";
    if (!outcome.reason.empty()) text += ": " + outcome.reason;
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
  if (result.network_used) {
    const egress::Usage& used = result.network.usage;
    text += "network: " + std::to_string(used.connections) + " connections allowed, " +
            std::to_string(used.refused) + " refused, " + format_bytes(used.bytes_sent) +
            " sent, " + format_bytes(used.bytes_received) + " received\n";
    // Unlike a refused call, a refused destination explains what the code saw (a name that did
    // not resolve, a connection reset) whatever its status: a model should read it.
    const size_t listed = std::min<size_t>(result.network.blocked.size(), kRefusalsSummarized);
    for (size_t i = 0; i < listed; ++i) {
      const egress::Blocked& refused = result.network.blocked[i];
      text += "refused: " + refused.destination + " — " + refused.reason + "\n";
    }
    if (result.network.blocked.size() > listed) {
      text += "refused: " + std::to_string(result.network.blocked.size() - listed) +
              " more destinations, listed in the result\n";
    }
  }
  // Refused calls in a run that succeeded did not change its outcome (a JVM probes sockets at
  // every start), nor in one the compiler rejected (its diagnostics say why): they stay in
  // `blocked`, out of the lines a model reads.
  if (outcome.status != RunStatus::ok && !result.compile_error) {
    for (const sandbox::SyscallEvent& blocked : outcome.blocked) {
      text += "blocked: " + blocked.detail + " -> " + blocked.action + " by " + blocked.origin +
              "\n";
    }
    if (outcome.blocked_dropped > 0) {
      text += "blocked: " + std::to_string(outcome.blocked_dropped) + " more calls not listed\n";
    }
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
