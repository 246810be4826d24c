// Sizes and durations as airlock prints them to people and models.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace airlock::sandbox {

// The one readable form of sizes and durations that airlock prints everywhere (results, summaries,
// errors, `policy show`), and that every input of a size or duration accepts back
// (policies::parse_bytes, parse_duration). Sizes: "256 MiB", "1.5 GiB", "117.68 MiB" (at most two
// decimals), "100 B". Durations: "500 ms", "1.234 s" (exact), "10 s", "2 min", "1 h".
std::string format_bytes(uint64_t bytes);
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace airlock::sandbox
