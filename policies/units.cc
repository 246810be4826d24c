#include "policies/units.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <vector>

namespace airlock::policies {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
  bool listed = true;  // named in "expected ..." hints; aliases are accepted but not offered
};

// Both the policy spelling ("2m", "256MiB") and the readable form airlock prints ("2 min",
// "256 MiB"; sandbox/readable.h) are accepted, so any value airlock shows can be pasted back.
constexpr std::array<Unit, 5> kDurationUnits{
    {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"min", 60'000, false}}};
constexpr std::array<Unit, 6> kByteUnits{{{"B", 1},
                                          {"KiB", 1ULL << 10},
                                          {"MiB", 1ULL << 20},
                                          {"GiB", 1ULL << 30},
                                          {"TiB", 1ULL << 40},
                                          {"bytes", 1, false}}};

// Splits "256MiB" into 256 and "MiB". Fails on signs, fractions, spaces and empty numbers.
bool split_number(std::string_view text, uint64_t& number, std::string_view& suffix) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(begin, end, number);
  if (error != std::errc() || stop == begin) return false;
  suffix = std::string_view(stop, static_cast<size_t>(end - stop));
  return true;
}

// A number with an optional fraction of up to 9 digits ("1.5"), then optional spaces, then the
// unit: the whole number, the fraction as numerator over 10^digits, and the unit.
struct Quantity {
  uint64_t whole = 0;
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  std::string_view unit;
};

bool split_quantity(std::string_view text, Quantity& out) {
  if (!split_number(text, out.whole, out.unit)) return false;
  if (out.unit.starts_with('.')) {
    std::string_view digits = out.unit.substr(1);
    size_t count = 0;
    while (count < digits.size() && digits[count] >= '0' && digits[count] <= '9') ++count;
    if (count == 0 || count > 9) return false;
    for (size_t i = 0; i < count; ++i) {
      out.fraction = out.fraction * 10 + static_cast<uint64_t>(digits[i] - '0');
      out.fraction_scale *= 10;
    }
    out.unit = digits.substr(count);
  }
  while (out.unit.starts_with(' ')) out.unit.remove_prefix(1);
  return true;
}

template <size_t N>
std::string unit_list(const std::array<Unit, N>& units) {
  std::vector<std::string_view> listed;
  for (const Unit& unit : units) {
    if (unit.listed) listed.push_back(unit.suffix);
  }
  std::string list;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (i > 0) list += i + 1 == listed.size() ? " or " : ", ";
    list += listed[i];
  }
  return list;
}

template <size_t N>
Parsed<uint64_t> parse_with_units(std::string_view text, const std::array<Unit, N>& units,
                                  std::string_view what, std::string_view example) {
  const std::string expected = "expected " + std::string(what) + " with a unit (" +
                               unit_list(units) + "), e.g. '" + std::string(example) + "'";
  while (text.starts_with(' ')) text.remove_prefix(1);
  while (text.ends_with(' ')) text.remove_suffix(1);
  Quantity quantity;
  if (!split_quantity(text, quantity)) {
    uint64_t ignored = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), ignored).ec ==
        std::errc::result_out_of_range) {
      return std::string(what) + " '" + std::string(text) + "' is too large";
    }
    return "invalid " + std::string(what) + " '" + std::string(text) + "': " + expected;
  }
  if (quantity.unit.empty()) {
    return std::string(what) + " '" + std::string(text) + "' has no unit: " + expected;
  }
  for (const Unit& unit : units) {
    if (quantity.unit != unit.suffix) continue;
    if (quantity.whole > std::numeric_limits<uint64_t>::max() / unit.factor / 2) {
      return std::string(what) + " '" + std::string(text) + "' is too large";
    }
    // The fraction rounds to the nearest whole unit of the base (a byte, a millisecond).
    const __uint128_t part = static_cast<__uint128_t>(quantity.fraction) * unit.factor;
    const uint64_t value = quantity.whole * unit.factor +
                           static_cast<uint64_t>((part + quantity.fraction_scale / 2) /
                                                 quantity.fraction_scale);
    if (value == 0)
      return std::string(what) + " must be greater than zero, got '" + std::string(text) + "'";
    return value;
  }
  return "unknown unit '" + std::string(quantity.unit) + "' in '" + std::string(text) +
         "': " + expected;
}

}  // namespace

Parsed<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parsed = parse_with_units(text, kDurationUnits, "duration", "10s");
  if (auto* message = std::get_if<std::string>(&parsed)) return *message;
  const uint64_t ms = std::get<uint64_t>(parsed);
  // Keep far away from chrono overflow: a policy has no business with runs longer than a year.
  constexpr uint64_t kMaxMs = 366ULL * 24 * 3'600'000;
  if (ms > kMaxMs) return "duration '" + std::string(text) + "' is too large (at most 366 days)";
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

Parsed<uint64_t> parse_bytes(std::string_view text) {
  // KB/MB/GB are ambiguous (1000 or 1024?); say which spelling is meant instead of guessing.
  for (const auto& [decimal, binary] : {std::pair{"KB", "KiB"},
                                        {"MB", "MiB"},
                                        {"GB", "GiB"},
                                        {"TB", "TiB"},
                                        {"K", "KiB"},
                                        {"M", "MiB"},
                                        {"G", "GiB"}}) {
    const std::string_view suffix(decimal);
    std::string_view trimmed = text;
    while (trimmed.ends_with(' ')) trimmed.remove_suffix(1);
    if (trimmed.size() > suffix.size() && trimmed.ends_with(suffix) &&
        ((trimmed[trimmed.size() - suffix.size() - 1] >= '0' &&
          trimmed[trimmed.size() - suffix.size() - 1] <= '9') ||
         trimmed[trimmed.size() - suffix.size() - 1] == ' ')) {
      return "unknown unit '" + std::string(decimal) + "' in '" + std::string(text) +
             "': sizes are 1024-based, write '" + std::string(binary) + "'";
    }
  }
  return parse_with_units(text, kByteUnits, "size", "256MiB");
}

Parsed<uint64_t> parse_count(std::string_view text, uint64_t max) {
  uint64_t number = 0;
  std::string_view suffix;
  if (!split_number(text, number, suffix) || !suffix.empty()) {
    return "expected a whole number without a unit, got '" + std::string(text) + "'";
  }
  if (number == 0) return "must be greater than zero, got '" + std::string(text) + "'";
  if (number > max)
    return "'" + std::string(text) + "' is too large (at most " + std::to_string(max) + ")";
  return number;
}

Parsed<uint32_t> parse_millicores(std::string_view text) {
  uint64_t number = 0;
  std::string_view suffix;
  const std::string expected = "expected millicores with the unit m, e.g. '1000m' for one core";
  if (!split_number(text, number, suffix)) {
    return "invalid CPU share '" + std::string(text) + "': " + expected;
  }
  if (suffix != "m") {
    return suffix.empty() ? "CPU share '" + std::string(text) + "' has no unit: " + expected
                          : "unknown unit '" + std::string(suffix) + "' in '" + std::string(text) +
                                "': " + expected;
  }
  if (number == 0) return "CPU share must be greater than zero, got '" + std::string(text) + "'";
  // The kernel's smallest quota is 1 ms of each 100 ms period: below 10m every run would fail to
  // set up.
  constexpr uint64_t kMinMillicores = 10;
  if (number < kMinMillicores) {
    return "CPU share '" + std::string(text) +
           "' is too small: at least 10m (the kernel's smallest quota, 1 ms of each 100 ms)";
  }
  constexpr uint64_t kMaxMillicores = 1'024'000;  // 1024 cores
  if (number > kMaxMillicores) return "CPU share '" + std::string(text) + "' is too large";
  return static_cast<uint32_t>(number);
}

std::string spell_bytes(uint64_t bytes) {
  for (auto it = kByteUnits.rbegin(); it != kByteUnits.rend(); ++it) {
    if (it->listed && bytes != 0 && bytes % it->factor == 0) {
      return std::to_string(bytes / it->factor) + std::string(it->suffix);
    }
  }
  return std::to_string(bytes) + "B";
}

std::string spell_duration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace airlock::policies
