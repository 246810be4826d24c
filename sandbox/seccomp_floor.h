// The mandatory floor: syscall rules under every policy. A policy can tighten them; lifting one needs
// an `unsafe` entry in the policy, which puts the syscall into SeccompPolicy::floor_exemptions.
#pragma once

#include <string>
#include <vector>

#include "sandbox/spec.h"

namespace airlock::sandbox {

struct FloorRule {
  std::string group;  // "@mount", "@debug", ... : names the reason in reports
  SyscallRule rule;   // origin is "floor (<group>)"
};

// The floor, in the order it is applied. Non-native ABIs (i386, x32) are refused by the filter's
// architecture check, not by a rule here.
const std::vector<FloorRule>& floor_rules();

// True when `syscall` names a floor rule (then lifting it needs `unsafe`).
bool is_floor_syscall(const std::string& syscall);

}  // namespace airlock::sandbox
