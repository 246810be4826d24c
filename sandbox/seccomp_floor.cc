#include "sandbox/seccomp_floor.h"

#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>

#include <algorithm>

namespace airlock::sandbox {
namespace {

FloorRule deny(const char* group, const char* syscall) {
  return {group, {syscall, {}, SyscallAction::kill, 0, std::string("floor (") + group + ")"}};
}

// Calls that common software merely probes for, falling back when refused (Chromium and
// bubblewrap try user namespaces, profilers perf_event_open, Kerberos libraries the keyring):
// refused with the errno a container or an old kernel gives, and reported, so that the probe
// does not cost the run. A policy that wants them to end the run says `kill` for them.
FloorRule refuse(const char* group, const char* syscall, int errno_value) {
  FloorRule rule = deny(group, syscall);
  rule.rule.action = SyscallAction::errno_code;
  rule.rule.errno_value = errno_value;
  return rule;
}

// Refuses `syscall` (EPERM) when argument `index` has any of the namespace bits: one rule per bit, because
// a seccomp comparison can test "all of these bits" but not "any of them".
void deny_namespace_flags(std::vector<FloorRule>& rules, const char* syscall, unsigned index,
                          bool with_time) {
  std::vector<uint64_t> bits = {CLONE_NEWNS,  CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET};
  // For clone(2) bit 0x80 is part of the exit signal; only unshare(2) reads it as CLONE_NEWTIME.
  if (with_time) bits.push_back(CLONE_NEWTIME);
  for (uint64_t bit : bits) {
    FloorRule rule = refuse("@namespaces", syscall, EPERM);
    rule.rule.conditions.push_back({index, ArgCondition::Op::masked_eq, bit, bit});
    rules.push_back(rule);
  }
}

std::vector<FloorRule> build_floor() {
  std::vector<FloorRule> rules;
  for (const char* name : {"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"}) {
    rules.push_back(deny("@debug", name));
  }
  rules.push_back(deny("@bpf", "bpf"));
  rules.push_back(refuse("@perf", "perf_event_open", EPERM));
  rules.push_back(deny("@userfaultfd", "userfaultfd"));
  for (const char* name : {"keyctl", "add_key", "request_key"}) {
    rules.push_back(refuse("@keyring", name, EPERM));
  }
  // Group names are those `policy groups` lists where one fits (kexec is in @reboot there).
  for (const char* name : {"kexec_load", "kexec_file_load"}) rules.push_back(deny("@reboot", name));
  for (const char* name : {"init_module", "finit_module", "delete_module"}) {
    rules.push_back(deny("@module", name));
  }
  for (const char* name : {"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
                           "fsconfig", "fsmount", "fspick", "mount_setattr"}) {
    rules.push_back(deny("@mount", name));
  }
  rules.push_back(refuse("@namespaces", "setns", EPERM));
  deny_namespace_flags(rules, "unshare", 0, true);
  deny_namespace_flags(rules, "clone", 0, false);
  rules.push_back(deny("@handles", "open_by_handle_at"));
  for (const char* name : {"reboot"}) rules.push_back(deny("@reboot", name));
  for (const char* name : {"swapon", "swapoff"}) rules.push_back(deny("@swap", name));

  // A seccomp listener would let the program answer its own filter's questions.
  FloorRule listener = deny("@seccomp-listener", "seccomp");
  listener.rule.conditions.push_back({0, ArgCondition::Op::eq, SECCOMP_SET_MODE_FILTER, ~0ULL});
  listener.rule.conditions.push_back({1, ArgCondition::Op::masked_eq,
                                      SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                      SECCOMP_FILTER_FLAG_NEW_LISTENER});
  rules.push_back(listener);

  // TIOCSTI pushes input into a terminal. The kernel reads the command as 32 bits, so compare only
  // those: 0x1'00005412 must not slip past.
  FloorRule tiocsti = deny("@tty-injection", "ioctl");
  tiocsti.rule.conditions.push_back({1, ArgCondition::Op::masked_eq, TIOCSTI, 0xffffffffULL});
  rules.push_back(tiocsti);

  // io_uring bypasses the syscall filter for the operations it performs. Answering ENOSYS (as an
  // old kernel would) lets runtimes that probe for it (libuv in node) fall back.
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    rules.push_back(refuse("@io-uring", name, ENOSYS));
  }
  // clone3 passes its flags in memory, where a filter cannot read them. ENOSYS makes glibc fall
  // back to clone(2), whose flags the rules above can check.
  FloorRule clone3 = deny("@namespaces", "clone3");
  clone3.rule.action = SyscallAction::errno_code;
  clone3.rule.errno_value = ENOSYS;
  clone3.rule.quiet = true;
  rules.push_back(clone3);
  return rules;
}

}  // namespace

const std::vector<FloorRule>& floor_rules() {
  static const std::vector<FloorRule> rules = build_floor();
  return rules;
}

bool is_floor_syscall(const std::string& syscall) {
  const auto& rules = floor_rules();
  return std::any_of(rules.begin(), rules.end(),
                     [&](const FloorRule& rule) { return rule.rule.syscall == syscall; });
}

}  // namespace airlock::sandbox
