// Namespaces: which ones a sandbox gets, the uid/gid maps written by the supervisor, and the
// child-side steps inside the new namespaces (loopback up, hostname).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "sandbox/error.h"

namespace airlock::sandbox {

// user, mount, pid, net, ipc, uts. The cgroup namespace is entered later by the child, after the
// supervisor has moved it into its cgroup, so that its cgroup root is its own cgroup.
unsigned long sandbox_clone_flags();

struct IdMap {
  uint32_t inside_uid = 1000, inside_gid = 1000;
  uint32_t host_uid = 65534, host_gid = 65534;
};

// The text written to /proc/PID/uid_map and gid_map: exactly one id, never host root.
std::string uid_map_line(const IdMap& map);
std::string gid_map_line(const IdMap& map);

// Supervisor side: writes the child's uid_map and gid_map.
Status write_id_maps(pid_t child, const IdMap& map);

// Child side (no allocation): brings the loopback interface of the new net namespace up.
bool bring_up_loopback();

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
// to a port nothing listens on (RST+ACK with sequence 0; every IPv6 port is such a port) and
// ICMP / ICMPv6 port unreachable (a UDP datagram to a port other than the gateway's DNS).
// Only the receiving copy of each packet, cut to kRefusalWatchSnap bytes; a filter in the kernel
// keeps every other packet out. Non-blocking. -1 with errno set and `step` naming the call.
inline constexpr uint32_t kRefusalWatchSnap = 256;
int open_refusal_watch(const char** step);

// Child side (no allocation): a new time namespace for the caller's children, its monotonic and
// boot-time clocks starting at 0, so a program cannot read how long the host has been up (or
// asleep). The kernel moves a process into it at fork, or at exec after a vfork. Needs
// CAP_SYS_ADMIN and CAP_SYS_TIME in the caller's user namespace; false with errno set and
// `step` naming the call that failed. True, doing nothing, on a kernel without time namespaces.
bool enter_time_namespace(const char** step);

}  // namespace airlock::sandbox
