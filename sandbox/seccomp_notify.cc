#include "sandbox/seccomp_notify.h"

#include <linux/seccomp.h>
#include <sys/ioctl.h>

#include <array>
#include <cstring>

namespace airlock::sandbox {

std::optional<NotifiedCall> answer_notification(int listener, const SeccompFilters& filters) {
  struct seccomp_notif request;
  std::memset(&request, 0, sizeof request);
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) return std::nullopt;
  std::array<uint64_t, 6> args;
  for (size_t i = 0; i < 6; ++i) args[i] = request.data.args[i];
  const int number = request.data.nr;
  Decision decision = decide(filters, request.data.arch, number, args);
  NotifiedCall call{
      decision.action,
      SyscallEvent{decision.native_abi ? syscall_name(number) : "non-native ABI", number,
                   request.data.arch, args, action_name(decision.action, decision.errno_value),
                   decision.origin, describe_call(request.data.arch, number, args)}};
  struct seccomp_notif_resp response;
  std::memset(&response, 0, sizeof response);
  response.id = request.id;
  switch (decision.action) {
    case SyscallAction::kill:
      return call;  // no answer (see the header)
    case SyscallAction::errno_code:
      response.error = -decision.errno_value;
      break;
    case SyscallAction::log:
    case SyscallAction::allow:
      // Safe here: the call goes ahead unchanged, no decision rests on memory it points to.
      response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      break;
  }
  ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
  return call;
}

}  // namespace airlock::sandbox
