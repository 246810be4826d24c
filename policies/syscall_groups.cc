#include "policies/syscall_groups.h"

#include <algorithm>
#include <map>
#include <set>

#include "sandbox/seccomp_floor.h"

namespace airlock::policies {

const std::vector<SyscallGroup>& syscall_groups() {
  // clone3 is in no group: the floor answers it ENOSYS so that libc falls back to clone, whose
  // flags a filter can inspect. clone itself is in @process-spawn; the floor already refuses it
  // with namespace flags.
  static const std::vector<SyscallGroup> groups{
      {"@clock",
       "set the system clock",
       {"adjtimex", "clock_adjtime", "clock_settime", "settimeofday"}},
      {"@debug",
       "inspect or alter other processes",
       {"kcmp", "lookup_dcookie", "perf_event_open", "pidfd_getfd", "process_vm_readv",
        "process_vm_writev", "ptrace"}},
      {"@keyring", "the kernel key store", {"add_key", "keyctl", "request_key"}},
      {"@module",
       "load and unload kernel modules",
       {"delete_module", "finit_module", "init_module"}},
      {"@mount",
       "mount file systems and change the root",
       {"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount",
        "open_tree", "pivot_root", "umount2"}},
      {"@namespaces", "enter or create namespaces", {"setns", "unshare"}},
      {"@network",
       "sockets of any kind",
       {"accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt",
        "shutdown", "socket", "socketpair"}},
      // Not execve: the sandbox starts the program with it after the filter is in place.
      {"@process-spawn", "create processes and threads", {"clone", "fork", "vfork"}},
      {"@raw-io",
       "direct hardware access",
       {"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"}},
      {"@reboot", "reboot or replace the kernel", {"kexec_file_load", "kexec_load", "reboot"}},
      {"@swap", "enable or disable swap", {"swapoff", "swapon"}},
      {"@io-uring",
       "asynchronous I/O rings that bypass syscall filtering",
       {"io_uring_enter", "io_uring_register", "io_uring_setup"}},
      {"@privileged",
       "operations that need privileges a sandboxed program never has",
       {"@clock", "@module", "@mount", "@raw-io", "@reboot", "@swap", "acct", "bpf",
        "open_by_handle_at", "quotactl", "setdomainname", "sethostname", "syslog", "userfaultfd",
        "vhangup"}},
  };
  return groups;
}

std::vector<SyscallGroup> floor_groups() {
  std::vector<SyscallGroup> out;
  for (const auto& floor : sandbox::floor_rules()) {
    auto group = std::find_if(out.begin(), out.end(),
                              [&](const SyscallGroup& g) { return g.name == floor.group; });
    if (group == out.end()) {
      // Floor-only names: calls a policy group cannot express (by argument) or names alone.
      static const std::map<std::string, std::string> kFloorOnly = {
          {"@bpf", "load programs into the kernel"},
          {"@perf", "performance counters of other processes and the kernel"},
          {"@userfaultfd", "handle page faults in user space"},
          {"@handles", "open files by handle, around the mount namespace"},
          {"@seccomp-listener", "install a filter whose questions user space answers"},
          {"@tty-injection", "push input into a terminal (TIOCSTI)"}};
      const SyscallGroup* named = find_group(floor.group);
      const auto only = kFloorOnly.find(floor.group);
      out.push_back({floor.group,
                     named ? named->description : only != kFloorOnly.end() ? only->second : "",
                     {}});
      group = out.end() - 1;
    }
    const std::string member = floor.rule.syscall +
                               (floor.rule.conditions.empty() ? "" : " (some arguments)");
    if (std::find(group->members.begin(), group->members.end(), member) == group->members.end()) {
      group->members.push_back(member);
    }
  }
  return out;
}

const SyscallGroup* find_group(const std::string& name) {
  for (const auto& group : syscall_groups()) {
    if (group.name == name) return &group;
  }
  return nullptr;
}

std::vector<std::string> group_names() {
  std::vector<std::string> names;
  for (const auto& group : syscall_groups()) names.push_back(group.name);
  return names;
}

namespace {

// Groups only nest into groups defined before... or after; `seen` stops a cycle in the table.
bool expand_into(const std::string& name, std::set<std::string>& out, std::set<std::string>& seen) {
  const SyscallGroup* group = find_group(name);
  if (group == nullptr || !seen.insert(name).second) return group != nullptr;
  for (const auto& member : group->members) {
    if (member.starts_with('@')) {
      if (!expand_into(member, out, seen)) return false;
    } else {
      out.insert(member);
    }
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::string>> expand_group(const std::string& name) {
  std::set<std::string> members;
  std::set<std::string> seen;
  if (!expand_into(name, members, seen)) return std::nullopt;
  return std::vector<std::string>(members.begin(), members.end());
}

}  // namespace airlock::policies
