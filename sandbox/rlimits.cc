#include "sandbox/rlimits.h"

namespace airlock::sandbox {

std::vector<RlimitSetting> plan_rlimits(const Limits& limits) {
  // RLIMIT_CPU is a per-process backstop; the cgroup's accounting enforces the tree's total.
  // SIGXCPU at the soft limit, SIGKILL a second later at the hard one.
  auto cpu_seconds = static_cast<rlim_t>((limits.cpu_time.count() + 999) / 1000);
  return {
      {RLIMIT_CORE, 0, 0},
      {RLIMIT_CPU, cpu_seconds, cpu_seconds + 1},
      {RLIMIT_FSIZE, limits.file_size_max_bytes, limits.file_size_max_bytes},
      {RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files},
      {RLIMIT_MEMLOCK, 64 * kKiB, 64 * kKiB},
      {RLIMIT_MSGQUEUE, 0, 0},
      {RLIMIT_SIGPENDING, kMaxPendingSignals, kMaxPendingSignals},
  };
}

const RlimitSetting* apply_rlimits(const RlimitSetting* settings, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    struct rlimit value {settings[i].soft, settings[i].hard};
    if (::setrlimit(settings[i].resource, &value) != 0) return &settings[i];
  }
  return nullptr;
}

const RlimitSetting* apply_rlimits(const std::vector<RlimitSetting>& settings) {
  return apply_rlimits(settings.data(), settings.size());
}

const char* rlimit_name(int resource) {
  switch (resource) {
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    case RLIMIT_MSGQUEUE: return "RLIMIT_MSGQUEUE";
    case RLIMIT_SIGPENDING:
      return "RLIMIT_SIGPENDING";
  }
  return "RLIMIT_?";
}

}  // namespace airlock::sandbox
