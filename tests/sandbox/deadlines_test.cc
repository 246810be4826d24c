// The monitor's clock arithmetic: plain data, no sandbox.
#include <catch2/catch.hpp>

#include "sandbox/deadlines.h"

namespace airlock::sandbox {
namespace {

using namespace std::chrono_literals;
using Clock = Deadlines::Clock;

}  // namespace

TEST_CASE("the wall deadline expires at the start plus the wall time") {
  const auto start = Clock::now();
  const Deadlines clocks(start, 2s, 10s, 1000);
  CHECK_FALSE(clocks.wall_expired(start + 1999ms));
  CHECK(clocks.wall_expired(start + 2s));
}

TEST_CASE("the first cpu check comes 5 ms after the start") {
  const auto start = Clock::now();
  const Deadlines clocks(start, 2s, 10s, 1000);
  CHECK_FALSE(clocks.cpu_check_due(start + 4ms));
  CHECK(clocks.cpu_check_due(start + 5ms));
  CHECK(clocks.next_wake() == start + 5ms);
}

TEST_CASE("the cpu limit expires once the tree has used it all") {
  const auto start = Clock::now();
  Deadlines clocks(start, 60s, 1s, 1000);
  CHECK_FALSE(clocks.cpu_expired(start + 5ms, 999'999'999));
  CHECK(clocks.cpu_expired(start + 5ms, 1'000'000'000));
}

TEST_CASE("the next cpu check is when the budget could run out at the cpu share, at least 5 ms away") {
  // With a 1 s budget, checked 5 ms after the start: how long after the start the next check is.
  auto next_check = [](uint32_t millicores, std::optional<uint64_t> cpu_used_ns) {
    const auto start = Clock::now();
    Deadlines clocks(start, 60s, 1s, millicores);
    REQUIRE_FALSE(clocks.cpu_expired(start + 5ms, cpu_used_ns));
    return clocks.next_cpu_check - start;
  };
  CHECK(next_check(1000, 400'000'000) == 605ms);  // one core spends the 600 ms left in 600 ms
  CHECK(next_check(500, 400'000'000) == 1205ms);  // half a core needs twice as long
  CHECK(next_check(1000, 999'900'000) == 10ms);   // nearly spent: 5 ms on
  CHECK(next_check(1000, std::nullopt) == 10ms);  // an unreadable counter: 5 ms on
}

TEST_CASE("cpu used before the clocks started does not count against them") {
  const auto start = Clock::now();
  Deadlines clocks(start, 60s, 1s, 1000, 5'000'000'000);
  CHECK_FALSE(clocks.cpu_expired(start + 5ms, 5'999'999'999));
  CHECK(clocks.cpu_expired(start + 5ms, 6'000'000'000));
}

TEST_CASE("the timer wakes for the wall deadline when it comes before the next cpu check") {
  const auto start = Clock::now();
  Deadlines clocks(start, 100ms, 10s, 1000);
  REQUIRE_FALSE(clocks.cpu_expired(start + 5ms, 0));
  CHECK(clocks.next_wake() == start + 100ms);
}

}  // namespace airlock::sandbox
