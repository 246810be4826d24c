#include "sandbox/outcome.h"

#include <cstring>

namespace airlock::sandbox {

std::string signal_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signal);
}

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::ok: return "ok";
    case RunStatus::nonzero_exit: return "nonzero_exit";
    case RunStatus::signaled: return "signaled";
    case RunStatus::timeout: return "timeout";
    case RunStatus::memory_limit: return "memory_limit";
    case RunStatus::process_limit: return "process_limit";
    case RunStatus::output_limit: return "output_limit";
    case RunStatus::violation: return "violation";
    case RunStatus::setup_error: return "setup_error";
    case RunStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

Outcome setup_failure(const SetupError& error, std::string_view what) {
  Outcome outcome;
  outcome.status = RunStatus::setup_error;
  outcome.setup_error = error;
  outcome.reason = std::string(what) + " failed: " + error.message();
  return outcome;
}

int cli_exit_code(const Outcome& outcome) {
  switch (outcome.status) {
    case RunStatus::ok:
    case RunStatus::nonzero_exit: return outcome.exit_code;
    case RunStatus::setup_error: return kExitSetupError;
    case RunStatus::timeout: return kExitTimeout;
    case RunStatus::memory_limit: return kExitMemoryLimit;
    case RunStatus::output_limit: return kExitOutputLimit;
    case RunStatus::violation: return kExitViolation;
    case RunStatus::cancelled: return kExitCancelled;
    case RunStatus::signaled:
    case RunStatus::process_limit:
      // process_limit: a refused fork does not end a program; how it then ended does (its own
      // code, its signal, or the time limit when the tree kept trying until then).
      if (outcome.timeout != TimeoutKind::none) return kExitTimeout;
      if (outcome.exit_code >= 0) return outcome.exit_code;
      if (outcome.signal > 0) return 128 + outcome.signal;
      return kExitSetupError;
  }
  return kExitSetupError;
}

}  // namespace airlock::sandbox
