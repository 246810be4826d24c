#include "sandbox/gateway_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::sandbox {

namespace {

// The prefixes whose loopback addresses make every IPv4 address local: the gateway's own /15,
// then 1/8, 2/7, ... 128/1 (0/8 is "this network" and never a destination).
struct LoopbackPrefix {
  uint8_t address[4];
  uint8_t prefix_length;
};
constexpr LoopbackPrefix kGatewayPrefixes[] = {
    {{198, 18, 0, 1}, 15}, {{1, 0, 0, 1}, 8},  {{2, 0, 0, 1}, 7},  {{4, 0, 0, 1}, 6},
    {{8, 0, 0, 1}, 5},     {{16, 0, 0, 1}, 4}, {{32, 0, 0, 1}, 3}, {{64, 0, 0, 1}, 2},
    {{128, 0, 0, 1}, 1},
};

sockaddr_in ipv4(const uint8_t (&bytes)[4], uint16_t port) {
  sockaddr_in address;
  std::memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  std::memcpy(&address.sin_addr, bytes, 4);
  return address;
}

// "lo:N" without snprintf (which may allocate).
void alias_name(char (&name)[IFNAMSIZ], size_t number) {
  std::memset(name, 0, sizeof name);
  std::memcpy(name, "lo:", 3);
  if (number >= 10) name[3 + 0] = static_cast<char>('0' + number / 10);
  name[number >= 10 ? 4 : 3] = static_cast<char>('0' + number % 10);
}

bool add_loopback_prefixes(int control_socket, const char** step) {
  for (size_t i = 0; i < sizeof kGatewayPrefixes / sizeof kGatewayPrefixes[0]; ++i) {
    const LoopbackPrefix& prefix = kGatewayPrefixes[i];
    struct ifreq request;
    std::memset(&request, 0, sizeof request);
    alias_name(request.ifr_name, i + 1);
    sockaddr_in address = ipv4(prefix.address, 0);
    std::memcpy(&request.ifr_addr, &address, sizeof address);
    if (::ioctl(control_socket, SIOCSIFADDR, &request) != 0) {
      *step = "ioctl(SIOCSIFADDR, lo)";
      return false;
    }
    const uint32_t mask = htonl(~uint32_t{0} << (32 - prefix.prefix_length));
    std::memcpy(&address.sin_addr, &mask, 4);
    std::memcpy(&request.ifr_netmask, &address, sizeof address);
    if (::ioctl(control_socket, SIOCSIFNETMASK, &request) != 0) {
      *step = "ioctl(SIOCSIFNETMASK, lo)";
      return false;
    }
  }
  return true;
}

// Closes fd, which failed to become what was wanted, keeping the failure's errno; -1.
int close_failed(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return -1;
}

// A socket bound to 0.0.0.0:port (listening, for TCP), or -1 with step set.
int open_bound(int type, uint16_t port, const char** step) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *step = "socket(gateway)";
    return -1;
  }
  const uint8_t any[4] = {0, 0, 0, 0};
  const sockaddr_in address = ipv4(any, port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    *step = type == SOCK_STREAM ? "bind(gateway port)" : "bind(gateway dns)";
  } else if (type == SOCK_STREAM && ::listen(fd, 128) != 0) {
    *step = "listen(gateway port)";
  } else {
    return fd;
  }
  return close_failed(fd);
}

// A TCP listener on [::]:port for IPv6 alone (IPv4 has its own), or -1 with errno set: none on a
// kernel without IPv6.
int open_ipv6_listener(uint16_t port) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in6 address;
  std::memset(&address, 0, sizeof address);
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(port);
  address.sin6_addr = in6addr_any;
  const int on = 1;
  if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0 &&
      ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
      ::listen(fd, 128) == 0) {
    return fd;
  }
  return close_failed(fd);
}

// Makes prefix/length a local route on loopback (`ip -6 route add local PREFIX/LENGTH dev lo`),
// so a connection to any address in it is answered inside the namespace, by a reset the refusal
// watch sees, instead of failing with ENETUNREACH unseen. Best effort: without IPv6 (disabled on
// the host) no IPv6 destination is reachable anyway, only its refusal goes unreported.
void add_ipv6_local_route(const uint8_t (&prefix)[16], uint8_t length, int loopback_index) {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return;
  struct {
    nlmsghdr header;
    rtmsg route;
    rtattr destination_attribute;
    uint8_t destination[16];
    rtattr interface_attribute;
    int32_t interface;
  } request;
  static_assert(sizeof request == NLMSG_LENGTH(sizeof(rtmsg)) + RTA_LENGTH(16) + RTA_LENGTH(4));
  std::memset(&request, 0, sizeof request);
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = RTM_NEWROUTE;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  request.route.rtm_family = AF_INET6;
  request.route.rtm_dst_len = length;
  request.route.rtm_table = RT_TABLE_LOCAL;
  request.route.rtm_protocol = RTPROT_STATIC;
  request.route.rtm_scope = RT_SCOPE_HOST;
  request.route.rtm_type = RTN_LOCAL;
  request.destination_attribute.rta_type = RTA_DST;
  request.destination_attribute.rta_len = RTA_LENGTH(16);
  std::memcpy(request.destination, prefix, 16);
  request.interface_attribute.rta_type = RTA_OIF;
  request.interface_attribute.rta_len = RTA_LENGTH(4);
  request.interface = loopback_index;
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &request, sizeof request, 0, reinterpret_cast<const sockaddr*>(&kernel),
               sizeof kernel) == static_cast<ssize_t>(sizeof request)) {
    char answer[256];
    (void)::recv(fd, answer, sizeof answer, 0);  // the acknowledgement; its error changes nothing
  }
  ::close(fd);
}

int loopback_index(int any_socket) {
  struct ifreq request;
  std::memset(&request, 0, sizeof request);
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(any_socket, SIOCGIFINDEX, &request) != 0) return -1;
  return request.ifr_ifindex;
}

constexpr uint8_t kIpv6GlobalUnicast[16] = {0x20};
constexpr uint8_t kIpv6UniqueLocal[16] = {0xfc};

}  // namespace

int open_refusal_watch(const char** step) {
  // The filter sees each packet from its IP header on (a datagram packet socket); A is the
  // accumulator, X the TCP header's offset. Jump offsets count the instructions skipped.
  constexpr uint32_t kRstAck = 0x14;
  // The kernel's own data about the packet sits at (unsigned) negative offsets.
  constexpr uint32_t kAncillary = static_cast<uint32_t>(SKF_AD_OFF);
  constexpr uint32_t kPortUnreachable = 0x0303;    // ICMP type 3 (unreachable), code 3 (port)
  constexpr uint32_t kPortUnreachable6 = 0x0104;   // ICMPv6 type 1 (unreachable), code 4 (port)
  sock_filter program[] = {
      /*  0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kAncillary + SKF_AD_PKTTYPE),
      /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, 0, 24),  // lo's sending copy: 26
      /*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kAncillary + SKF_AD_PROTOCOL),
      /*  3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 7),  // IPv4 at 11
      /*  4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),                  // next header
      /*  5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 2),
      /*  6 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 40),  // ICMPv6 type and code
      /*  7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kPortUnreachable6, 17, 18),
      /*  8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 17),
      /*  9 */ BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 40),
      /* 10 */ BPF_STMT(BPF_JMP | BPF_JA, 9),  // the TCP checks at 20
      /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 14),
      /* 12 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),  // fragment offset: a later piece has no ports
      /* 13 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 12, 0),
      /* 14 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),  // X = the IPv4 header's length
      /* 15 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),   // protocol
      /* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMP, 0, 2),
      /* 17 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),  // ICMP type and code
      /* 18 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kPortUnreachable, 6, 7),
      /* 19 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 6),
      /* 20 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 13),  // TCP flags
      /* 21 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kRstAck),
      /* 22 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kRstAck, 0, 3),
      /* 23 */ BPF_STMT(BPF_LD | BPF_W | BPF_IND, 4),  // sequence number
      /* 24 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
      /* 25 */ BPF_STMT(BPF_RET | BPF_K, kRefusalWatchSnap),
      /* 26 */ BPF_STMT(BPF_RET | BPF_K, 0),
  };
  const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *step = "socket(AF_PACKET, refusal watch)";
    return -1;
  }
  // Protocol 0 until bind: no packet arrives before the filter is in place.
  sock_fprog filter{static_cast<unsigned short>(sizeof program / sizeof program[0]), program};
  sockaddr_ll address;
  std::memset(&address, 0, sizeof address);
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  address.sll_ifindex = loopback_index(fd);
  // The kernel then skips copying every packet the sandbox sends for the filter to drop (Linux
  // 4.20 on; before, the filter's first test drops them).
  const int on = 1;
  (void)::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on);
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &filter, sizeof filter) != 0) {
    *step = "setsockopt(SO_ATTACH_FILTER, refusal watch)";
  } else if (address.sll_ifindex < 0) {
    *step = "ioctl(SIOCGIFINDEX, lo)";
  } else if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    *step = "bind(refusal watch)";
  } else {
    return fd;
  }
  return close_failed(fd);
}

int open_gateway_sockets(const uint16_t* ports, size_t port_count, int* fds, const char** step) {
  const int control = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (control < 0) {
    *step = "socket(lo)";
    return -1;
  }
  const bool added = add_loopback_prefixes(control, step);
  int saved = errno;
  const int loopback = loopback_index(control);
  ::close(control);
  errno = saved;
  if (!added) return -1;
  if (loopback > 0) {
    add_ipv6_local_route(kIpv6GlobalUnicast, 3, loopback);
    add_ipv6_local_route(kIpv6UniqueLocal, 7, loopback);
  }
  int count = 0;
  const auto close_opened = [&] {
    saved = errno;
    while (count > 0) ::close(fds[--count]);
    errno = saved;
    return -1;
  };
  for (size_t i = 0; i < port_count; ++i) {
    if ((fds[count] = open_bound(SOCK_STREAM, ports[i], step)) < 0) return close_opened();
    ++count;
  }
  // The IPv6 listeners, all or none.
  size_t ipv6 = 0;
  while (ipv6 < port_count && (fds[count + ipv6] = open_ipv6_listener(ports[ipv6])) >= 0) ++ipv6;
  if (ipv6 == port_count) {
    count += static_cast<int>(ipv6);
  } else {
    while (ipv6 > 0) ::close(fds[count + --ipv6]);
  }
  if ((fds[count] = open_bound(SOCK_DGRAM, 53, step)) < 0) return close_opened();
  ++count;
  if ((fds[count] = open_refusal_watch(step)) < 0) return close_opened();
  return ++count;
}

}  // namespace airlock::sandbox
