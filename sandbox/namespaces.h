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

}  // namespace airlock::sandbox
