// Asking systemd for a cgroup of our own: a transient scope with Delegate=yes, as runc, crun and
// podman do when they are started from a cgroup they share with other processes (a login shell's
// session scope). The only file that speaks D-Bus; the cgroup v2 backend calls it through a
// function value so that its tests can stand in for systemd.
#pragma once

#include <functional>
#include <string>

#include "sandbox/error.h"

namespace airlock::sandbox {

// Moves this process (all its threads) into a new transient scope `unit` ("airlock-<pid>.scope")
// with Delegate=yes, and returns once /proc/self/cgroup shows it there. systemd removes the scope
// when its last process exits. An error names what is missing (no systemd, no bus, refused).
using ScopeRequest = std::function<Status(const std::string& unit)>;
Status move_into_systemd_scope(const std::string& unit);

}  // namespace airlock::sandbox
