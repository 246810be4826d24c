#include "policies/units.h"

#include <catch2/catch.hpp>

namespace airlock::policies {
namespace {

template <typename T>
T value_of(const Parsed<T>& parsed) {
  if (const auto* message = std::get_if<std::string>(&parsed)) FAIL(*message);
  return std::get<T>(parsed);
}

template <typename T>
std::string error_of(const Parsed<T>& parsed) {
  REQUIRE(std::holds_alternative<std::string>(parsed));
  return std::get<std::string>(parsed);
}

}  // namespace

using namespace std::chrono_literals;

TEST_CASE("durations are read with their unit") {
  CHECK(value_of(parse_duration("500ms")) == 500ms);
  CHECK(value_of(parse_duration("10s")) == 10s);
  CHECK(value_of(parse_duration("2m")) == 120s);
  CHECK(value_of(parse_duration("1h")) == 3600s);
}

TEST_CASE("a duration without a unit, with an unknown unit or not positive is refused") {
  CHECK(error_of(parse_duration("10")) ==
        "duration '10' has no unit: expected duration with a unit (ms, s, m or h), e.g. '10s'");
  CHECK(error_of(parse_duration("10 sec")).starts_with("unknown unit 'sec' in '10 sec'"));
  CHECK(error_of(parse_duration("0.1ms")) == "duration must be greater than zero, got '0.1ms'");
  CHECK(error_of(parse_duration("1.s")).starts_with("invalid duration '1.s'"));
  CHECK(error_of(parse_duration("0s")) == "duration must be greater than zero, got '0s'");
  CHECK(error_of(parse_duration("-1s")).starts_with("invalid duration '-1s'"));
  CHECK(error_of(parse_duration("")).starts_with("invalid duration ''"));
  CHECK(error_of(parse_duration("9999h")) == "duration '9999h' is too large (at most 366 days)");
  // More digits than 64 bits hold is a number too large, not a malformed one.
  CHECK(error_of(parse_duration("99999999999999999999 s")) ==
        "duration '99999999999999999999 s' is too large");
  CHECK(error_of(parse_duration("99999999999999999999s")) ==
        "duration '99999999999999999999s' is too large");
}

TEST_CASE("sizes are 1024-based and need a unit") {
  CHECK(value_of(parse_bytes("512B")) == 512);
  CHECK(value_of(parse_bytes("64KiB")) == 64 * 1024);
  CHECK(value_of(parse_bytes("256MiB")) == 256ULL << 20);
  CHECK(value_of(parse_bytes("1GiB")) == 1ULL << 30);
  CHECK(error_of(parse_bytes("256")) ==
        "size '256' has no unit: expected size with a unit (B, KiB, MiB, GiB or TiB), e.g. "
        "'256MiB'");
  CHECK(error_of(parse_bytes("1GB")) ==
        "unknown unit 'GB' in '1GB': sizes are 1024-based, write 'GiB'");
  CHECK(error_of(parse_bytes("0MiB")) == "size must be greater than zero, got '0MiB'");
  CHECK(error_of(parse_bytes("20000000TiB")) == "size '20000000TiB' is too large");
  CHECK(error_of(parse_bytes("99999999999999999999MiB")) ==
        "size '99999999999999999999MiB' is too large");
}

TEST_CASE("counts are whole numbers without a unit, within bounds") {
  CHECK(value_of(parse_count("64", 100)) == 64);
  CHECK(error_of(parse_count("64k", 100)) == "expected a whole number without a unit, got '64k'");
  CHECK(error_of(parse_count("101", 100)) == "'101' is too large (at most 100)");
  CHECK(error_of(parse_count("0", 100)) == "must be greater than zero, got '0'");
}

TEST_CASE("CPU shares are millicores") {
  CHECK(value_of(parse_millicores("1500m")) == 1500);
  CHECK(value_of(parse_millicores("10m")) == 10);
  CHECK(error_of(parse_millicores("9m")) ==
        "CPU share '9m' is too small: at least 10m (the kernel's smallest quota, 1 ms of each "
        "100 ms)");
  CHECK(error_of(parse_millicores("2")).starts_with("CPU share '2' has no unit"));
  CHECK(error_of(parse_millicores("2cores")).starts_with("unknown unit 'cores'"));
}

TEST_CASE("readable and policy spellings of values") {
  CHECK(format_bytes(256ULL << 20) == "256 MiB");
  CHECK(format_bytes(1ULL << 30) == "1 GiB");
  CHECK(format_bytes(1536ULL << 20) == "1.5 GiB");
  CHECK(format_bytes(100) == "100 B");
  CHECK(format_duration(10s) == "10 s");
  CHECK(format_duration(1500ms) == "1.5 s");
  CHECK(format_duration(120s) == "2 min");
  CHECK(format_duration(3600s) == "1 h");
  CHECK(spell_bytes(64ULL << 20) == "64MiB");
  CHECK(spell_bytes(1536ULL << 20) == "1536MiB");
  CHECK(spell_duration(1500ms) == "1500ms");
  CHECK(spell_duration(120s) == "2m");
}

TEST_CASE("a spelled value parses back to itself") {
  for (uint64_t bytes : {1ULL, 1023ULL, 4096ULL, 3ULL << 20, 5ULL << 30}) {
    CHECK(value_of(parse_bytes(spell_bytes(bytes))) == bytes);
  }
  for (std::chrono::milliseconds duration : {1ms, 999ms, 1000ms, 61000ms, 60000ms, 3600000ms}) {
    CHECK(value_of(parse_duration(spell_duration(duration))) == duration);
  }
}

TEST_CASE("what airlock prints is accepted back as input") {
  CHECK(value_of(parse_duration("10 s")) == 10s);
  CHECK(value_of(parse_duration("2 min")) == 120s);
  CHECK(value_of(parse_duration("2min")) == 120s);
  CHECK(value_of(parse_duration("1 h")) == 3600s);
  CHECK(value_of(parse_duration("1.5 s")) == 1500ms);
  CHECK(value_of(parse_duration(" 500 ms ")) == 500ms);
  CHECK(value_of(parse_bytes("256 MiB")) == 256ULL << 20);
  CHECK(value_of(parse_bytes("1.5 GiB")) == 1536ULL << 20);
  CHECK(value_of(parse_bytes("100 B")) == 100);
  CHECK(value_of(parse_bytes("100 bytes")) == 100);
  CHECK(error_of(parse_bytes("1 GB")) ==
        "unknown unit 'GB' in '1 GB': sizes are 1024-based, write 'GiB'");
  for (std::chrono::milliseconds duration :
       {1ms, 999ms, 1000ms, 1234ms, 1500ms, 61000ms, 60000ms, 3600000ms, 5400000ms}) {
    CHECK(value_of(parse_duration(format_duration(duration))) == duration);
  }
  for (uint64_t bytes : {1ULL, 1023ULL, 4096ULL, 3ULL << 20, 5ULL << 30, 1536ULL << 20}) {
    CHECK(value_of(parse_bytes(format_bytes(bytes))) == bytes);
  }
  // A measured size prints with two decimals and reads back to within the rounding.
  const uint64_t measured = 123'456'789;
  const uint64_t back = value_of(parse_bytes(format_bytes(measured)));
  CHECK(back > measured - (1ULL << 20) / 100);
  CHECK(back < measured + (1ULL << 20) / 100);
}

}  // namespace airlock::policies
