#include "runner/egress/dns.h"

#include "runner/egress/rules.h"

namespace airlock::egress {

namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxLabelSize = 63;
constexpr size_t kMaxNameSize = 253;  // as text, without the trailing dot
// Compression pointers followed while reading one name: more is a loop or an attack.
constexpr int kMaxPointerHops = 16;
constexpr uint16_t kFlagResponse = 0x8000;
constexpr uint16_t kOpcodeMask = 0x7800;
constexpr uint16_t kFlagRecursionDesired = 0x0100;
constexpr uint16_t kFlagRecursionAvailable = 0x0080;
constexpr uint16_t kFlagAuthoritative = 0x0400;

uint16_t read16(std::span<const uint8_t> p, size_t at) {
  return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

void put16(std::vector<uint8_t>& out, uint16_t value) {
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value & 0xff));
}

void put32(std::vector<uint8_t>& out, uint32_t value) {
  put16(out, static_cast<uint16_t>(value >> 16));
  put16(out, static_cast<uint16_t>(value & 0xffff));
}

// Reads the name at offset; on success sets labels and the offset just past the name (past the
// first pointer when it was compressed).
bool read_name(std::span<const uint8_t> p, size_t offset, std::vector<std::string>& labels,
               size_t& end) {
  size_t at = offset;
  size_t text_size = 0;
  int hops = 0;
  bool jumped = false;
  while (true) {
    if (at >= p.size()) return false;
    const uint8_t length = p[at];
    if ((length & 0xc0) == 0xc0) {
      if (at + 1 >= p.size() || ++hops > kMaxPointerHops) return false;
      const size_t target = static_cast<size_t>((length & 0x3f) << 8 | p[at + 1]);
      if (target >= at) return false;  // pointers go backwards only: no loops
      if (!jumped) end = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if (length & 0xc0) return false;  // 0x40 and 0x80: no such label types
    if (length == 0) {
      if (!jumped) end = at + 1;
      return true;
    }
    if (length > kMaxLabelSize || at + 1 + length > p.size()) return false;
    text_size += length + (labels.empty() ? 0 : 1);
    if (text_size > kMaxNameSize) return false;
    labels.emplace_back(reinterpret_cast<const char*>(p.data() + at + 1), length);
    at += 1 + length;
  }
}

std::vector<uint8_t> header_only(uint16_t id, uint16_t query_flags, DnsRcode rcode) {
  std::vector<uint8_t> out;
  put16(out, id);
  put16(out, static_cast<uint16_t>(kFlagResponse | (query_flags & kOpcodeMask) |
                                   (query_flags & kFlagRecursionDesired) | kFlagRecursionAvailable |
                                   static_cast<uint16_t>(rcode)));
  for (int i = 0; i < 4; ++i) put16(out, 0);
  return out;
}

std::vector<uint8_t> reply(const DnsQuestion& q, DnsRcode rcode, const std::optional<Ipv4>& a) {
  std::vector<uint8_t> out;
  put16(out, q.id);
  put16(out, static_cast<uint16_t>(kFlagResponse | kFlagAuthoritative |
                                   (q.flags & kFlagRecursionDesired) | kFlagRecursionAvailable |
                                   static_cast<uint16_t>(rcode)));
  put16(out, 1);
  put16(out, a ? 1 : 0);
  put16(out, 0);
  put16(out, 0);
  for (const std::string& label : q.labels) {
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
  }
  out.push_back(0);
  put16(out, q.type);
  put16(out, q.klass);
  if (a) {
    put16(out, 0xc000 | kHeaderSize);  // the question's name
    put16(out, kTypeA);
    put16(out, kClassIn);
    put32(out, kSyntheticTtlSeconds);
    put16(out, 4);
    out.insert(out.end(), a->begin(), a->end());
  }
  return out;
}

}  // namespace

bool in_synthetic_range(const Ipv4& address) {
  return address[0] == 198 && (address[1] & 0xfe) == 18;
}

std::optional<Ipv4> SyntheticNames::assign(const std::string& name) {
  if (auto found = by_name_.find(name); found != by_name_.end()) return found->second;
  if (by_name_.size() >= kMaxSyntheticNames) return std::nullopt;
  // 198.18.1.1 + n: far below the end of 198.18.0.0/15 for any n under kMaxSyntheticNames.
  const uint32_t first = static_cast<uint32_t>(kFirstSyntheticAddress[0]) << 24 |
                         kFirstSyntheticAddress[1] << 16 | kFirstSyntheticAddress[2] << 8 |
                         kFirstSyntheticAddress[3];
  const uint32_t value = first + static_cast<uint32_t>(by_name_.size());
  const Ipv4 address{static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16),
                     static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
  by_name_.emplace(name, address);
  by_address_.emplace(address, name);
  return address;
}

std::optional<std::string> SyntheticNames::name_of(const Ipv4& address) const {
  if (auto found = by_address_.find(address); found != by_address_.end()) return found->second;
  return std::nullopt;
}

DnsAnswer answer_dns_query(std::span<const uint8_t> packet, const policies::Egress& egress,
                           SyntheticNames& names) {
  DnsAnswer answer;
  if (packet.size() < kHeaderSize) return answer;
  const uint16_t id = read16(packet, 0);
  const uint16_t flags = read16(packet, 2);
  if (flags & kFlagResponse) return answer;  // never answer answers (reflection loops)
  if ((flags & kOpcodeMask) != 0) {
    answer.packet = header_only(id, flags, DnsRcode::not_implemented);
    return answer;
  }
  DnsQuestion q;
  q.id = id;
  q.flags = flags;
  size_t end = 0;
  if (read16(packet, 4) != 1 || !read_name(packet, kHeaderSize, q.labels, end) ||
      end + 4 > packet.size()) {
    answer.packet = header_only(id, flags, DnsRcode::format_error);
    return answer;
  }
  q.type = read16(packet, end);
  q.klass = read16(packet, end + 2);
  for (size_t i = 0; i < q.labels.size(); ++i) {
    if (i > 0) q.name += '.';
    for (char c : q.labels[i]) q.name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  answer.counted = true;
  if (q.klass != kClassIn) {
    answer.packet = reply(q, DnsRcode::not_implemented, std::nullopt);
  } else if (!is_hostname(q.name)) {  // a dot or a control byte inside a label
    answer.packet = reply(q, DnsRcode::name_error, std::nullopt);
    answer.refused_name = q.name.empty() ? "." : printable(q.name);
  } else if (!name_allowed(egress, q.name)) {
    answer.packet = reply(q, DnsRcode::name_error, std::nullopt);
    answer.refused_name = q.name;
  } else if (q.type != kTypeA) {
    answer.packet = reply(q, DnsRcode::no_error, std::nullopt);  // no IPv6: A records only
  } else if (auto address = names.assign(q.name)) {
    answer.packet = reply(q, DnsRcode::no_error, address);
  } else {
    answer.packet = reply(q, DnsRcode::server_failure, std::nullopt);
    answer.over_limit_name = q.name;
  }
  return answer;
}

std::vector<uint8_t> make_dns_query(uint16_t id, const std::string& name, uint16_t type) {
  std::vector<uint8_t> out;
  put16(out, id);
  put16(out, kFlagRecursionDesired);
  put16(out, 1);
  for (int i = 0; i < 3; ++i) put16(out, 0);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out.push_back(static_cast<uint8_t>(dot - start));
    out.insert(out.end(), name.begin() + static_cast<long>(start),
               name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  out.push_back(0);
  put16(out, type);
  put16(out, kClassIn);
  return out;
}

}  // namespace airlock::egress
