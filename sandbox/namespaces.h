// Namespaces: which ones a sandbox gets, the uid/gid maps written by the supervisor, and the
// child-side steps inside the new namespaces (loopback up, hostname).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "sandbox/error.h"

namespace airlock::sandbox {

// user, mount, pid, net, ipc, uts. The cgroup namespace is entered later by the child, once it is
// in its run's cgroup, so that its cgroup root is its own cgroup.
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

// Child side (no allocation): a new time namespace for the caller's children, its monotonic and
// boot-time clocks starting at 0, so a program cannot read how long the host has been up (or
// asleep). The kernel moves a process into it at fork, or at exec after a vfork. Needs
// CAP_SYS_ADMIN and CAP_SYS_TIME in the caller's user namespace; false with errno set and
// `step` naming the call that failed. True, doing nothing, on a kernel without time namespaces.
bool enter_time_namespace(const char** step);

}  // namespace airlock::sandbox
