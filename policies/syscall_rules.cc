#include "policies/syscall_rules.h"

#include <sys/socket.h>
#include <algorithm>
#include <map>
#include <set>

#include "policies/kernel_names.h"
#include "policies/syscall_groups.h"
#include "sandbox/seccomp_floor.h"

namespace airlock::policies {
namespace {

using sandbox::SyscallAction;

// What one layer decided for one syscall.
struct Decision {
  std::string list;  // allow, deny, log
  Action action;
  std::vector<uint64_t> families;  // empty: every call
  std::string via;                 // the entry as written: "ptrace", "@debug"
  std::string layer;               // policy name
  std::string file;
  YAML::Mark mark;
};

using Decisions = std::map<std::string, std::vector<Decision>>;

std::string verb(const Decision& decision) {
  if (decision.list == "allow") return "allowed";
  if (decision.list == "log") return "logged";
  return "denied with " + format_action(decision.action);
}

bool lets_through(const Decision& decision) {
  return decision.list != "deny";
}

bool overlaps(const Decision& a, const Decision& b) {
  if (a.families.empty() || b.families.empty()) return true;
  for (uint64_t family : a.families) {
    if (std::find(b.families.begin(), b.families.end(), family) != b.families.end()) return true;
  }
  return false;
}

std::string via_note(const std::string& syscall, const Decision& decision) {
  return decision.via == syscall ? "" : " (via " + decision.via + ")";
}

// Adds one decision of a layer, refusing a second, different decision for the same calls.
void add_decision(Decisions& decisions, const std::string& syscall, Decision decision,
                  ErrorList& errors) {
  auto& existing = decisions[syscall];
  for (auto& other : existing) {
    if (!overlaps(other, decision)) continue;
    if (other.list == decision.list && other.action == decision.action) {
      if (other.families.empty() || decision.families.empty()) {
        other.families.clear();
      } else {
        for (uint64_t family : decision.families) {
          if (std::find(other.families.begin(), other.families.end(), family) ==
              other.families.end()) {
            other.families.push_back(family);
          }
        }
      }
      return;
    }
    errors.add(decision.mark, "contradictory rules: '" + syscall + "' is " + verb(decision) +
                                  " here" + via_note(syscall, decision) + " but " + verb(other) +
                                  " at line " + std::to_string(other.mark.line + 1) +
                                  via_note(syscall, other));
    return;
  }
  existing.push_back(std::move(decision));
}

Decisions layer_decisions(const PolicyLayer& layer, const Action& deny_action, ErrorList& errors) {
  Decisions decisions;
  for (const auto& entry : layer.syscalls) {
    Decision decision;
    decision.list = entry.list;
    decision.action = entry.list == "allow" ? Action{SyscallAction::allow, 0}
                      : entry.list == "log" ? Action{SyscallAction::log, 0}
                                            : entry.action.value_or(deny_action);
    decision.families = entry.families;
    decision.via = entry.name;
    decision.layer = layer.name;
    decision.file = layer.path;
    decision.mark = entry.mark;
    if (entry.name.starts_with('@')) {
      for (const auto& syscall : expand_group(entry.name).value_or(std::vector<std::string>{})) {
        add_decision(decisions, syscall, decision, errors);
      }
    } else {
      add_decision(decisions, entry.name, decision, errors);
    }
  }
  return decisions;
}

// The floor rules for `syscall` with no argument condition: those block every call.
const sandbox::FloorRule* unconditional_floor_rule(const std::string& syscall) {
  for (const auto& floor : sandbox::floor_rules()) {
    if (floor.rule.syscall == syscall && floor.rule.conditions.empty()) return &floor;
  }
  return nullptr;
}

std::string describe_entry(const Decision& decision, uint64_t family, bool with_family) {
  std::string what = decision.list + ": " + decision.via;
  if (with_family) what += " family " + address_family_to_name(family);
  return what;
}

// Checks `socket` decisions against network: none, and adds the socket rule it implies.
void apply_network(const EffectiveNetwork& network, const std::string& policy_name,
                   const Action& deny_action, Decisions& decisions,
                   std::vector<sandbox::SyscallRule>& rules, std::vector<PolicyError>& errors) {
  // "loopback" and "egress" let sockets of every family through: the run's network namespace is
  // what confines them, to loopback or to the egress gateway's link.
  if (network.mode != "none") return;
  const std::string where = network.set_by.empty()
                                ? "network is none (the default)"
                                : "network is none (line " + std::to_string(network.mark.line + 1) +
                                      " of " + network.set_in_file + ")";
  bool denied_entirely = false;
  for (const auto& decision : decisions["socket"]) {
    ErrorList list(decision.file);
    const bool only_unix = !decision.families.empty() &&
                           std::all_of(decision.families.begin(), decision.families.end(),
                                       [](uint64_t family) { return family == AF_UNIX; });
    if (only_unix) continue;
    if (lets_through(decision)) {
      list.add(decision.mark, "contradictory rules: 'socket' is " + verb(decision) + " here" +
                                  via_note("socket", decision) + " but " + where);
    } else if (!decision.families.empty()) {
      list.add(decision.mark,
               "'socket' by address family is already denied by network: none "
               "for every family but AF_UNIX; remove this entry or set "
               "network: loopback");
    } else {
      denied_entirely = true;  // stricter than network: none; the entry's own rule stands
    }
    for (auto& error : list.errors()) errors.push_back(std::move(error));
  }
  if (denied_entirely) return;
  sandbox::SyscallRule rule;
  rule.syscall = "socket";
  rule.conditions.push_back({0, sandbox::ArgCondition::Op::ne, AF_UNIX, ~0ULL});
  rule.action = deny_action.kind;
  rule.errno_value = deny_action.errno_value;
  rule.origin = origin_text(network.set_by.empty() ? policy_name : network.set_by, "network: none");
  rules.push_back(std::move(rule));
}

}  // namespace

std::string origin_text(const std::string& policy, const std::string& what) {
  return "policy \"" + policy + "\" (" + what + ")";
}

sandbox::SeccompPolicy build_syscall_rules(const std::vector<const PolicyLayer*>& chain,
                                           const EffectiveNetwork& network,
                                           const std::string& policy_name,
                                           std::vector<UnsafeEntry>& unsafe_out,
                                           std::vector<PolicyError>& errors) {
  sandbox::SeccompPolicy seccomp;
  Action default_action{SyscallAction::allow, 0};
  std::string default_origin =
      origin_text(policy_name, "default_action: allow, the built-in default");
  Action deny_action{SyscallAction::errno_code, 1};  // EPERM
  Decisions effective;
  std::set<std::string> exempted;

  for (const PolicyLayer* layer : chain) {
    ErrorList list(layer->path);
    if (layer->default_action) {
      default_action = *layer->default_action;
      default_origin = origin_text(layer->name, "default_action: " + format_action(default_action));
    }
    if (layer->deny_action) deny_action = *layer->deny_action;
    // The nearest layer that names a syscall decides it, so a child can undo a parent's rule.
    for (auto& [syscall, decisions] : layer_decisions(*layer, deny_action, list)) {
      effective[syscall] = std::move(decisions);
    }
    std::set<std::string> seen_here;
    for (const auto& decl : layer->unsafe) {
      if (!sandbox::is_floor_syscall(decl.syscall)) {
        list.add(decl.mark, "unsafe: '" + decl.syscall +
                                "' is not part of the mandatory floor; there is nothing to lift");
      } else if (decl.syscall == "clone" || decl.syscall == "clone3") {
        // Lifting these would not allow clone (the floor never blocks it) but would let the
        // program make namespaces: clone's flag rule gone, or clone3 whose flags no filter reads.
        list.add(decl.mark,
                 "unsafe: '" + decl.syscall +
                     "' cannot be lifted: it would let the program create namespaces "
                     "(user, pid, net, mount...) through " +
                     (decl.syscall == "clone" ? "clone's flags"
                                              : "clone3, whose flags no filter can read") +
                     ". Allowing clone needs no unsafe entry; the floor refuses only "
                     "its namespace flags");
      } else if (!seen_here.insert(decl.syscall).second) {
        list.add(decl.mark, "unsafe: '" + decl.syscall + "' is listed twice");
      } else if (exempted.insert(decl.syscall).second) {
        unsafe_out.push_back({"syscall " + decl.syscall, decl.justification});
      }
    }
    for (auto& error : list.errors()) errors.push_back(std::move(error));
  }

  // The floor: letting a syscall through that the floor blocks outright needs `unsafe`.
  for (const auto& [syscall, decisions] : effective) {
    const sandbox::FloorRule* floor = unconditional_floor_rule(syscall);
    if (floor == nullptr || exempted.count(syscall)) continue;
    for (const auto& decision : decisions) {
      if (!lets_through(decision)) continue;
      ErrorList list(decision.file);
      list.add(decision.mark, "'" + syscall + "'" + via_note(syscall, decision) +
                                  " is part of the mandatory floor (" + floor->rule.origin +
                                  "); letting it through needs an unsafe entry with a "
                                  "justification");
      for (auto& error : list.errors()) errors.push_back(std::move(error));
    }
  }

  apply_network(network, policy_name, deny_action, effective, seccomp.rules, errors);

  for (const auto& entry : effective) {
    // Not a structured binding: make_rule below captures it, which clang 14 (the fuzz build's
    // compiler) does not allow.
    const std::string& syscall = entry.first;
    const auto& decisions = entry.second;
    // A policy may name syscalls of other architectures (groups do); there is nothing to filter.
    if (!is_native_syscall(syscall)) continue;
    const sandbox::FloorRule* floor = unconditional_floor_rule(syscall);
    for (const auto& decision : decisions) {
      // A rule that repeats the default action changes nothing. Neither does one that is no
      // stricter than the floor's unconditional answer: the kernel applies the strictest verdict
      // of the stacked filters, so the floor's answer stands and `show` must not suggest otherwise.
      if (decision.action == default_action) continue;
      if (floor != nullptr && !exempted.count(syscall) &&
          strictness(decision.action) <=
              strictness(Action{floor->rule.action, floor->rule.errno_value})) {
        continue;
      }
      auto make_rule = [&](std::vector<sandbox::ArgCondition> conditions, std::string what) {
        sandbox::SyscallRule rule;
        rule.syscall = syscall;
        rule.conditions = std::move(conditions);
        rule.action = decision.action.kind;
        rule.errno_value = decision.action.errno_value;
        rule.origin = origin_text(decision.layer, std::move(what));
        seccomp.rules.push_back(std::move(rule));
      };
      if (decision.families.empty()) {
        make_rule({}, describe_entry(decision, 0, false));
        continue;
      }
      for (uint64_t family : decision.families) {
        // Denials compare the low 32 bits (the kernel reads an int); allows compare all 64 so
        // that a call with stray high bits falls to the stricter default.
        const bool deny = !lets_through(decision);
        make_rule({{0, deny ? sandbox::ArgCondition::Op::masked_eq : sandbox::ArgCondition::Op::eq,
                    family, deny ? 0xffffffffULL : ~0ULL}},
                  describe_entry(decision, family, true));
      }
    }
  }
  std::sort(seccomp.rules.begin(), seccomp.rules.end(),
            [](const sandbox::SyscallRule& a, const sandbox::SyscallRule& b) {
              if (a.syscall != b.syscall) return a.syscall < b.syscall;
              if (a.conditions.size() != b.conditions.size()) {
                return a.conditions.size() < b.conditions.size();
              }
              for (size_t i = 0; i < a.conditions.size(); ++i) {
                if (a.conditions[i].value != b.conditions[i].value) {
                  return a.conditions[i].value < b.conditions[i].value;
                }
                if (a.conditions[i].op != b.conditions[i].op) {
                  return a.conditions[i].op < b.conditions[i].op;
                }
              }
              return false;
            });
  seccomp.default_action = default_action.kind;
  seccomp.default_errno =
      default_action.kind == SyscallAction::errno_code ? default_action.errno_value : 1;
  seccomp.default_origin = default_origin;
  seccomp.floor_exemptions.assign(exempted.begin(), exempted.end());
  return seccomp;
}

}  // namespace airlock::policies
