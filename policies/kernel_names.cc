#include "policies/kernel_names.h"

#include <seccomp.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

namespace airlock::policies {
namespace {

// Address families a policy can name. Those not listed cannot be singled out (use the default).
const std::vector<std::pair<std::string, uint64_t>>& families() {
  static const std::vector<std::pair<std::string, uint64_t>> table{
      {"AF_UNIX", AF_UNIX},
      {"AF_INET", AF_INET},
      {"AF_INET6", AF_INET6},
      {"AF_NETLINK", AF_NETLINK},
      {"AF_PACKET", AF_PACKET},
      {"AF_KEY", AF_KEY},
      {"AF_ALG", AF_ALG},
      {"AF_VSOCK", AF_VSOCK},
      {"AF_BLUETOOTH", AF_BLUETOOTH},
      {"AF_CAN", AF_CAN},
      {"AF_TIPC", AF_TIPC},
      {"AF_RDS", AF_RDS},
      {"AF_APPLETALK", AF_APPLETALK},
      {"AF_X25", AF_X25},
      {"AF_AX25", AF_AX25},
      {"AF_IPX", AF_IPX},
      {"AF_LLC", AF_LLC},
      {"AF_NFC", AF_NFC},
      {"AF_QIPCRTR", AF_QIPCRTR},
      {"AF_SMC", AF_SMC},
      {"AF_XDP", AF_XDP},
  };
  return table;
}

// glibc knows every errno's symbolic name; the largest errno on Linux is well below 200.
constexpr int kMaxErrno = 200;

}  // namespace

bool is_known_syscall(const std::string& name) {
  return seccomp_syscall_resolve_name(name.c_str()) != __NR_SCMP_ERROR;
}

bool is_native_syscall(const std::string& name) {
  // libseccomp gives syscalls other architectures have a negative pseudo number.
  return seccomp_syscall_resolve_name(name.c_str()) >= 0;
}

std::optional<int> errno_from_name(const std::string& name) {
  for (int value = 1; value < kMaxErrno; ++value) {
    const char* known = strerrorname_np(value);
    if (known != nullptr && name == known) return value;
  }
  return std::nullopt;
}

std::string errno_to_name(int value) {
  const char* known = strerrorname_np(value);
  return known != nullptr ? known : "errno " + std::to_string(value);
}

const std::vector<std::string>& errno_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (int value = 1; value < kMaxErrno; ++value) {
      if (const char* known = strerrorname_np(value)) all.emplace_back(known);
    }
    return all;
  }();
  return names;
}

std::optional<uint64_t> address_family_from_name(const std::string& name) {
  for (const auto& [known, value] : families()) {
    if (known == name) return value;
  }
  return std::nullopt;
}

std::string address_family_to_name(uint64_t value) {
  for (const auto& [known, number] : families()) {
    if (number == value) return known;
  }
  return std::to_string(value);
}

const std::vector<std::string>& address_family_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const auto& entry : families()) all.push_back(entry.first);
    return all;
  }();
  return names;
}

}  // namespace airlock::policies

namespace airlock::policies {

const std::vector<std::string>& native_syscall_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    // x86_64 syscall numbers end below 500; 1024 leaves room for other architectures.
    for (int number = 0; number < 1024; ++number) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
      if (name == nullptr) continue;
      all.emplace_back(name);
      free(name);
    }
    return all;
  }();
  return names;
}

}  // namespace airlock::policies
