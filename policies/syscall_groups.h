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

// The syscalls of a group with nested groups expanded, sorted, without duplicates; nullopt when
// the group is unknown.
std::optional<std::vector<std::string>> expand_group(const std::string& name);

}  // namespace airlock::policies
