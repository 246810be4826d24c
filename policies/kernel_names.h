// The kernel vocabulary a policy may use: syscall names (as libseccomp knows them), errno names and
// socket address families.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace airlock::policies {

// True when libseccomp knows `name` as a syscall (on any architecture it supports).
bool is_known_syscall(const std::string& name);

// True when `name` is a syscall of the architecture airlock runs on (x86_64 has no
// pciconfig_read, for example). Only those can appear in a filter.
bool is_native_syscall(const std::string& name);

// EPERM -> 1. Only symbolic names are accepted; nullopt when unknown.
std::optional<int> errno_from_name(const std::string& name);
// 1 -> "EPERM"; "errno N" when unknown.
std::string errno_to_name(int value);
// Every errno name, for "did you mean" suggestions.
const std::vector<std::string>& errno_names();

// AF_INET -> 2. nullopt when unknown.
std::optional<uint64_t> address_family_from_name(const std::string& name);
// 2 -> "AF_INET"; the number as text when unknown.
std::string address_family_to_name(uint64_t value);
const std::vector<std::string>& address_family_names();

}  // namespace airlock::policies

namespace airlock::policies {

// Every syscall name of the native architecture, for "did you mean" suggestions.
const std::vector<std::string>& native_syscall_names();

}  // namespace airlock::policies
