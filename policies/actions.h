// Syscall actions as written in policies: `allow`, `log`, `kill`, `errno(EPERM)` (any errno name).
#pragma once

#include <string>

#include "policies/units.h"
#include "sandbox/spec.h"

namespace airlock::policies {

struct Action {
  sandbox::SyscallAction kind = sandbox::SyscallAction::kill;
  int errno_value = 0;  // with errno_code

  bool operator==(const Action&) const = default;
};

// Parses an action, or says what was expected (with a suggestion for a misspelled errno name).
Parsed<Action> parse_action(const std::string& text);

// The default action of a filter as an Action (errno only kept with errno_code).
Action default_action_of(const sandbox::SeccompPolicy& seccomp);

// The written form: "allow", "kill", "log", "errno(EPERM)".
std::string format_action(const Action& action);

// How much an action lets through, for `policy diff`: allow 0, log 1, errno 2, kill 3.
int strictness(const Action& action);

}  // namespace airlock::policies
