// Per-process resource limits set in the child before exec: the cgroup bounds the tree, these
// bound each process (core dumps off, cpu seconds, file size, open files).
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <vector>

#include "sandbox/spec.h"

namespace airlock::sandbox {

// Also carried in a fork request (fork_request.h), so a plain fixed-size value.
struct RlimitSetting {
  int resource = 0;  // RLIMIT_*
  rlim_t soft = 0;
  rlim_t hard = 0;
};

// The rlimits for a run, as data.
std::vector<RlimitSetting> plan_rlimits(const Limits& limits);

// Child side (no allocation): applies them in order; on failure returns the failed setting
// (errno tells why), whose rlimit_name goes into the error.
const RlimitSetting* apply_rlimits(const RlimitSetting* settings, size_t count);
const RlimitSetting* apply_rlimits(const std::vector<RlimitSetting>& settings);

const char* rlimit_name(int resource);

}  // namespace airlock::sandbox
