#include "sandbox/capabilities.h"

#include <grp.h>
#include <cerrno>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace airlock::sandbox {

const char* drop_privileges(uint32_t uid, uint32_t gid, bool clear_groups) {
  // Raw syscalls, not glibc's wrappers: in a process cloned from a multi-threaded one, glibc
  // still lists the parent's threads and its set*id wrappers signal each of them and wait; a
  // thread that was being created at the moment of the clone is waited for forever.
  if (clear_groups && ::syscall(SYS_setgroups, 0, nullptr) != 0) return "setgroups(0)";
  // While we still hold CAP_SETPCAP: empty the bounding set so exec can never grant anything,
  // and lock the securebits so a uid change cannot bring capabilities back.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return "prctl(PR_CAPBSET_DROP)";
    }
  }
  if (::prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT |
                                     SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
              0, 0, 0) != 0) {
    return "prctl(PR_SET_SECUREBITS)";
  }
  if (::syscall(SYS_setresgid, gid, gid, gid) != 0) return "setresgid";
  if (::syscall(SYS_setresuid, uid, uid, uid) != 0) return "setresuid";
  // Privileges are dropped from here on: clear what remains of the capability sets.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
  }
  struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return "capset(empty)";
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "prctl(PR_SET_NO_NEW_PRIVS)";
  return nullptr;
}

}  // namespace airlock::sandbox
