#include "runner/egress/kernel_refusals.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace airlock::egress {

namespace {

constexpr size_t kIpv6HeaderSize = 40;
constexpr uint8_t kTcpRstAck = 0x14;
// A datagram from port 53 is the gateway's late answer to a client that had gone: not the
// program's attempt to leave.
constexpr uint16_t kDnsPort = 53;

uint16_t u16(std::span<const uint8_t> bytes, size_t at) {
  return static_cast<uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

uint32_t u32(std::span<const uint8_t> bytes, size_t at) {
  return static_cast<uint32_t>(u16(bytes, at)) << 16 | u16(bytes, at + 2);
}

std::string address_text(int family, const uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, bytes, text, sizeof text);
  return text;
}

// The kernel answers a connection to a closed port with RST+ACK and sequence number 0; a reset
// that ends an established connection carries its sequence number.
bool is_refusing_reset(std::span<const uint8_t> tcp) {
  return tcp.size() >= 20 && (tcp[13] & kTcpRstAck) == kTcpRstAck && u32(tcp, 4) == 0;
}

// IPv4 header length when bytes start with a whole, unfragmented IPv4 header; else 0.
size_t ipv4_header_length(std::span<const uint8_t> bytes) {
  if (bytes.size() < 20 || bytes[0] >> 4 != 4) return 0;
  const size_t length = static_cast<size_t>(bytes[0] & 0x0f) * 4;
  if (length < 20 || bytes.size() < length || (u16(bytes, 6) & 0x1fff) != 0) return 0;
  return length;
}

std::optional<KernelRefusal> from_ipv4(std::span<const uint8_t> packet) {
  const size_t header = ipv4_header_length(packet);
  if (header == 0) return std::nullopt;
  const auto rest = packet.subspan(header);
  if (packet[9] == IPPROTO_TCP && is_refusing_reset(rest)) {
    if (packet[12] == 127) return std::nullopt;
    return KernelRefusal{KernelRefusal::Protocol::tcp, false, address_text(AF_INET, &packet[12]),
                         u16(rest, 0)};
  }
  // Destination unreachable, port unreachable; it quotes the datagram's IP header and 8 bytes.
  if (packet[9] != IPPROTO_ICMP || rest.size() < 8 || rest[0] != 3 || rest[1] != 3) {
    return std::nullopt;
  }
  const auto quoted = rest.subspan(8);
  const size_t quoted_header = ipv4_header_length(quoted);
  if (quoted_header == 0 || quoted[9] != IPPROTO_UDP || quoted.size() < quoted_header + 4 ||
      quoted[16] == 127 || u16(quoted, quoted_header) == kDnsPort) {
    return std::nullopt;
  }
  return KernelRefusal{KernelRefusal::Protocol::udp, false, address_text(AF_INET, &quoted[16]),
                       u16(quoted, quoted_header + 2)};
}

bool is_ipv6_loopback(const uint8_t* address) {
  static constexpr uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::equal(address, address + 16, kLoopback);
}

std::optional<KernelRefusal> from_ipv6(std::span<const uint8_t> packet) {
  if (packet.size() < kIpv6HeaderSize) return std::nullopt;
  const auto rest = packet.subspan(kIpv6HeaderSize);
  if (packet[6] == IPPROTO_TCP && is_refusing_reset(rest)) {
    if (is_ipv6_loopback(&packet[8])) return std::nullopt;
    return KernelRefusal{KernelRefusal::Protocol::tcp, true, address_text(AF_INET6, &packet[8]),
                         u16(rest, 0)};
  }
  // ICMPv6 destination unreachable, port unreachable, quoting the datagram from its header on
  // (a UDP header right after it: the kernel sends nothing with extension headers here).
  if (packet[6] != IPPROTO_ICMPV6 || rest.size() < 8 + kIpv6HeaderSize + 4 || rest[0] != 1 ||
      rest[1] != 4) {
    return std::nullopt;
  }
  const auto quoted = rest.subspan(8);
  if (quoted[0] >> 4 != 6 || quoted[6] != IPPROTO_UDP || is_ipv6_loopback(&quoted[24]) ||
      u16(quoted, kIpv6HeaderSize) == kDnsPort) {
    return std::nullopt;
  }
  return KernelRefusal{KernelRefusal::Protocol::udp, true, address_text(AF_INET6, &quoted[24]),
                       u16(quoted, kIpv6HeaderSize + 2)};
}

}  // namespace

std::optional<KernelRefusal> parse_kernel_refusal(std::span<const uint8_t> packet) {
  if (packet.empty()) return std::nullopt;
  if (packet[0] >> 4 == 4) return from_ipv4(packet);
  if (packet[0] >> 4 == 6) return from_ipv6(packet);
  return std::nullopt;
}

}  // namespace airlock::egress
