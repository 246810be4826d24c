// One seccomp user notification, from the listener to its answer: the monitor's side of the
// policy's filter (the monitor keeps what it means for the run: a violation, a blocked call).
#pragma once

#include <optional>

#include "sandbox/outcome.h"
#include "sandbox/seccomp.h"

namespace airlock::sandbox {

struct NotifiedCall {
  SyscallAction action = SyscallAction::allow;  // what filters decided for it
  SyscallEvent event;                           // the call, described for reports
};

// Receives one notification from listener, decides it by filters and answers it: an errno, or
// on with the call unchanged (allow, log). A kill is left unanswered, so that the caller stays
// blocked in the call until the kill reaches it and never sees the call return. Nothing when no
// notification could be received (its caller is gone).
std::optional<NotifiedCall> answer_notification(int listener, const SeccompFilters& filters);

}  // namespace airlock::sandbox
