// The sockets a sandbox under egress makes in its own network namespace for airlock's egress
// gateway (runner/egress/): every address made local on loopback, listeners on the policy's
// ports, the DNS socket, and the watch that sees what the namespace's kernel refuses. Child side.
#pragma once

#include <cstddef>
#include <cstdint>

namespace airlock::sandbox {

// Child side (no allocation), for a sandbox whose network reaches the egress gateway: puts every
// IPv4 address on loopback (a loopback address's prefix is a local route, so eight prefixes cover
// 1.0.0.0-255.255.255.255; kGatewayResolver's /15 names the resolver), makes the routable IPv6
// ranges (2000::/3, fc00::/7) local too where the kernel has IPv6, and opens into fds (room for
// 2 * port_count + 2): a TCP listener on 0.0.0.0 for each port, one on [::] for each port where
// the kernel has IPv6, a UDP socket on 0.0.0.0:53, and the refusal watch (open_refusal_watch).
// Returns how many it opened; -1 with errno set and `step` naming the call that failed, the fds
// opened so far closed then.
int open_gateway_sockets(const uint16_t* ports, size_t port_count, int* fds, const char** step);

// Child side (no allocation): a packet socket on the namespace's loopback that receives the
// kernel's refusals of the program's attempts to leave it: the TCP reset answering a connection
// to a port nothing listens on (RST+ACK with sequence 0) and
// ICMP / ICMPv6 port unreachable (a UDP datagram to a port other than the gateway's DNS).
// Only the receiving copy of each packet, cut to kRefusalWatchSnap bytes; a filter in the kernel
// keeps every other packet out. Non-blocking. -1 with errno set and `step` naming the call.
inline constexpr uint32_t kRefusalWatchSnap = 256;
int open_refusal_watch(const char** step);

}  // namespace airlock::sandbox
