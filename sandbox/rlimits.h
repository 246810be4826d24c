// Per-process resource limits set in the child before exec: the cgroup bounds the tree, these
// bound each process (core dumps off, cpu seconds, file size, open files).
#pragma once

#include <sys/resource.h>

#include <vector>

#include "sandbox/spec.h"

namespace airlock::sandbox {

struct RlimitSetting {
  int resource;  // RLIMIT_*
  rlim_t soft;
  rlim_t hard;
};

// The rlimits for a run, as data.
std::vector<RlimitSetting> plan_rlimits(const Limits& limits);

// Child side (no allocation): applies them; on failure returns the failed setting.
const RlimitSetting* apply_rlimits(const std::vector<RlimitSetting>& settings);

const char* rlimit_name(int resource);

}  // namespace airlock::sandbox
