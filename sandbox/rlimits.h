// Per-process resource limits set in the child before exec: the cgroup bounds the tree, these
// bound each process (core dumps off, cpu seconds, file size, open files) and what the kernel
// counts per user rather than per cgroup (queued signals, here; inotify in the user namespace's
// own limits below).
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

// The kernel charges queued signals, inotify and fanotify objects to a user, and a sandbox's
// charge rises to the user that created its namespace: root, shared with the host's own daemons
// (128 inotify instances and 128 fanotify groups in all by default; unprivileged fanotify since
// Linux 5.13). So each sandbox gets its own small share. Queued signals are RLIMIT_SIGPENDING,
// per process tree of the sandbox's uid; inotify and fanotify are capped in the sandbox's user
// namespace (limit_user_namespace, child_steps.h), which the program cannot raise.
constexpr rlim_t kMaxPendingSignals = 256;
constexpr int kMaxInotifyInstances = 8;
constexpr int kMaxInotifyWatches = 8192;
constexpr int kMaxFanotifyGroups = 8;
constexpr int kMaxFanotifyMarks = 8192;

}  // namespace airlock::sandbox
