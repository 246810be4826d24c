// Human-readable calls for violation reports: "socket(AF_INET, SOCK_STREAM, 0)".
#include <linux/audit.h>
#include <linux/sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cstdio>

#include "sandbox/seccomp.h"

namespace airlock::sandbox {
namespace {

std::string hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

std::string family_name(uint64_t family) {
  switch (family) {
    case AF_UNIX: return "AF_UNIX";
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    case AF_VSOCK: return "AF_VSOCK";
    case AF_BLUETOOTH: return "AF_BLUETOOTH";
    case AF_ALG: return "AF_ALG";
  }
  return std::to_string(family);
}

std::string socket_type(uint64_t type) {
  std::string name;
  switch (type & 0xf) {
    case SOCK_STREAM: name = "SOCK_STREAM"; break;
    case SOCK_DGRAM: name = "SOCK_DGRAM"; break;
    case SOCK_RAW: name = "SOCK_RAW"; break;
    case SOCK_SEQPACKET: name = "SOCK_SEQPACKET"; break;
    default: name = std::to_string(type & 0xf);
  }
  if (type & SOCK_NONBLOCK) name += "|SOCK_NONBLOCK";
  if (type & SOCK_CLOEXEC) name += "|SOCK_CLOEXEC";
  return name;
}

std::string namespace_flags(uint64_t flags) {
  static const std::pair<uint64_t, const char*> kNames[] = {
      {CLONE_NEWNS, "CLONE_NEWNS"},     {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
      {CLONE_NEWUTS, "CLONE_NEWUTS"},   {CLONE_NEWIPC, "CLONE_NEWIPC"},
      {CLONE_NEWUSER, "CLONE_NEWUSER"}, {CLONE_NEWPID, "CLONE_NEWPID"},
      {CLONE_NEWNET, "CLONE_NEWNET"},
  };
  std::string text;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) text += (text.empty() ? "" : "|") + std::string(name);
  }
  return text.empty() ? hex(flags) : text + (flags & ~0x7e020000ULL ? "|" + hex(flags & ~0x7e020000ULL) : "");
}

}  // namespace

std::string describe_call(uint32_t arch, int number, const std::array<uint64_t, 6>& args) {
  if (arch != AUDIT_ARCH_X86_64) {
    return (arch == AUDIT_ARCH_I386 ? "i386 syscall " : "foreign-ABI syscall ") +
           std::to_string(number);
  }
  if (number & 0x40000000) return "x32 syscall " + std::to_string(number & ~0x40000000);
  const std::string name = syscall_name(number);
  switch (number) {
    case SYS_socket:
      return name + "(" + family_name(args[0]) + ", " + socket_type(args[1]) + ", " +
             std::to_string(args[2]) + ")";
    case SYS_unshare:
      return name + "(" + namespace_flags(args[0]) + ")";
    case SYS_clone:
      return name + "(" + namespace_flags(args[0]) + ", ...)";
    case SYS_ioctl:
      return name + "(" + std::to_string(static_cast<int>(args[0])) + ", " +
             hex(args[1] & 0xffffffff) + ", ...)";
  }
  return name + "(" + hex(args[0]) + ", " + hex(args[1]) + ", " + hex(args[2]) + ", ...)";
}

}  // namespace airlock::sandbox
