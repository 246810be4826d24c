// What happened to a run: an ordinary value, including when the program misbehaved.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"

namespace airlock::sandbox {

enum class RunStatus {
  ok,              // exited 0
  nonzero_exit,    // exited with another code
  signaled,        // killed by a signal it did not get from airlock
  timeout,         // wall or cpu time limit reached
  memory_limit,    // the kernel's OOM killer ended it inside its memory limit
  process_limit,   // it tried to have more processes than allowed, and did not end well
  output_limit,    // it wrote more than allowed and the policy says to kill on overflow
  violation,       // a syscall rule with the kill action matched
  setup_error,     // airlock could not set the sandbox up; the program never ran
  cancelled,       // the caller cancelled the run
};

std::string_view to_string(RunStatus status);

// An Outcome's signal by name: "SIGSEGV".
std::string signal_name(int signal);

enum class TimeoutKind { none, wall, cpu };

// Blocked calls an outcome lists; the rest are only counted (blocked_dropped).
inline constexpr size_t kMaxBlockedListed = 64;

// One syscall that a rule stopped (or logged).
struct SyscallEvent {
  std::string syscall;  // name, or "syscall N" when unknown
  int number = -1;
  uint32_t arch = 0;    // AUDIT_ARCH_* of the call
  std::array<uint64_t, 6> args{};
  std::string action;   // "kill", "errno(EPERM)", "log"
  std::string origin;   // the rule that matched, e.g. `floor (@mount)`
  std::string detail;   // human-readable call, e.g. `socket(AF_INET, SOCK_STREAM, 0)`
};

struct Usage {
  std::chrono::milliseconds wall{0};
  std::chrono::milliseconds cpu_user{0};
  std::chrono::milliseconds cpu_system{0};
  uint64_t peak_memory_bytes = 0;
  uint32_t peak_processes = 0;  // when the cgroup backend can tell; 0 otherwise
};

struct Outcome {
  RunStatus status = RunStatus::setup_error;
  int exit_code = -1;  // with ok / nonzero_exit
  int signal = 0;      // with signaled; SIGKILL with the limits airlock or the OOM killer enforce
                       // by killing (SIGXCPU, SIGXFSZ when an rlimit did); SIGSYS with violation
  TimeoutKind timeout = TimeoutKind::none;
  Usage usage;
  std::optional<SyscallEvent> violation;  // the call that ended the run (status violation)
  std::vector<SyscallEvent> blocked;      // calls refused with an errno or logged; capped
  uint64_t blocked_dropped = 0;           // blocked calls not listed because of the cap
  bool process_limit_hit = false;         // a fork failed on the process limit at least once
  std::optional<SetupError> setup_error;  // with setup_error: the operation and errno that failed
  std::string reason;                     // one sentence a model can act on
};

// The outcome of a run that never started because `what` failed: status setup_error, the error
// kept whole, and the reason "<what> failed: <operation>: ENAME (description)".
Outcome setup_failure(const SetupError& error, std::string_view what = "sandbox setup");

// The exit codes of `airlock run` (docs/sandbox.md has the table). The program's own code when it
// exited, 128+N when a signal N it did not get from airlock ended it, else one code per limit,
// chosen as the tools operators know choose them:
inline constexpr int kExitTimeout = 124;      // wall or cpu time limit, as timeout(1)
inline constexpr int kExitSetupError = 125;   // the sandbox could not be set up, as timeout(1)
inline constexpr int kExitCompileError = 126; // the program could not be built to run (runner)
inline constexpr int kExitCancelled = 130;    // 128+SIGINT: stopped by its caller
inline constexpr int kExitMemoryLimit = 137;  // 128+SIGKILL: the OOM killer's signal
inline constexpr int kExitOutputLimit = 153;  // 128+SIGXFSZ: the kernel's own output-size limit
inline constexpr int kExitViolation = 159;    // 128+SIGSYS: a seccomp kill, as the kernel's own

// The exit code `airlock run` uses for an outcome (see above).
int cli_exit_code(const Outcome& outcome);

}  // namespace airlock::sandbox
