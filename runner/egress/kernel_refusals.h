// What the sandbox's own kernel refused, read from the packets its refusal watch receives
// (sandbox/gateway_sockets.h: open_refusal_watch): the reset answering a TCP connection to a port the
// gateway does not listen on (any IPv6 port too), and the ICMP error answering a UDP datagram to
// a port other than the gateway's DNS. The gateway never sees these attempts; their packets name
// the destination the program tried.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace airlock::egress {

struct KernelRefusal {
  enum class Protocol { tcp, udp };
  Protocol protocol = Protocol::tcp;
  bool ipv6 = false;
  std::string address;  // "10.1.2.3", "2001:db8::1"
  uint16_t port = 0;
};

// The refusal an IP packet (from its IP header on) carries, or nothing for any other packet: one
// that is cut short or malformed, another ICMP message, or a refusal of a loopback destination
// (127.0.0.0/8, ::1: the sandbox's own, not a way out).
std::optional<KernelRefusal> parse_kernel_refusal(std::span<const uint8_t> packet);

}  // namespace airlock::egress
