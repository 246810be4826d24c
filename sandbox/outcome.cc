#include "sandbox/outcome.h"

namespace airlock::sandbox {

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

int cli_exit_code(const Outcome& outcome) {
  if (outcome.status == RunStatus::setup_error) return 125;
  if (outcome.exit_code >= 0) return outcome.exit_code;
  if (outcome.signal > 0) return 128 + outcome.signal;
  return 125;
}

}  // namespace airlock::sandbox
