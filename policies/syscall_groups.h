// Named groups of syscalls (`@mount`, `@network`, ...) that policies use instead of long lists.
// The members are documented in policies/README.md; a test keeps the two in step.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace airlock::policies {

struct SyscallGroup {
  std::string name;                  // with the '@'
  std::string description;           // one line for the docs and `policy show`
  std::vector<std::string> members;  // syscall names, or other groups ("@clock")
};

// Every group, in documentation order.
const std::vector<SyscallGroup>& syscall_groups();

// The group called `name` ("@mount"), or nullptr.
const SyscallGroup* find_group(const std::string& name);

// Every group name, for "did you mean" suggestions.
std::vector<std::string> group_names();

// The floor's groups as `policy show --effective` names them (floor (<group>)), in floor order,
// each with its syscalls; a syscall the floor only refuses for some arguments is listed as
// "clone (some arguments)". Where a name is also a group above, the syscalls it refuses whatever
// the arguments are members of that group (but clone3, which is in no group: see the table).
std::vector<SyscallGroup> floor_groups();

// The syscalls of a group with nested groups expanded, sorted, without duplicates; nullopt when
// the group is unknown.
std::optional<std::vector<std::string>> expand_group(const std::string& name);

}  // namespace airlock::policies
