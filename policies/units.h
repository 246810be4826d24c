// Values with units, as written in policy files: durations (`10s`, `500ms`), sizes (`256MiB`),
// CPU shares (`1500m`) and plain counts. A number without its unit is an error, never a guess.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "sandbox/readable.h"

namespace airlock::policies {

// Either the parsed value or a sentence saying what was expected.
template <typename T>
using Parsed = std::variant<T, std::string>;

// "500ms", "10s", "2m", "1h". Whole numbers only; zero and negative values are rejected.
Parsed<std::chrono::milliseconds> parse_duration(std::string_view text);

// "512B", "64KiB", "256MiB", "1GiB", "1TiB" (1024-based). Zero and negative values are rejected.
Parsed<uint64_t> parse_bytes(std::string_view text);

// A positive whole number without a unit (processes, open files), at most `max`.
Parsed<uint64_t> parse_count(std::string_view text, uint64_t max);

// CPU bandwidth in millicores: "500m" is half a core, "2000m" two cores.
Parsed<uint32_t> parse_millicores(std::string_view text);

// Readable forms used by `policy show` and `policy diff`, the results and the errors: "256 MiB",
// "1.5 GiB", "10 s", "2 min". One formatter for all of airlock; parse_* accept what it prints.
using sandbox::format_bytes;
using sandbox::format_duration;

// The policy-file spelling, which parses back to the same value: "256MiB", "10s", "1500ms".
std::string spell_bytes(uint64_t bytes);
std::string spell_duration(std::chrono::milliseconds duration);

}  // namespace airlock::policies
