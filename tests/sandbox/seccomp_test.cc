#include "sandbox/seccomp.h"

#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "sandbox/seccomp_floor.h"

namespace airlock::sandbox {
namespace {

constexpr int kControlFd = 256;

std::shared_ptr<const SeccompFilters> compile(const SeccompPolicy& policy) {
  auto filters = compile_seccomp(policy, kControlFd);
  if (!filters) FAIL(filters.error().message());
  return filters.value();
}

Decision verdict(const SeccompFilters& filters, int number, std::array<uint64_t, 6> args = {}) {
  return decide(filters, AUDIT_ARCH_X86_64, number, args);
}

}  // namespace

TEST_CASE("the floor names every call the design lists") {
  for (const char* name : {"ptrace", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
                           "request_key", "kexec_load", "init_module", "finit_module", "mount",
                           "umount2", "pivot_root", "setns", "unshare", "clone", "io_uring_setup",
                           "open_by_handle_at", "seccomp", "ioctl", "reboot", "swapon", "swapoff",
                           "clone3"}) {
    INFO(name);
    CHECK(is_floor_syscall(name));
  }
  CHECK_FALSE(is_floor_syscall("read"));
}

TEST_CASE("namespace flags in clone and unshare are refused with EPERM; plain clone is allowed") {
  auto filters = compile(SeccompPolicy{});
  Decision newuser = verdict(*filters, SYS_unshare, {CLONE_NEWUSER});
  CHECK(newuser.action == SyscallAction::errno_code);
  CHECK(newuser.errno_value == EPERM);
  CHECK(verdict(*filters, SYS_unshare, {CLONE_NEWNET | CLONE_FILES}).errno_value == EPERM);
  CHECK(verdict(*filters, SYS_unshare, {CLONE_FILES}).action == SyscallAction::allow);
  CHECK(verdict(*filters, SYS_clone, {CLONE_NEWPID | SIGCHLD}).errno_value == EPERM);
  CHECK(verdict(*filters, SYS_clone, {SIGCHLD}).action == SyscallAction::allow);
  CHECK(verdict(*filters, SYS_unshare, {CLONE_NEWUSER}).origin == "floor (@namespaces)");
}

TEST_CASE("TIOCSTI is matched on the low 32 bits of the command") {
  auto filters = compile(SeccompPolicy{});
  CHECK(verdict(*filters, SYS_ioctl, {0, TIOCSTI}).action == SyscallAction::kill);
  CHECK(verdict(*filters, SYS_ioctl, {0, TIOCSTI | (1ULL << 32)}).action == SyscallAction::kill);
  CHECK(verdict(*filters, SYS_ioctl, {0, TIOCGWINSZ}).action == SyscallAction::allow);
}

TEST_CASE("clone3 answers ENOSYS quietly; io_uring answers ENOSYS and is reported") {
  auto filters = compile(SeccompPolicy{});
  Decision clone3 = verdict(*filters, SYS_clone3);
  CHECK(clone3.action == SyscallAction::errno_code);
  CHECK(clone3.errno_value == ENOSYS);
  CHECK(verdict(*filters, SYS_io_uring_setup).errno_value == ENOSYS);
  auto rule_for = [](const char* name) {
    for (const FloorRule& floor : floor_rules()) {
      if (floor.rule.syscall == name) return floor.rule;
    }
    FAIL(name);
    return SyscallRule{};
  };
  CHECK(rule_for("clone3").quiet);
  CHECK_FALSE(rule_for("io_uring_setup").quiet);  // reported, so a caller sees why it failed
}

TEST_CASE("calls common software probes are refused with an errno; the rest of the floor kills") {
  auto filters = compile(SeccompPolicy{});
  for (int number : {SYS_perf_event_open, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_setns}) {
    INFO(syscall_name(number));
    Decision decision = verdict(*filters, number);
    CHECK(decision.action == SyscallAction::errno_code);
    CHECK(decision.errno_value == EPERM);
  }
  for (int number : {SYS_ptrace, SYS_bpf, SYS_mount, SYS_kexec_load, SYS_init_module}) {
    INFO(syscall_name(number));
    CHECK(verdict(*filters, number).action == SyscallAction::kill);
  }
}

TEST_CASE("a policy can make a refused floor call end the run, but not let it through") {
  SeccompPolicy policy;
  policy.rules.push_back({"perf_event_open", {}, SyscallAction::kill, 0, "policy \"p\" (deny)"});
  policy.rules.push_back({"keyctl", {}, SyscallAction::allow, 0, "policy \"p\" (allow)"});
  policy.rules.push_back({"add_key", {}, SyscallAction::errno_code, EACCES, "policy \"p\" (deny)"});
  auto filters = compile(policy);
  Decision perf = verdict(*filters, SYS_perf_event_open);
  CHECK(perf.action == SyscallAction::kill);
  CHECK(perf.origin == "policy \"p\" (deny)");
  Decision keyctl = verdict(*filters, SYS_keyctl);
  CHECK(keyctl.action == SyscallAction::errno_code);
  CHECK(keyctl.origin == "floor (@keyring)");
  // As strict as the floor: the floor's own answer stands.
  CHECK(verdict(*filters, SYS_add_key).errno_value == EPERM);
}

TEST_CASE("calls through a non-native ABI are a violation") {
  auto filters = compile(SeccompPolicy{});
  Decision i386 = decide(*filters, AUDIT_ARCH_I386, 20, {});
  CHECK(i386.action == SyscallAction::kill);
  CHECK_FALSE(i386.native_abi);
  Decision x32 = decide(*filters, AUDIT_ARCH_X86_64, 0x40000000 | SYS_getpid, {});
  CHECK(x32.action == SyscallAction::kill);
  CHECK_FALSE(x32.native_abi);
}

TEST_CASE("both programs start with the ABI guard") {
  auto filters = compile(SeccompPolicy{});
  for (const auto* program : {&filters->policy_program, &filters->floor_program}) {
    REQUIRE(program->size() > 6);
    CHECK((*program)[1].k == AUDIT_ARCH_X86_64);
    CHECK((*program)[4].k == 0x40000000u);
  }
  CHECK(filters->policy_program[2].k == SECCOMP_RET_USER_NOTIF);
  CHECK(filters->floor_program[2].k == SECCOMP_RET_TRACE);
}

TEST_CASE("a policy rule decides calls the floor does not cover; the floor wins where it does") {
  SeccompPolicy policy;
  policy.rules.push_back({"socket", {{0, ArgCondition::Op::eq, AF_INET}},
                          SyscallAction::errno_code, EACCES, "policy \"p\" (network: none)"});
  policy.rules.push_back({"ptrace", {}, SyscallAction::allow, 0, "policy \"p\" (allow ptrace)"});
  auto filters = compile(policy);
  Decision socket = verdict(*filters, SYS_socket, {AF_INET});
  CHECK(socket.action == SyscallAction::errno_code);
  CHECK(socket.errno_value == EACCES);
  CHECK(socket.origin == "policy \"p\" (network: none)");
  CHECK(verdict(*filters, SYS_socket, {AF_UNIX}).action == SyscallAction::allow);
  CHECK(verdict(*filters, SYS_ptrace).action == SyscallAction::kill);
}

TEST_CASE("an exemption lifts exactly the named floor rule") {
  SeccompPolicy policy;
  policy.floor_exemptions = {"ptrace"};
  auto filters = compile(policy);
  CHECK(verdict(*filters, SYS_ptrace).action == SyscallAction::allow);
  CHECK(verdict(*filters, SYS_bpf).action == SyscallAction::kill);
}

TEST_CASE("an allowlist policy that allows clone still refuses namespace flags") {
  SeccompPolicy policy;
  policy.default_action = SyscallAction::kill;
  policy.default_origin = "policy \"minimal\" (default action)";
  for (const char* name : {"clone", "read", "write", "execve", "exit_group"}) {
    policy.rules.push_back({name, {}, SyscallAction::allow, 0, "policy \"minimal\" (allow)"});
  }
  auto filters = compile(policy);
  CHECK(verdict(*filters, SYS_clone, {SIGCHLD}).action == SyscallAction::allow);
  // The policy's own rule (allow) is looser than the floor, whose refusal stands.
  CHECK(verdict(*filters, SYS_clone, {CLONE_NEWUSER}).errno_value == EPERM);
  CHECK(verdict(*filters, SYS_clone, {CLONE_NEWUSER}).origin == "floor (@namespaces)");
  // A floor call the allowlist does not name gets its default, which is stricter: kill.
  CHECK(verdict(*filters, SYS_perf_event_open).action == SyscallAction::kill);
  Decision other = verdict(*filters, SYS_getpid);
  CHECK(other.action == SyscallAction::kill);
  CHECK(other.origin == "policy \"minimal\" (default action)");
}

TEST_CASE("a policy rule on sendmsg or seccomp never catches the child's own setup calls") {
  for (SyscallAction default_action : {SyscallAction::allow, SyscallAction::kill}) {
    SeccompPolicy policy;
    policy.default_action = default_action;
    policy.rules.push_back({"sendmsg", {}, SyscallAction::kill, 0, "policy \"p\" (deny sendmsg)"});
    policy.rules.push_back({"seccomp", {}, SyscallAction::kill, 0, "policy \"p\" (deny seccomp)"});
    policy.rules.push_back({"execve", {}, SyscallAction::allow, 0, "policy \"p\" (allow)"});
    auto filters = compile(policy);
    CHECK(verdict(*filters, SYS_sendmsg, {5}).action == SyscallAction::kill);
    CHECK(verdict(*filters, SYS_sendmsg, {kControlFd}).action == default_action);
    CHECK(verdict(*filters, SYS_seccomp, {SECCOMP_SET_MODE_FILTER, 0}).action == default_action);
    CHECK(verdict(*filters, SYS_seccomp, {SECCOMP_SET_MODE_FILTER, 1}).action == SyscallAction::kill);
  }
}

TEST_CASE("an unknown syscall name is an error naming the rule") {
  SeccompPolicy policy;
  policy.rules.push_back({"no_such_call", {}, SyscallAction::kill, 0, "policy \"x\" (deny)"});
  auto filters = compile_seccomp(policy, kControlFd);
  REQUIRE_FALSE(filters.ok());
  CHECK(filters.error().message() == "unknown syscall 'no_such_call' in policy \"x\" (deny)");
}

TEST_CASE("calls are described with decoded arguments") {
  CHECK(describe_call(AUDIT_ARCH_X86_64, SYS_socket, {AF_INET, SOCK_STREAM, 0}) ==
        "socket(AF_INET, SOCK_STREAM, 0)");
  CHECK(describe_call(AUDIT_ARCH_X86_64, SYS_unshare, {CLONE_NEWUSER}) == "unshare(CLONE_NEWUSER)");
  CHECK(describe_call(AUDIT_ARCH_I386, 20, {}) == "i386 syscall 20");
  CHECK(action_name(SyscallAction::errno_code, EPERM) == "errno(EPERM)");
}

}  // namespace airlock::sandbox
