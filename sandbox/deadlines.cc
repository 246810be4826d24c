#include "sandbox/deadlines.h"

#include <algorithm>

namespace airlock::sandbox {

Deadlines::Deadlines(Clock::time_point start, std::chrono::milliseconds wall_time,
                     std::chrono::milliseconds cpu_time, uint32_t millicores,
                     uint64_t cpu_base_ns)
    : wall_deadline(start + wall_time),
      next_cpu_check(start + kMinCpuCheck),
      cpu_limit_ns(static_cast<uint64_t>(std::chrono::nanoseconds(cpu_time).count())),
      millicores(std::max<uint32_t>(millicores, 1)),
      cpu_base_ns(cpu_base_ns) {}

bool Deadlines::cpu_expired(Clock::time_point now, std::optional<uint64_t> cpu_total_ns) {
  std::optional<uint64_t> cpu_used_ns;
  if (cpu_total_ns) cpu_used_ns = *cpu_total_ns - std::min(*cpu_total_ns, cpu_base_ns);
  if (cpu_used_ns && *cpu_used_ns >= cpu_limit_ns) return true;
  // The earliest the tree could reach its cpu limit, running flat out on its cpu share; an
  // unreadable counter is checked again soon.
  uint64_t left_ns = cpu_used_ns ? cpu_limit_ns - *cpu_used_ns : 0;
  auto wait = std::chrono::nanoseconds(left_ns * 1000 / millicores);
  next_cpu_check = now + std::max<Clock::duration>(wait, kMinCpuCheck);
  return false;
}

}  // namespace airlock::sandbox
