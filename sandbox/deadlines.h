// The arithmetic of a sandbox's time limits: when the wall deadline passes, when the cpu limit could
// next run out, and whether either has. Plain data, tested without a sandbox; the monitor reads the
// clocks and arms its timer from it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace airlock::sandbox {

struct Deadlines {
  using Clock = std::chrono::steady_clock;
  // Reading a cgroup's cpu costs a syscall or two: never more often than this.
  static constexpr auto kMinCpuCheck = std::chrono::milliseconds(5);

  // Clocks started at `start`, with the first cpu check kMinCpuCheck later. `millicores` is the
  // tree's cpu share (1000 = one core), which bounds how fast it can spend its cpu time;
  // `cpu_base_ns` is the tree's cpu at the start, which does not count against cpu_time.
  Deadlines(Clock::time_point start, std::chrono::milliseconds wall_time,
            std::chrono::milliseconds cpu_time, uint32_t millicores, uint64_t cpu_base_ns = 0);

  bool wall_expired(Clock::time_point now) const { return now >= wall_deadline; }
  bool cpu_check_due(Clock::time_point now) const { return now >= next_cpu_check; }

  // Whether the tree's cpu since the start (from `cpu_total_ns`, its cgroup's count, or nullopt
  // when that could not be read) has reached the cpu limit. When it has not, schedules the next
  // check for the earliest the tree could reach it.
  bool cpu_expired(Clock::time_point now, std::optional<uint64_t> cpu_total_ns);

  // When the monitor's timer should next fire.
  Clock::time_point next_wake() const { return std::min(wall_deadline, next_cpu_check); }

  Clock::time_point wall_deadline;
  Clock::time_point next_cpu_check;
  uint64_t cpu_limit_ns;
  uint32_t millicores;
  uint64_t cpu_base_ns;
};

}  // namespace airlock::sandbox
