// Seccomp: the floor and the policy compiled (with libseccomp) into two stacked BPF filters, and
// the supervisor's side of user notifications: which rule a stopped call matched, and what to do.
//
// The kernel allows one listener per process, and applies the most restrictive verdict of all
// filters. So:
//  - the policy filter holds the floor's rules and the policy's, and owns the listener: calls that
//    must be reported (kill, errno, log) return SECCOMP_RET_USER_NOTIF and the supervisor answers;
//  - the floor filter, installed after it, is a safety net no policy rule can weaken: its rules
//    return SECCOMP_RET_TRACE, which ranks below USER_NOTIF (the report still reaches the
//    supervisor) but, with no tracer attached, fails the call with ENOSYS if the policy filter
//    ever let it through. libseccomp silently drops a conditional rule for a syscall that also has
//    an unconditional one; the net makes such a loss a missed report, never an allowed call.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

struct CompiledRule {
  int number;  // syscall number on this architecture
  SyscallRule rule;
};

struct SeccompFilters {
  std::vector<sock_filter> policy_program;  // installed first, with the listener
  std::vector<sock_filter> floor_program;   // installed second, without a listener
  std::vector<CompiledRule> floor;          // the floor minus the policy's exemptions
  std::vector<CompiledRule> policy;
  SeccompPolicy source;
};

// What a stopped call gets.
struct Decision {
  SyscallAction action = SyscallAction::allow;
  int errno_value = 0;
  std::string origin;
  bool native_abi = true;
};

// Compiles both filters. control_fd is the fd the child passes the listeners over: the policy
// filter always lets sendmsg() on it through, which the program can never use because it is at or
// above RLIMIT_NOFILE. Fails on unknown syscall names or rules libseccomp rejects.
Expected<std::shared_ptr<const SeccompFilters>> compile_seccomp(const SeccompPolicy& policy,
                                                                int control_fd);

// The verdict for a call, by evaluating the rules in user space the way the filters do: the
// policy's most severe matching rule (else its default action), unless a floor rule matches and
// is at least as severe: the floor can be tightened by a policy, never loosened.
Decision decide(const SeccompFilters& filters, uint32_t arch, int number,
                const std::array<uint64_t, 6>& args);

// "socket(AF_INET, SOCK_STREAM, 0)", "mount(...)" or "syscall 999(...)".
std::string describe_call(uint32_t arch, int number, const std::array<uint64_t, 6>& args);
std::string syscall_name(int number);
// "kill", "errno(EPERM)", "log", "allow".
std::string action_name(SyscallAction action, int errno_value);

// Child side (no allocation): installs a filter; with_listener returns the listener fd. Returns -1
// on failure (errno set), else 0 or the fd.
int install_filter(const sock_filter* program, size_t length, bool with_listener);
inline int install_filter(const std::vector<sock_filter>& program, bool with_listener) {
  return install_filter(program.data(), program.size(), with_listener);
}

}  // namespace airlock::sandbox
