#include "policies/actions.h"

#include "policies/errors.h"
#include "policies/kernel_names.h"

namespace airlock::policies {

using sandbox::SyscallAction;

Parsed<Action> parse_action(const std::string& text) {
  if (text == "allow") return Action{SyscallAction::allow, 0};
  if (text == "log") return Action{SyscallAction::log, 0};
  if (text == "kill") return Action{SyscallAction::kill, 0};
  const std::string prefix = "errno(";
  if (text.size() > prefix.size() + 1 && text.compare(0, prefix.size(), prefix) == 0 &&
      text.back() == ')') {
    const std::string name = text.substr(prefix.size(), text.size() - prefix.size() - 1);
    if (auto value = errno_from_name(name)) return Action{SyscallAction::errno_code, *value};
    return "unknown errno name '" + name + "'" + did_you_mean(name, errno_names());
  }
  const std::string message = "unknown action '" + text +
                              "': expected allow, log, kill or errno(NAME) such as errno(EPERM)";
  const std::string suggestion = nearest(text, {"allow", "log", "kill", "errno"});
  return suggestion.empty() ? message : message + " — did you mean '" + suggestion + "'?";
}

Action default_action_of(const sandbox::SeccompPolicy& seccomp) {
  if (seccomp.default_action != SyscallAction::errno_code) return {seccomp.default_action, 0};
  return {seccomp.default_action, seccomp.default_errno};
}

std::string format_action(const Action& action) {
  switch (action.kind) {
    case SyscallAction::allow:
      return "allow";
    case SyscallAction::log:
      return "log";
    case SyscallAction::kill:
      return "kill";
    case SyscallAction::errno_code:
      return "errno(" + errno_to_name(action.errno_value) + ")";
  }
  return "kill";
}

int strictness(const Action& action) {
  switch (action.kind) {
    case SyscallAction::allow:
      return 0;
    case SyscallAction::log:
      return 1;
    case SyscallAction::errno_code:
      return 2;
    case SyscallAction::kill:
      return 3;
  }
  return 3;
}

}  // namespace airlock::policies
