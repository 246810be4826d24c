#include "sandbox/seccomp.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "sandbox/seccomp_floor.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

constexpr uint32_t kX32SyscallBit = 0x40000000;

int severity(SyscallAction action) {
  switch (action) {
    case SyscallAction::kill: return 3;
    case SyscallAction::errno_code: return 2;
    case SyscallAction::log: return 1;
    case SyscallAction::allow: return 0;
  }
  return 0;
}

uint32_t bpf_action(const SyscallRule& rule) {
  if (rule.action == SyscallAction::allow) return SCMP_ACT_ALLOW;
  if (rule.quiet) {
    return rule.action == SyscallAction::errno_code ? SCMP_ACT_ERRNO(rule.errno_value)
                                                    : SCMP_ACT_KILL_PROCESS;
  }
  return SCMP_ACT_NOTIFY;
}

scmp_arg_cmp to_scmp(const ArgCondition& condition) {
  scmp_compare op = SCMP_CMP_EQ;
  uint64_t a = condition.value, b = 0;
  switch (condition.op) {
    case ArgCondition::Op::eq: op = SCMP_CMP_EQ; break;
    case ArgCondition::Op::ne: op = SCMP_CMP_NE; break;
    case ArgCondition::Op::lt: op = SCMP_CMP_LT; break;
    case ArgCondition::Op::le: op = SCMP_CMP_LE; break;
    case ArgCondition::Op::gt: op = SCMP_CMP_GT; break;
    case ArgCondition::Op::ge: op = SCMP_CMP_GE; break;
    case ArgCondition::Op::masked_eq:
      op = SCMP_CMP_MASKED_EQ;
      a = condition.mask;
      b = condition.value;
      break;
  }
  return scmp_arg_cmp{condition.index, op, a, b};
}

bool holds(const ArgCondition& c, const std::array<uint64_t, 6>& args) {
  uint64_t arg = c.index < 6 ? args[c.index] : 0;
  switch (c.op) {
    case ArgCondition::Op::eq: return arg == c.value;
    case ArgCondition::Op::ne: return arg != c.value;
    case ArgCondition::Op::lt: return arg < c.value;
    case ArgCondition::Op::le: return arg <= c.value;
    case ArgCondition::Op::gt: return arg > c.value;
    case ArgCondition::Op::ge: return arg >= c.value;
    case ArgCondition::Op::masked_eq: return (arg & c.mask) == c.value;
  }
  return false;
}

// Prepended to both programs: anything but a native x86-64 call (i386 through int 0x80, x32 with
// bit 30 set in the number) goes to the supervisor, which ends the run. Written here rather than
// left to libseccomp so the check does not depend on its version.
std::vector<sock_filter> abi_guard(uint32_t action) {
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
  };
}

Expected<std::vector<sock_filter>> export_program(scmp_filter_ctx ctx, uint32_t guard_action) {
  int fd = ::memfd_create("airlock-bpf", MFD_CLOEXEC);
  if (fd < 0) return errno_error("memfd_create");
  UniqueFd memfd = UniqueFd::adopt(fd);
  if (int rc = seccomp_export_bpf(ctx, memfd.get()); rc != 0) {
    return SetupError{"seccomp_export_bpf", -rc};
  }
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  std::vector<sock_filter> program = abi_guard(guard_action);
  size_t guard = program.size();
  program.resize(guard + static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memfd.get(), program.data() + guard, static_cast<size_t>(size), 0) != size) {
    return errno_error("pread(bpf)");
  }
  return program;
}

using Context = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

Status add_rule(scmp_filter_ctx ctx, const CompiledRule& compiled, uint32_t action) {
  std::vector<scmp_arg_cmp> conditions;
  for (const ArgCondition& condition : compiled.rule.conditions) {
    conditions.push_back(to_scmp(condition));
  }
  int rc = seccomp_rule_add_exact_array(ctx, action, compiled.number,
                                        static_cast<unsigned>(conditions.size()),
                                        conditions.data());
  if (rc != 0) {
    return SetupError{"seccomp rule " + compiled.rule.syscall + " (" + compiled.rule.origin + ")",
                      -rc};
  }
  return {};
}

Expected<CompiledRule> resolve(const SyscallRule& rule) {
  int number = seccomp_syscall_resolve_name(rule.syscall.c_str());
  if (number == __NR_SCMP_ERROR) {
    return SetupError{"unknown syscall '" + rule.syscall + "' in " + rule.origin, 0};
  }
  return CompiledRule{number, rule};
}

// An unconditional allow for a syscall the floor restricts by flag bits (clone, unshare) would
// make libseccomp drop the floor's conditional rules from this filter. Allowing only calls with
// none of those bits keeps both, and the meaning is the same: the floor refuses the rest anyway.
CompiledRule narrow_allow(const CompiledRule& rule, const std::vector<CompiledRule>& floor) {
  if (rule.rule.action != SyscallAction::allow || !rule.rule.conditions.empty()) return rule;
  uint64_t bits = 0;
  unsigned index = 0;
  for (const CompiledRule& floor_rule : floor) {
    if (floor_rule.number != rule.number) continue;
    const auto& conditions = floor_rule.rule.conditions;
    if (conditions.size() != 1 || conditions[0].op != ArgCondition::Op::masked_eq ||
        conditions[0].mask != conditions[0].value || (bits != 0 && conditions[0].index != index)) {
      return rule;
    }
    bits |= conditions[0].mask;
    index = conditions[0].index;
  }
  if (bits == 0) return rule;
  CompiledRule narrowed = rule;
  narrowed.rule.conditions.push_back({index, ArgCondition::Op::masked_eq, 0, bits});
  return narrowed;
}

}  // namespace

Expected<std::shared_ptr<const SeccompFilters>> compile_seccomp(const SeccompPolicy& policy,
                                                                int control_fd) {
  auto filters = std::make_shared<SeccompFilters>();
  filters->source = policy;
  for (const FloorRule& floor : floor_rules()) {
    const auto& exempt = policy.floor_exemptions;
    if (std::find(exempt.begin(), exempt.end(), floor.rule.syscall) != exempt.end()) continue;
    auto compiled = resolve(floor.rule);
    if (!compiled) return compiled.error();
    filters->floor.push_back(compiled.value());
  }
  const int sendmsg_number = seccomp_syscall_resolve_name("sendmsg");
  const int seccomp_number = seccomp_syscall_resolve_name("seccomp");
  for (const SyscallRule& rule : policy.rules) {
    auto compiled = resolve(rule);
    if (!compiled) return compiled.error();
    // libseccomp knows syscalls of every architecture; one this one lacks (negative pseudo
    // number) can never be called here, so its rule has nothing to filter.
    if (compiled->number < 0) continue;
    // After this filter is in place the child makes two calls of its own: seccomp() without
    // flags (installing the net) and sendmsg() on the control fd (passing the listener). A
    // policy rule never matches those: the program can never own that fd number (it is at or
    // above its RLIMIT_NOFILE), and a flag-less seccomp() can only restrict it further.
    if (compiled->number == sendmsg_number) {
      compiled->rule.conditions.push_back(
          {0, ArgCondition::Op::ne, static_cast<uint64_t>(control_fd)});
    }
    if (compiled->number == seccomp_number) {
      compiled->rule.conditions.push_back({1, ArgCondition::Op::ne, 0});
    }
    filters->policy.push_back(compiled.value());
  }

  // The safety net: allow by default, the floor's rules answer TRACE (ENOSYS with no tracer).
  Context net(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!net) return SetupError{"seccomp_init", ENOMEM};
  for (const CompiledRule& rule : filters->floor) {
    uint32_t action = rule.rule.quiet ? bpf_action(rule.rule) : SCMP_ACT_TRACE(0);
    if (Status s = add_rule(net.get(), rule, action); !s) return s.error();
  }
  auto floor_program = export_program(net.get(), SECCOMP_RET_TRACE);
  if (!floor_program) return floor_program.error();
  filters->floor_program = std::move(floor_program.value());

  // The reporting filter: the floor's rules, the policy's, its default action, and the two calls
  // the child makes once it is in place (installing the net, passing the listener).
  SyscallRule default_rule{"", {}, policy.default_action, policy.default_errno, ""};
  const uint32_t default_action = bpf_action(default_rule);
  Context ctx(seccomp_init(default_action), seccomp_release);
  if (!ctx) return SetupError{"seccomp_init", ENOMEM};
  for (const CompiledRule& rule : filters->floor) {
    // Under an allowlist the default (report, then kill) already covers the floor's calls.
    if (bpf_action(rule.rule) == default_action) continue;
    if (Status s = add_rule(ctx.get(), rule, bpf_action(rule.rule)); !s) return s.error();
  }
  for (const CompiledRule& rule : filters->policy) {
    if (bpf_action(rule.rule) == default_action) continue;  // same as not naming it
    CompiledRule narrowed = narrow_allow(rule, filters->floor);
    if (Status s = add_rule(ctx.get(), narrowed, bpf_action(narrowed.rule)); !s) return s.error();
  }
  if (default_action != SCMP_ACT_ALLOW) {
    // The same two calls, let through when the default would stop them.
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 2,
                              SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
                              SCMP_A1(SCMP_CMP_EQ, 0));
    if (rc == 0) {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(sendmsg), 1,
                            SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(control_fd)));
    }
    if (rc != 0) return SetupError{"seccomp setup exceptions", -rc};
  }
  auto policy_program = export_program(ctx.get(), SECCOMP_RET_USER_NOTIF);
  if (!policy_program) return policy_program.error();
  filters->policy_program = std::move(policy_program.value());
  return std::shared_ptr<const SeccompFilters>(std::move(filters));
}

Decision decide(const SeccompFilters& filters, uint32_t arch, int number,
                const std::array<uint64_t, 6>& args) {
  if (arch != AUDIT_ARCH_X86_64 || (static_cast<uint32_t>(number) & kX32SyscallBit) != 0) {
    return {SyscallAction::kill, 0, "floor (non-native ABI)", false};
  }
  auto strongest = [&](const std::vector<CompiledRule>& rules) -> const SyscallRule* {
    const SyscallRule* best = nullptr;
    for (const CompiledRule& compiled : rules) {
      if (compiled.number != number) continue;
      const auto& conditions = compiled.rule.conditions;
      if (!std::all_of(conditions.begin(), conditions.end(),
                       [&](const ArgCondition& c) { return holds(c, args); })) {
        continue;
      }
      if (!best || severity(compiled.rule.action) > severity(best->action)) best = &compiled.rule;
    }
    return best;
  };
  const SeccompPolicy& source = filters.source;
  Decision policy{source.default_action, source.default_errno, source.default_origin};
  if (const SyscallRule* rule = strongest(filters.policy)) {
    policy = {rule->action, rule->errno_value, rule->origin};
  }
  const SyscallRule* floor = strongest(filters.floor);
  if (floor == nullptr) return policy;
  // The floor is a minimum: the policy's answer stands where it is stricter (kill where the floor
  // refuses with an errno), never where it is looser. A quiet floor rule is answered by the
  // filter itself, so that answer is final.
  if (!floor->quiet && severity(policy.action) > severity(floor->action)) return policy;
  return {floor->action, floor->errno_value, floor->origin};
}

std::string syscall_name(int number) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
  if (name == nullptr) return "syscall " + std::to_string(number);
  std::string result = name;
  std::free(name);
  return result;
}

std::string action_name(SyscallAction action, int errno_value) {
  switch (action) {
    case SyscallAction::allow: return "allow";
    case SyscallAction::kill: return "kill";
    case SyscallAction::log: return "log";
    case SyscallAction::errno_code: return "errno(" + errno_name(errno_value) + ")";
  }
  return "?";
}

}  // namespace airlock::sandbox
