#include "sandbox/readable.h"

#include <cstdio>

#include "sandbox/spec.h"

namespace airlock::sandbox {

namespace {

// "1.5", "117.68", "2": a value with at most `decimals` digits after the point, without trailing
// zeros.
std::string trimmed_decimal(double value, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  std::string out = text;
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out;
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  struct Unit {
    uint64_t size;
    const char* name;
  };
  constexpr uint64_t kTiB = 1024 * kGiB;
  for (Unit unit : {Unit{kTiB, "TiB"}, Unit{kGiB, "GiB"}, Unit{kMiB, "MiB"}, Unit{kKiB, "KiB"}}) {
    if (bytes < unit.size) continue;
    if (bytes % unit.size == 0) return std::to_string(bytes / unit.size) + " " + unit.name;
    return trimmed_decimal(static_cast<double>(bytes) / static_cast<double>(unit.size), 2) + " " +
           unit.name;
  }
  return std::to_string(bytes) + " B";
}

std::string format_duration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + " h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  if (ms < 1000 && ms > -1000) return std::to_string(ms) + " ms";
  // Exact to the millisecond, so the text parses back to the same value.
  return trimmed_decimal(static_cast<double>(ms) / 1000.0, 3) + " s";
}

}  // namespace airlock::sandbox
