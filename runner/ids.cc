#include "runner/ids.h"

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace airlock::runner {
namespace {

constexpr size_t kIncarnationDigits = 8;
constexpr size_t kIdDigits = 24;
constexpr size_t kMaxReplicaName = 32;

bool is_hex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Splits "<kind>_[<replica>_]<24 hex>" into replica and digits; false when it is not of that form.
bool split(std::string_view kind, std::string_view id, std::string_view& replica,
           std::string_view& digits) {
  if (id.size() <= kind.size() + 1 || !id.starts_with(kind) || id[kind.size()] != '_') {
    return false;
  }
  std::string_view rest = id.substr(kind.size() + 1);
  const size_t underscore = rest.find('_');
  replica = underscore == std::string_view::npos ? std::string_view() : rest.substr(0, underscore);
  digits = underscore == std::string_view::npos ? rest : rest.substr(underscore + 1);
  if (underscore != std::string_view::npos && !is_replica_name(replica)) return false;
  return digits.size() == kIdDigits && is_hex(digits);
}

}  // namespace

bool is_replica_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxReplicaName || name.front() == '-') return false;
  return name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string_view::npos;
}

std::string random_hex(size_t count) {
  std::vector<unsigned char> bytes(count);
  size_t filled = 0;
  while (filled < count) {
    const ssize_t got = ::getrandom(bytes.data() + filled, count - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    filled += static_cast<size_t>(got);
  }
  if (filled < count) {
    // No kernel randomness: still unique within this process (time and a counter), never a
    // repeated id. Ids are not secrets; access to what they name is checked by the API key.
    static std::atomic<uint64_t> counter{0};
    uint64_t mix = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    mix ^= ++counter * 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<unsigned char>(mix >> (8 * (i % 8)) ^ i);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(2 * count);
  for (unsigned char byte : bytes) {
    text += kDigits[byte >> 4];
    text += kDigits[byte & 0xf];
  }
  return text;
}

std::string new_execution_id() {
  return "ex_" + random_hex(kIdDigits / 2);
}

IdMaker::IdMaker(std::string replica)
    : replica_(std::move(replica)), incarnation_(random_hex(kIncarnationDigits / 2)) {}

std::string IdMaker::make(std::string_view kind) const {
  std::string id(kind);
  id += '_';
  if (!replica_.empty()) id += replica_ + "_";
  return id + incarnation_ + random_hex((kIdDigits - kIncarnationDigits) / 2);
}

IdOrigin IdMaker::origin(std::string_view kind, std::string_view id) const {
  std::string_view replica, digits;
  if (!split(kind, id, replica, digits)) return IdOrigin::not_an_id;
  if (replica != replica_) return IdOrigin::other_replica;
  // A lone service (no name) keeps its answers as they were: any id of its form may be its own.
  if (replica_.empty()) return IdOrigin::this_run;
  return digits.starts_with(incarnation_) ? IdOrigin::this_run : IdOrigin::earlier_run;
}

bool IdMaker::well_formed(std::string_view kind, std::string_view id) {
  std::string_view replica, digits;
  return split(kind, id, replica, digits);
}

std::string_view IdMaker::replica_of(std::string_view kind, std::string_view id) {
  std::string_view replica, digits;
  return split(kind, id, replica, digits) ? replica : std::string_view();
}

}  // namespace airlock::runner
